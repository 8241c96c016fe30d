"""The exportable Pareto front of a study: feasible, filtered, ranked, with what each rank needs.

Export, its plots and anything else that lists the front read it from here, so the ranks printed,
plotted and written to folders are the same ones.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from runner.training.metrics import cliff_distance, competition_score
from space.errors import UserError

# The user attrs the search objectives write and export needs (see search/objectives/).
REQUIRED_ATTRS = ("model_yaml", "data_config", "macs", "params")
LATENCY_AXIS = "latency_ms"  # the metric name (and user attr) of a latency study's cost
MACS_MAX_ATTR = "macs_max"  # study user attr: the MACs budget it searched under
# A user with any budget up to the study's finds a handed-over model within this factor below it.
GAP_RATIO = 2.0
UNSAFE_IN_FOLDER = re.compile(r"[^\w.+-]")


def safe_folder_name(name: str) -> str:
    """A study name as one folder name: any name, but never a path that leaves its parent."""
    name = UNSAFE_IN_FOLDER.sub("_", name)
    return name if name.strip(".") else name.replace(".", "_") or "_"


def trial_folder(number: int, band: str = "") -> str:
    """A trial's name in folder and file names: trial<N>, or <band study>-trial<N> (numbers
    repeat across studies)."""
    return f"{safe_folder_name(band)}-trial{number}" if band else f"trial{number}"


def trial_label(number: int, band: str = "") -> str:
    """A trial as tables and plots name it: N, or <band study>/N (numbers repeat across
    studies)."""
    return f"{band}/{number}" if band else str(number)


class Pick(NamedTuple):
    """A trial the search hands over: the study it comes from ("" for the study itself, else
    the band study's name) and whether it was picked to fill a gap in the fronts."""

    trial: FrozenTrial
    band: str = ""
    fills_gap: bool = False


class FrontError(UserError):
    """A front that cannot be exported as asked (bad filter, empty front, missing trial data)."""


@dataclasses.dataclass(frozen=True)
class FrontFilter:
    """Front trials to keep: at most top_k (best F1 first), MACs <= macs_max, params <=
    params_max, F1 >= f1_min."""

    top_k: int | None = None
    macs_max: int | None = None
    f1_min: float | None = None
    params_max: int | None = None

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 1:
            raise FrontError(f"--top-k must be >= 1, got {self.top_k}")
        for flag, value in (("--macs-max", self.macs_max), ("--params-max", self.params_max)):
            if value is not None and value <= 0:
                raise FrontError(f"{flag} must be > 0, got {value}")
        if self.f1_min is not None and not 0.0 <= self.f1_min <= 1.0:
            raise FrontError(f"--f1-min must be in [0, 1], got {self.f1_min}")

    def keeps(self, f1: float, macs: int, params: int = 0) -> bool:
        """True when a trial passes the MACs, params and F1 bounds (top_k is applied after
        ranking)."""
        over = self.macs_max is not None and macs > self.macs_max
        too_big = self.params_max is not None and params > self.params_max
        under = self.f1_min is not None and f1 < self.f1_min
        return not (over or too_big or under)

    def describe(self) -> str:
        """The active filters as CLI options, for messages."""
        parts = [
            f"--top-k {self.top_k}" if self.top_k is not None else "",
            f"--macs-max {self.macs_max:,}" if self.macs_max is not None else "",
            f"--params-max {self.params_max:,}" if self.params_max is not None else "",
            f"--f1-min {self.f1_min}" if self.f1_min is not None else "",
        ]
        return " ".join(p for p in parts if p) or "no filters"


@dataclasses.dataclass(frozen=True)
class FrontEntry:
    """One exported trial: its rank on the filtered front and what its folder is made of."""

    rank: int
    number: int
    f1: float
    macs: int
    params: int
    model_yaml: str
    data_config: Mapping[str, Any]
    latency_ms: float | None = None  # batch-1 ONNX Runtime latency, when measured
    band: str = ""  # the band study the trial comes from; "" for the study itself
    fills_gap: bool = False  # not on a front: picked to fill a gap in the MACs range

    def cost(self, axis: str) -> float | None:
        """The study's second objective: MACs, or "latency_ms" (None when not measured)."""
        return self.latency_ms if axis == LATENCY_AXIS else self.macs

    @property
    def folder(self) -> str:
        """<rank>-<trial_folder>, the rank zero-padded so folders list in rank order."""
        return f"{self.rank:02d}-{trial_folder(self.number, self.band)}"

    @property
    def label(self) -> str:
        return trial_label(self.number, self.band)

    @property
    def picked(self) -> str:
        """Why it is handed over: "front" (its study's Pareto front) or "gap" (cover_budgets)."""
        return "gap" if self.fills_gap else "front"

    @property
    def score(self) -> float:
        """The competition's score (lower is better)."""
        return competition_score(self.macs, self.f1)

    @property
    def cliff(self) -> float:
        """F1 above the F1 = 0.5 cliff (negative: below it)."""
        return cliff_distance(self.f1)


def trial_f1(trial: FrozenTrial) -> float:
    """Validation macro F1; single-objective "score" studies keep it in the "f1" attr, and a
    trial stopped early (a gap fill of last resort) has its F1 of the epoch it stopped at."""
    if trial.state == TrialState.PRUNED:
        return float(trial.user_attrs["f1_history"][-1])
    return float(trial.user_attrs.get("f1", trial.values[0]))


def trial_entry(
    rank: int, trial: FrozenTrial, band: str = "", fills_gap: bool = False
) -> FrontEntry:
    """A trial as a ranked entry (front or not), or an error naming what it lacks."""
    missing = [key for key in REQUIRED_ATTRS if key not in trial.user_attrs]
    if missing:
        raise FrontError(
            f"trial {trial.number} has no user attrs {missing}: export and finalize read "
            "the ones search.architecture and search.hyper store with every trial"
        )
    attrs = trial.user_attrs
    return FrontEntry(
        rank,
        trial.number,
        trial_f1(trial),
        int(attrs["macs"]),
        int(attrs["params"]),
        str(attrs["model_yaml"]),
        dict(attrs["data_config"]),
        attrs.get("latency_ms"),
        band,
        fills_gap,
    )


def front_entries(
    study: optuna.Study, keep: FrontFilter | None = None, bands: Sequence[optuna.Study] = ()
) -> list[FrontEntry]:
    """The models the search hands over, best F1 first (ties: fewer MACs, then the study itself
    before its bands, then lower trial number), filtered and ranked from 1.

    They are the feasible Pareto front of the study and that of each of its `bands` (studies
    searched beside it under a lower MACs ceiling, search.architecture --bands), each front on
    its own: a model is never left out for one of another study. A brief trial favours nets
    that learn fast, which full training does not, so a band's small net that beats a costlier
    model of the study on the trial's F1 may well lose to it once both are trained fully.

    When the study records its MACs budget (MACS_MAX_ATTR), trials that fill the gaps are added
    (cover_budgets): a user with any budget up to it finds a model within GAP_RATIO below it.
    """
    keep = keep or FrontFilter()
    studies = [(study, ""), *((band, band.study_name) for band in bands)]
    picks = _distinct([Pick(t, name) for s, name in studies for t in pareto_front(s)])
    picks = [p for p in picks if _kept(keep, p.trial)]
    ceiling = study.user_attrs.get(MACS_MAX_ATTR)
    if ceiling is not None and cost_axis(study) == "macs":
        ceiling = min(int(ceiling), keep.macs_max or int(ceiling))
        pool = [
            Pick(t, name, fills_gap=True)
            for s, name in studies
            for t in [*feasible_trials(s), *stopped_trials(s)]
        ]
        pool = _distinct([p for p in pool if _kept(keep, p.trial)])
        picks += cover_budgets([_macs(p.trial) for p in picks], pool, ceiling)
    ranked = sorted(
        picks,
        key=lambda p: (-trial_f1(p.trial), _macs(p.trial), p.band != "", p.band, p.trial.number),
    )
    return [
        trial_entry(rank, p.trial, p.band, p.fills_gap)
        for rank, p in enumerate(ranked[: keep.top_k], 1)
    ]


def _kept(keep: FrontFilter, trial: FrozenTrial) -> bool:
    return keep.keeps(trial_f1(trial), _macs(trial), _params(trial))


def cover_budgets(
    costs: Sequence[int], pool: Sequence[Pick], ceiling: int, ratio: float = GAP_RATIO
) -> list[Pick]:
    """Picks of `pool` that close the gaps of a set of models whose MACs are `costs`.

    Walking down from `ceiling`, each budget needs a model within `ratio` below it. Where
    `costs` (and the picks so far) hold none, the pool's best trial in that window is picked
    (fill_order); where the pool holds none either, the gap stays. Ends at the cheapest of
    `costs`.
    """
    chosen = sorted(set(costs))
    picks: list[Pick] = []
    budget: float = ceiling + 1  # every budget from this one up is covered
    while chosen and budget > chosen[0]:
        window = [c for c in chosen if budget / ratio <= c < budget]
        if window:
            budget = window[0]
            continue
        fills = [p for p in pool if budget / ratio <= _macs(p.trial) < budget]
        if fills:
            best = max(fills, key=fill_order)
            picks.append(best)
            chosen = sorted({*chosen, _macs(best.trial)})
        else:  # nothing was searched there: go on from the budget the next trial down serves
            below = max(c for c in [*chosen, *(_macs(p.trial) for p in pool)] if c < budget)
            budget = below * ratio
    return picks


def fill_order(pick: Pick) -> tuple[bool, int, float, int]:
    """How a gap's candidates rank, best last: a trial that trained to the end before one
    stopped early, among those stopped the one stopped latest (it outlasted more peers), then
    the best F1, then the fewest MACs."""
    trial = pick.trial
    finished = trial.state == TrialState.COMPLETE
    epochs = 0 if finished else len(trial.user_attrs["f1_history"])
    return finished, epochs, trial_f1(trial), -_macs(trial)


def stopped_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials the early-stopping rule ended (with an F1 history, not a twin's replay).

    At a rung a costly net is compared with cheap ones that learn faster, so where the search
    drew only costly nets every one may have been stopped; such a trial is still the best known
    model of its MACs range, and full training, not its third epoch, decides what it is worth.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if t.user_attrs.get("f1_history")
        and "pruned_at_epoch" in t.user_attrs
        and "twin_of" not in t.user_attrs
        and all(key in t.user_attrs for key in REQUIRED_ATTRS)
    ]


def feasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every feasible completed trial with numeric values that trained itself (not a twin)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t)
        and t.values
        and not any(map(math.isnan, t.values))
        and "twin_of" not in t.user_attrs
    ]


