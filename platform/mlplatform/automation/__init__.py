"""Automation: the sensors that carry landed data through every stage, and the jobs they run."""
