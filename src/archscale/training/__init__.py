"""Training runs: run configuration, LR schedules, the noise-scale estimator, the trainer."""