def _distinct(picks: Sequence[Pick]) -> list[Pick]:
    """The picks without repeats: of a model found alike by two studies (the same objective
    values and model YAML), or picked twice, the first listed stands for all."""
    kept: list[Pick] = []
    seen: set[tuple[tuple[float, ...], object]] = set()
    for pick in picks:
        key = (tuple(pick.trial.values or ()), pick.trial.user_attrs.get("model_yaml"))
        if key not in seen:
            seen.add(key)
            kept.append(pick)
    return kept


def _macs(trial: FrozenTrial) -> int:
    """MACs from the attr the objective stores (the objective value of two-objective studies)."""
    if "macs" in trial.user_attrs:
        return int(trial.user_attrs["macs"])
    return int(trial.values[1]) if len(trial.values) > 1 else 0


def _params(trial: FrozenTrial) -> int:
    """Parameters from the attr the objectives store (0 when a trial has none)."""
    return int(trial.user_attrs.get("params", 0))


@dataclasses.dataclass(frozen=True)
class StudyPoint:
    """One completed trial as a plot point; infeasible ones went over the MACs or params
    budget."""

    number: int
    f1: float
    macs: int
    feasible: bool
    latency_ms: float | None = None
    band: str = ""  # as FrontEntry.band

    def cost(self, axis: str) -> float | None:
        return self.latency_ms if axis == LATENCY_AXIS else self.macs

    @property
    def label(self) -> str:
        return trial_label(self.number, self.band)


