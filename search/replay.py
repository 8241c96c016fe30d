"""`python -m search.replay --study-name X --trial N`: retrain one trial exactly as it ran.

A trial stores everything its result depends on: its model YAML, data config (with the seed),
per-trial budget, torch thread count and package versions. Replay trains the same model from
the same initial weights on the same subset, for the epochs the trial ran (a trial stopped early
is replayed to where it stopped), and compares the per-epoch F1. On a CPU with the same versions
and threads the F1 is the same; it says so, or where they part and what differed.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import optuna

from litenas.user_input import add_debug_option, exit_on_user_error, non_negative_int
from runner.training.loop import pick_device
from runner.training.state import EpochStats
from search.objectives import package_versions, train_like
from search.study import STORAGE_HELP, default_url, open_existing_study
from space.errors import UserError

TOLERANCE = 1e-9


class ReplayError(UserError):
    """The trial cannot be replayed (unknown number, or it was never trained)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m search.replay",
        description="Retrain one trial of a study from its stored configs and compare its F1.",
    )
    add = parser.add_argument
    add("--study-name", required=True, help="the study holding the trial")
    add("--storage", help=STORAGE_HELP)
    add("--trial", type=non_negative_int, required=True, help="the trial number")
    add("--device", help="cpu, cuda (default: cpu: F1 is only bit-exact on the CPU)")
    add_debug_option(parser)
    return parser.parse_args(argv)


def load_trial(args: argparse.Namespace) -> optuna.trial.FrozenTrial:
    """The trial to replay; it must have been trained (a stored F1 history)."""
    study = open_existing_study(args.study_name, args.storage or default_url(args.study_name))
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if args.trial not in trials:
        raise ReplayError(
            f"study {args.study_name!r} has no trial {args.trial}; its trials are numbered "
            f"0..{max(trials, default=-1)}"
        )
    trial = trials[args.trial]
    if not trial.user_attrs.get("f1_history") or "budget" not in trial.user_attrs:
        raise ReplayError(
            f"trial {args.trial} has no stored training to replay (state "
            f"{trial.state.name.lower()}; an untrained infeasible or failed trial, or one from a "
            "version that did not record its budget)"
        )
    return trial


def replay(trial: optuna.trial.FrozenTrial, device: str | None = None) -> list[EpochStats]:
    """Train the trial's model with its stored recipe up to its last recorded epoch."""
    return train_like(trial, stop_after=len(trial.user_attrs["f1_history"]), device=device)


def compare(
    trial: optuna.trial.FrozenTrial, history: Sequence[EpochStats]
) -> tuple[bool, list[str]]:
    """Whether the replay gave the stored F1 at every epoch, and the lines that say so."""
    stored = [float(f) for f in trial.user_attrs["f1_history"]]
    got = [float(s.f1) for s in history]
    same = len(got) == len(stored) and all(
        math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE) for a, b in zip(got, stored, strict=True)
    )
    lines = [
        f"trial {trial.number}: stored F1 per epoch {_fmt(stored)}",
        f"trial {trial.number}: replay F1 per epoch {_fmt(got)}",
        "same F1 at every epoch" if same else "the replay differs from the stored trial",
    ]
    if not same:
        lines += _why_different(trial)
    return same, lines


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _why_different(trial: optuna.trial.FrozenTrial) -> list[str]:
    """What may explain a difference: a time-capped budget or other package versions (the
    replay already runs with the trial's thread count)."""
    attrs, reasons = trial.user_attrs, []
    if attrs["budget"].get("seconds"):
        reasons.append(
            f"the trial ran under a {attrs['budget']['seconds']} s cap (--trial-seconds): its "
            "learning-rate schedule followed the clock, which no replay repeats"
        )
    stored, here = attrs.get("versions", {}), package_versions()
    reasons += [
        f"{name}: trial {stored[name]}, here {here.get(name)}"
        for name in stored
        if stored[name] != here.get(name)
    ]
    return [f"  possible cause: {r}" for r in reasons] or [
        "  no recorded difference in budget or versions: was it trained on a GPU or another "
        "CPU, or did the data folder change?"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """0 when the replay matches, 1 when it differs, 2 when it cannot run."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def run() -> int:
        pick_device(args.device)  # a device this machine lacks, before any work
        trial = load_trial(args)
        same, lines = compare(trial, replay(trial, args.device))
        print("\n".join(lines))
        return 0 if same else 1

    return exit_on_user_error(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
