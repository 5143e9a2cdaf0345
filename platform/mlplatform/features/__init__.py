"""Feature code shared by training and serving (no Dagster, no Feast imports at module level)."""
