"""Search: multi-objective Optuna studies over architectures and hyperparameters, and export."""
