"""Search: multi-objective Optuna studies over architectures and training recipes, and export.

Entry points: ``python -m search.architecture``, ``search.hyper``, ``search.export``,
``search.finalize`` and ``search.replay``. Beneath them, by concept: ``objectives`` (what one
trial computes), ``study`` (where a study lives and how it runs: storage, run loop, workers,
progress), ``front`` (the Pareto front: ranking, hypervolume, plots, early stopping by it, rank
correlation) and ``_cli`` (the options and the run every study CLI shares). Each subpackage's
``__all__`` is its API; underscored modules are not.
"""
