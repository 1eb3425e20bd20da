"""Training jobs in worker processes: the TrainingRunner adapter and the worker it starts (which composes a
Trainer and an ExperimentTracker, like a small container of its own)."""
