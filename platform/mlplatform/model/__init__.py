"""The model stage's glue to MLflow: tracking, the registry, the pyfunc that serves the network."""
