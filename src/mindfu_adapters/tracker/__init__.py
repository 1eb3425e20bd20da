"""ExperimentTracker adapters: MLflow, and an in-memory one."""
