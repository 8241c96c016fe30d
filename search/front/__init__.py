"""The Pareto front of a study: its trials, hypervolume and plots, and early stopping by it."""

from search.front._early_stop import (
    DEFAULT_MIN_PEERS,
    DEFAULT_RUNGS,
    DEFAULT_WORST_FRACTION,
    ParetoStopper,
    dominates,
    front_ranks,
)
from search.front._hypervolume import DEFAULT_REF, hypervolume
from search.front._pareto import (
    LATENCY_AXIS,
    FrontEntry,
    FrontError,
    FrontFilter,
    StudyPoint,
    cost_axis,
    front_entries,
    is_feasible,
    pareto_front,
    safe_folder_name,
    study_points,
    trial_entry,
    trial_f1,
    trial_folder,
    trial_label,
)
from search.front._plot import write_html, write_png
from search.front._rank_correlation import kendall, spearman

__all__ = [
    "DEFAULT_MIN_PEERS",
    "DEFAULT_REF",
    "DEFAULT_RUNGS",
    "DEFAULT_WORST_FRACTION",
    "LATENCY_AXIS",
    "FrontEntry",
    "FrontError",
    "FrontFilter",
    "ParetoStopper",
    "StudyPoint",
    "cost_axis",
    "dominates",
    "front_entries",
    "front_ranks",
    "hypervolume",
    "is_feasible",
    "kendall",
    "pareto_front",
    "safe_folder_name",
    "spearman",
    "study_points",
    "trial_entry",
    "trial_f1",
    "trial_folder",
    "trial_label",
    "write_html",
    "write_png",
]
