"""Early stopping for multi-objective (F1, MACs) studies, where Optuna's pruners cannot run.

`Trial.report` raises in multi-objective studies, so no built-in pruner can stop a hopeless
candidate there. This module applies successive halving to the two objectives instead.

Why this rule. Hyperband and its asynchronous form ASHA (Li et al. 2018, arXiv:1810.05934)
compare trials only at a few "rung" epochs and stop the worst share of those that reached the
rung; a young trial is judged against the others' F1 at the same age, never their final F1, and
comparing with whoever has reached the rung so far needs no synchronisation between workers.
With two objectives there is no single "worst": MO-ASHA (Schmucker et al. 2021,
arXiv:2106.12639) ranks the trials at a rung by non-dominated sorting (front 0 = the Pareto front,
front 1 = the front once front 0 is removed, ...) and keeps the best fronts. Here a trial is
stopped at a rung only when BOTH hold:

1. a peer dominates it there (F1 >= and MACs <=, one strictly): a trial on the rung's front is
   never stopped, so a cheap model with low F1 survives as long as nothing is cheaper and better;
2. at least `keep = ceil((1 - worst_fraction) * n)` of the n points (peers and itself) lie in
   strictly better fronts: it is in the worst `worst_fraction` even at the best place of its
   front. Ties of one front are never split, so the decision does not depend on trial order.

The MACs of a trial are fixed before training, so at a rung only its F1 so far can improve; the
rule stops a trial that is both beaten outright and far from the front, which is what keeps the
final front's hypervolume while most of the training time goes to promising candidates.

Peers are the study's other trials (COMPLETE, PRUNED or RUNNING) whose "f1_history" user attr
(index 0 = epoch 1) reaches the rung and whose "macs" user attr is set; failed trials and
untrained (infeasible) ones have no history and never count. With fewer than `min_peers` peers
nothing is stopped, so the first `min_peers` trials of a study always train to the end.

Several workers on one storage: the rule only reads the storage (one `get_trials` per rung epoch,
nothing at other epochs; RDB storages serve finished trials from Optuna's cache) and writes only
the trial's own "pruned_at_epoch" / "pruned_reason" attrs, so workers never contend. It records
the reason itself so that every caller gets it on the trial; the caller only raises TrialPruned.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from space.errors import UserError

PEER_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# The architecture study's rungs (of its 10 epochs): a third and two thirds in, as epoch-1/2 F1 is
# still warm-up noise.
DEFAULT_RUNGS = (3, 6)
# Keep a third at each rung: Hyperband's and ASHA's default reduction factor eta = 3. With rungs at
# 3 and 6 of 10 epochs, an average trial costs at most about 0.44 of a full one
# (2/3 x 3/10 + 2/9 x 6/10 + 1/9), room for the >= 2x trials per CPU-hour the rule is for;
# halving (eta = 2) at the same rungs gives 0.55 (1/2 x 3/10 + 1/4 x 6/10 + 1/4), before any
# per-trial overhead.
DEFAULT_WORST_FRACTION = 2 / 3
DEFAULT_MIN_PEERS = 4


@dataclasses.dataclass(frozen=True)
class StopDecision:
    """What the rule decided at one epoch and why (the reason is stored on a stopped trial)."""

    stop: bool
    reason: str


def front_ranks(points: Sequence[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting of (f1, macs) points (F1 maximised, MACs minimised): 0 = front.

    2-D sorting in O(n log n): visiting points by falling F1 (then rising MACs), every earlier
    point has F1 >= the current one, so an earlier point dominates it exactly when its key
    (macs, -f1) is smaller. Each front keeps its smallest key; these rise from front to front,
    so the current point joins the first front whose smallest key is not below its own.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))
    smallest: list[tuple[float, float]] = []
    ranks = [0] * len(points)
    for i in order:
        key = (points[i][1], -points[i][0])
        rank = bisect.bisect_left(smallest, key)
        if rank == len(smallest):
            smallest.append(key)
        else:
            smallest[rank] = key
        ranks[i] = rank
    return ranks


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(f1, macs) `a` is at least as good as `b` in both objectives and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def rung_points(
    trials: Sequence[FrozenTrial], rung: int, exclude: int, cost_attr: str = "macs"
) -> list[tuple[float, float]]:
    """(F1 at epoch `rung`, cost) of trial `exclude`'s peers whose history reaches the rung; the
    cost is the user attr `cost_attr` (MACs, or "latency_ms" in a latency study)."""
    points = []
    for peer in trials:
        history, macs = peer.user_attrs.get("f1_history"), peer.user_attrs.get(cost_attr)
        if peer.number == exclude or peer.state not in PEER_STATES or macs is None:
            continue
        if not history or len(history) < rung:
            continue
        f1 = float(history[rung - 1])
        if math.isfinite(f1):
            points.append((f1, float(macs)))
    return points


@dataclasses.dataclass(frozen=True)
class ParetoStopper:
    """Stop a trial at a rung epoch when it is dominated and in the worst fraction there.

    Args:
        rungs: epochs (1-based, rising) at which trials are compared; at others nothing stops.
        worst_fraction: share of the points at a rung, ranked by non-dominated sorting, that
            may be stopped: 1 - 1/eta for successive halving's reduction factor eta (0.5 halves).
        min_peers: fewest peers at a rung before anything is stopped there.
        cost_attr: the user attr holding the study's second objective ("macs", "latency_ms").
    """

    rungs: tuple[int, ...] = DEFAULT_RUNGS
    worst_fraction: float = DEFAULT_WORST_FRACTION
    min_peers: int = DEFAULT_MIN_PEERS
    cost_attr: str = "macs"

    def __post_init__(self) -> None:
        rungs = tuple(self.rungs)
        if not rungs or any(not isinstance(r, int) or r < 1 for r in rungs):
            raise UserError(f"early-stop rungs must be epochs >= 1, got {self.rungs!r}")
        if list(rungs) != sorted(set(rungs)):
            raise UserError(f"early-stop rungs must rise strictly, e.g. (3, 6); got {rungs}")
        if not 0.0 < self.worst_fraction < 1.0:
            raise UserError(
                f"early-stop worst_fraction must be in (0, 1), got {self.worst_fraction!r}"
            )
        if self.min_peers < 1:
            raise UserError(f"early-stop min_peers must be >= 1, got {self.min_peers!r}")
        object.__setattr__(self, "rungs", rungs)

    def should_stop(
        self, study: optuna.Study, trial: optuna.Trial, epoch: int, f1: float, macs: float
    ) -> bool:
        """The contract's per-epoch check; a stopped trial gets "pruned_at_epoch" and
        "pruned_reason" attrs, and the caller raises optuna.TrialPruned."""
        if epoch not in self.rungs:
            return False
        peers = study.get_trials(deepcopy=False, states=PEER_STATES)
        decision = self.decide(peers, trial.number, epoch, f1, macs)
        if decision.stop:
            trial.set_user_attr("pruned_at_epoch", int(epoch))
            trial.set_user_attr("pruned_reason", decision.reason)
        return decision.stop

    def decide(
        self, trials: Sequence[FrozenTrial], number: int, epoch: int, f1: float, macs: float
    ) -> StopDecision:
        """The rule itself, on trials already read: trial `number` scored `f1` at `epoch`."""
        if epoch not in self.rungs:
            return StopDecision(False, f"epoch {epoch} is not a rung {self.rungs}")
        peers = rung_points(trials, epoch, exclude=number, cost_attr=self.cost_attr)
        if len(peers) < self.min_peers:
            return StopDecision(False, f"{len(peers)} peers at rung {epoch} < {self.min_peers}")
        own = (float(f1), float(macs))
        beaten_by = sum(dominates(p, own) for p in peers)
        ranks = front_ranks([own, *peers])
        better = sum(r < ranks[0] for r in ranks)
        keep = math.ceil(round((1.0 - self.worst_fraction) * len(ranks), 9))
        cost = f"{int(macs):,} MACs" if self.cost_attr == "macs" else f"{macs:g} {self.cost_attr}"
        where = (
            f"rung {epoch}: F1 {own[0]:.4f} at {cost} is in front {ranks[0] + 1}, "
            f"dominated by {beaten_by} of {len(peers)} peers, {better} of {len(ranks)} trials "
            f"in better fronts (keeping {keep})"
        )
        return StopDecision(beaten_by > 0 and better >= keep, where)
