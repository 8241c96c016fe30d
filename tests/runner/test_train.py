"""fit(): learning, determinism, budgets, the per-epoch callback, divergence and resuming."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import pytest
import torch
from torch import nn

from runner.data.config import DataConfig
from runner.data.splits import Splits
from runner.training.loop import FitOptions, TrainingDiverged, fit, stratified_subset
from runner.training.state import EpochStats, TrainState

ModelFactory = Callable[..., nn.Module]


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_learns_the_synthetic_classes(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    result = fit(make_model(), tiny_splits, tiny_cfg, FitOptions(epochs=6, progress=False))
    assert result.f1 > 0.9 and result.epochs_run == 6 and len(result.history) == 6
    assert set(result.per_class_f1) == set(tiny_splits.classes)
    assert sum(map(sum, result.confusion)) == len(tiny_splits.val_y)


def test_same_seed_same_result_other_seed_other_result(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    cfg = dataclasses.replace(tiny_cfg, aug_train="randaugment_train", cutmix=1.0, cutout=0.2)
    runs = []
    for seed in (7, 7, 8):
        model = make_model()
        result = fit(model, tiny_splits, cfg, FitOptions(seed=seed, progress=False))
        runs.append(([h.loss for h in result.history], weights(model)))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert runs[0][0] != runs[2][0]


@pytest.mark.parametrize(
    "change",
    [
        {"optimizer": "adamw", "init_lr": 0.01, "scheduler": "cosine"},
        {"balance": "loss", "label_smoothing": 0.1},
        {"balance": "sampler"},
    ],  # fmt: skip
)
def test_options_train(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory, change: dict
) -> None:
    result = fit(
        make_model(),
        tiny_splits,
        dataclasses.replace(tiny_cfg, **change),
        FitOptions(epochs=6, progress=False),
    )
    assert result.f1 > 0.6


def test_callback_sees_each_epoch_and_can_stop_the_run(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    seen: list[EpochStats] = []

    class Stop(Exception):
        pass

    def on_epoch(stats: EpochStats) -> None:
        seen.append(stats)
        if stats.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(
            make_model(),
            tiny_splits,
            tiny_cfg,
            FitOptions(epochs=5, progress=False),
            on_epoch=on_epoch,
        )
    assert [s.epoch for s in seen] == [1, 2] and 0.0 <= seen[-1].f1 <= 1.0


def test_nan_loss_raises_training_diverged(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    class Poisoned(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("nan")

    model = nn.Sequential(make_model(), Poisoned())
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 1"):
        fit(model, tiny_splits, tiny_cfg, FitOptions(progress=False))


def test_seconds_budget_stops_training(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    result = fit(make_model(), tiny_splits, tiny_cfg, FitOptions(seconds=0.3, progress=False))
    assert 1 <= result.epochs_run < 1000 and result.train_seconds < 3.0


def test_train_fraction_is_a_stratified_seeded_subset(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    labels = torch.tensor([0] * 20 + [1] * 10 + [2] * 2)
    subset = stratified_subset(labels, 0.5, seed=1)
    assert torch.bincount(labels[subset]).tolist() == [10, 5, 1]
    assert torch.equal(subset, stratified_subset(labels, 0.5, seed=1))
    result = fit(
        make_model(), tiny_splits, tiny_cfg, FitOptions(train_fraction=0.5, progress=False)
    )
    assert result.epochs_run == tiny_cfg.epochs
    with pytest.raises(ValueError, match="train_fraction must be in"):
        fit(make_model(), tiny_splits, tiny_cfg, FitOptions(train_fraction=0.0, progress=False))


def test_resume_continues_exactly(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    straight = make_model()
    full = fit(straight, tiny_splits, tiny_cfg, FitOptions(epochs=4, progress=False))
    states: list[TrainState] = []

    def interrupt(state: TrainState) -> None:
        states.append(copy.deepcopy(state))
        if state.epochs_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            make_model(),
            tiny_splits,
            tiny_cfg,
            FitOptions(epochs=4, progress=False),
            on_state=interrupt,
        )
    resumed_model = make_model(seed=123)  # its own weights are replaced by the state's
    resumed = fit(
        resumed_model,
        tiny_splits,
        tiny_cfg,
        FitOptions(epochs=4, progress=False),
        resume=states[-1],
    )
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]
    assert all(torch.equal(a, b) for a, b in
               zip(weights(straight), weights(resumed_model), strict=True))  # fmt: skip


def test_ema_scores_the_weight_average_and_resumes_exactly(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    cfg = dataclasses.replace(tiny_cfg, ema_decay=0.9)
    states: list[TrainState] = []
    model = make_model()
    result = fit(
        model, tiny_splits, cfg, FitOptions(epochs=4, progress=False), on_state=states.append
    )
    assert result.f1 > 0.9
    ema, raw = states[-1].scored_weights(), states[-1].model
    assert ema.keys() == raw.keys()
    assert not torch.equal(ema["0.weight"], raw["0.weight"]), "the average is not the weights"
    resumed_model = make_model()
    resumed = fit(
        resumed_model,
        tiny_splits,
        cfg,
        FitOptions(epochs=4, progress=False),
        resume=copy.deepcopy(states[1]),
    )
    assert [h.f1 for h in resumed.history] == [h.f1 for h in result.history]
    with pytest.raises(ValueError, match="EMA_DECAY must be in"):
        DataConfig(data_path=tiny_cfg.data_path, ema_decay=1.0)


def test_distillation_mixes_the_teachers_soft_labels(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    from runner.training.distill import Teacher

    teacher_model = make_model(seed=3)
    fit(teacher_model, tiny_splits, tiny_cfg, FitOptions(epochs=4, progress=False))
    teacher = Teacher(teacher_model, img_size=32, temperature=2.0, weight=0.7)
    plain = fit(make_model(), tiny_splits, tiny_cfg, FitOptions(epochs=2, progress=False))
    taught = fit(
        make_model(), tiny_splits, tiny_cfg, FitOptions(epochs=2, teacher=teacher, progress=False)
    )
    assert taught.history[0].loss != plain.history[0].loss, "the teacher changes the loss"
    assert taught.f1 > 0.6
    assert not any(p.requires_grad for p in teacher_model.parameters()), "the teacher is frozen"
    x = torch.randn(4, 3, 24, 24)
    assert teacher.logits(x).shape == (4, 3), "a batch at the student's size reaches the teacher"
    with pytest.raises(ValueError, match="KD_WEIGHT must be in"):
        Teacher(teacher_model, 24, weight=0.0)


def test_fixres_trains_small_then_at_img_size(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cfg = dataclasses.replace(tiny_cfg, epochs=4, fixres_train_size=16, fixres_epochs=1)
    model, trained, validated = make_model(), [], set()

    def record(module: nn.Module, args: tuple[torch.Tensor]) -> None:
        (trained.append if module.training else validated.add)(args[0].shape[-1])

    model.register_forward_pre_hook(record)
    result = fit(model, tiny_splits, cfg, FitOptions(progress=False))
    assert result.f1 > 0.6
    # 36 train images in batches of 8: 4 steps an epoch; 3 epochs small, the last at IMG_SIZE.
    assert trained == [16] * 12 + [24] * 4 and validated == {24}
    with pytest.raises(ValueError, match="FIXRES_TRAIN_SIZE must be in"):
        dataclasses.replace(cfg, fixres_train_size=32)