def study_points(study: optuna.Study, band: str = "") -> list[StudyPoint]:
    """Every completed trial with a MACs count, in trial order (the plots' grey cloud); `band`
    names the study when it is a band of the exported one."""
    points = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.values and ("macs" in trial.user_attrs or len(trial.values) > 1):
            points.append(
                StudyPoint(
                    trial.number,
                    trial_f1(trial),
                    _macs(trial),
                    is_feasible(trial),
                    trial.user_attrs.get(LATENCY_AXIS),
                    band,
                )
            )
    return points


def cost_axis(study: optuna.Study) -> str:
    """The study's second objective: "macs", or LATENCY_AXIS for --objectives f1,latency."""
    names = study.metric_names or []
    return LATENCY_AXIS if len(names) > 1 and names[1] == LATENCY_AXIS else "macs"


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """A completed trial whose constraints (if any) all hold."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values())


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Feasible non-dominated trials, highest F1 first (single objective: the best trial).

    A twin (a trial that reused an earlier trial's result: the same recipe) is left out: its
    original stands for it.
    """
    if len(study.directions) == 1:
        best = [t for t in study.get_trials(deepcopy=False) if is_feasible(t)]
        sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
        return sorted(best, key=lambda t: -sign * t.value)[:1] if best else []
    front = [
        t
        for t in study.best_trials
        if not any(map(math.isnan, t.values)) and "twin_of" not in t.user_attrs
    ]
    return sorted(front, key=lambda t: (-t.values[0], t.values[1]))
