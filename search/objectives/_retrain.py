"""Training a model again with a stored trial's recipe: replay, and the benches that compare.

A trial stores its data config (with the seed), budget and thread count, so the same training can
run again later: search.replay checks that it gives the same F1, and bench/fidelity.py and
bench/front_vs_baselines.py train other seeds, epochs or models under the same recipe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import optuna
import torch
import yaml

from runner.data.config import data_config_from_dict
from runner.data.splits import load_splits
from runner.training.loop import FitOptions, fit
from runner.training.state import EpochStats
from space import build_model


class _Enough(Exception):
    """Raised from the epoch callback once the replay reached the trial's last epoch."""


def train_like(
    trial: optuna.trial.FrozenTrial,
    model_cfg: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    stop_after: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
) -> list[EpochStats]:
    """Train a model (the trial's own by default, or another to compare) with the trial's stored
    recipe: data config, seed, budget and threads; stop after `stop_after` epochs if given. `seed`
    and `epochs` replace the trial's to train it as another reading of the same candidate would."""
    attrs = trial.user_attrs
    raw = attrs["data_config"] if seed is None else {**attrs["data_config"], "SEED": seed}
    cfg = data_config_from_dict(raw, source=f"trial {trial.number}")
    budget = attrs["budget"] if epochs is None else {**attrs["budget"], "epochs": epochs}
    splits = load_splits(cfg, img_size=cfg.img_size)
    if model_cfg is None:
        model_cfg = yaml.safe_load(attrs["model_yaml"])
    model = build_model(model_cfg, num_classes=len(splits.classes), seed=cfg.seed)
    history: list[EpochStats] = []

    def on_epoch(stats: EpochStats) -> None:
        history.append(stats)
        if stop_after is not None and len(history) >= stop_after:
            raise _Enough

    torch.set_num_threads(int(attrs.get("threads", torch.get_num_threads())))
    try:
        options = FitOptions(
            budget["epochs"] or cfg.epochs,
            budget["seconds"],
            budget["train_fraction"],
            cfg.seed,
            device or "cpu",
        )
        fit(model, splits, cfg, options, on_epoch=on_epoch)
    except _Enough:
        pass
    return history
