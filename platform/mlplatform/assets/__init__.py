"""The stages' assets, one module per stage."""
