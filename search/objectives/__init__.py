"""What a trial computes: the architecture and recipe objectives, the pipeline they share, and
training again with a stored trial's recipe."""

from search.objectives._architecture import COST_OBJECTIVES, ArchitectureObjective
from search.objectives._hyper import OBJECTIVES, HyperObjective
from search.objectives._retrain import train_like
from search.objectives._startup import STARTUP_ATTR, enqueue_startup, spread_over_cost
from search.objectives._trial import (
    TRIAL_ERRORS,
    EpochReporter,
    Stopper,
    TrialBudget,
    package_versions,
    tail_mean,
    trial_score,
)

__all__ = [
    "COST_OBJECTIVES",
    "OBJECTIVES",
    "STARTUP_ATTR",
    "TRIAL_ERRORS",
    "ArchitectureObjective",
    "EpochReporter",
    "HyperObjective",
    "Stopper",
    "TrialBudget",
    "enqueue_startup",
    "package_versions",
    "spread_over_cost",
    "tail_mean",
    "train_like",
    "trial_score",
]
