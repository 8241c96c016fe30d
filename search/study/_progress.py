"""One readable line per finished trial: what was tried and what came out."""

from __future__ import annotations

import optuna
import yaml
from optuna.trial import TrialState
from tqdm import tqdm

from search.front import pareto_front, trial_f1
from search.study._study import finished_count
from space import MODULES


def _block_text(repeat: int, module: str, args: list[object]) -> str | None:
    """'MBConv:24/2x2' for a row that sets channels or may downsample (the registry says which
    arg is which); None for heads and shape-only rows without a stride."""
    spec = MODULES[module]
    if spec.head or spec.stride_arg is None:
        return None
    bound = spec.bind(args)
    text = spec.short_name
    text += f":{bound[spec.channel_args[0]]}" if len(spec.channel_args) == 1 else ""
    text += "/2" if bound[spec.stride_arg] == 2 else ""
    return text + (f"x{repeat}" if repeat > 1 else "")


def blocks_summary(model_yaml: str) -> str:
    """'Conv:16/2 MBConv:24/2 MBConv:24x2 Shuffle/2' (out channels, /2 when strided, xN)."""
    rows = yaml.safe_load(model_yaml)["backbone"]
    return " ".join(t for row in rows if (t := _block_text(*row)) is not None)


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """What a finished trial tried and what came out, e.g.
    "trial 7: 48px Conv:16/2 MBConv:24x2 | 1.23M MACs 45.6k params -> F1 0.612 (6 ep, 21.0 s)"."""
    attrs = trial.user_attrs
    what = blocks_summary(attrs["model_yaml"]) if "model_yaml" in attrs else dict(trial.params)
    if "img_size" in attrs:  # the channels shown already carry the sampled width
        what = f"{attrs['img_size']}px {what}"
    cost = ""
    if "macs" in attrs:
        cost = f" | {attrs['macs'] / 1e6:.2f}M MACs {attrs['params'] / 1e3:.1f}k params"
    if "latency_ms" in attrs:
        cost += f" {attrs['latency_ms']:.2f} ms"
    if trial.state == TrialState.COMPLETE and "infeasible" in attrs:
        outcome = f"infeasible ({attrs['infeasible']}), not trained"
    elif "twin_of" in attrs:
        outcome = f"same recipe as trial {attrs['twin_of']}: its result, not retrained"
        if trial.state == TrialState.COMPLETE:
            outcome = f"F1 {trial_f1(trial):.3f} ({outcome})"
    elif trial.state == TrialState.COMPLETE:
        outcome = (
            f"F1 {trial_f1(trial):.3f} ({attrs.get('epochs_run', '?')} ep, "
            f"{attrs.get('train_seconds', 0):.1f} s)"
        )
    elif trial.state == TrialState.PRUNED:
        history = attrs.get("f1_history", [])
        outcome = f"stopped early after {len(history)} ep (F1 {history[-1] if history else 0:.3f})"
    else:
        outcome = f"FAILED: {attrs.get('fail_reason', 'see the log')}"
    return f"trial {trial.number}: {what}{cost} -> {outcome} | Pareto {len(pareto_front(study))}"


def print_trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Study callback printing the trial line above the progress bar."""
    tqdm.write(trial_line(study, trial))


class StudyBar:
    """A progress bar of the study's finished trials toward --trials, counting every worker's."""

    def __init__(self, study: optuna.Study, trials: int, disable: bool = False) -> None:
        self.bar = tqdm(
            total=trials,
            initial=min(finished_count(study), trials),
            unit="trial",
            desc=study.study_name,
            disable=disable,
            dynamic_ncols=True,
        )

    def refresh(self, study: optuna.Study) -> None:
        """Show the study's current count (it may move by several trials at once)."""
        if not self.bar.disable:
            self.bar.n = min(finished_count(study), self.bar.total)
            self.bar.refresh()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.refresh(study)

    def close(self) -> None:
        self.bar.close()
