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
from runner.training.loop import (
    FitOptions,
    TrainingDiverged,
    _Budget,
    _Loop,
    _loss_fn,
    _make_loop,
    fit,
    stratified_subset,
)
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


def _loop(tiny_splits: Splits, cfg: DataConfig, model: nn.Module) -> _Loop:
    options = FitOptions(progress=False)
    return _make_loop(
        model, tiny_splits, cfg, _Budget.of(cfg, options), options, torch.device("cpu")
    )


def test_options_reach_the_loop(
    tiny_splits: Splits, tiny_cfg: DataConfig, make_model: ModelFactory
) -> None:
    """OPTIMIZER, BALANCE=loss and LABEL_SMOOTHING are what the training steps use."""
    cfg = dataclasses.replace(
        tiny_cfg, optimizer="adamw", init_lr=0.01, balance="loss", label_smoothing=0.1
    )
    loop = _loop(tiny_splits, cfg, make_model())
    assert type(loop.optimizer) is torch.optim.AdamW
    assert loop.loss_fn.label_smoothing == 0.1
    assert loop.loss_fn.weight.tolist() == [1.0, 1.0, 1.0], "12 images of each class"
    plain = _loop(tiny_splits, tiny_cfg, make_model())
    assert type(plain.optimizer) is torch.optim.SGD and plain.loss_fn.weight is None
    assert plain.loss_fn.label_smoothing == 0.0


def test_balanced_loss_weights_are_inverse_class_frequencies(tiny_cfg: DataConfig) -> None:
    """Counts 6, 3, 1 and a class with no image, counted as 1 (so n = 11): n / (k * count)."""
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    loss_fn = _loss_fn(dataclasses.replace(tiny_cfg, balance="loss"), labels, 4)
    assert loss_fn.weight.tolist() == pytest.approx([11 / 24, 11 / 12, 11 / 4, 11 / 4])
    smoothed = _loss_fn(dataclasses.replace(tiny_cfg, label_smoothing=0.2), labels, 3)
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    log_p = torch.log_softmax(logits, 1)[0]
    by_hand = -(0.8 * log_p[0] + 0.2 / 3 * log_p.sum())  # (1 - e) one-hot + e / k everywhere
    assert float(smoothed(logits, torch.tensor([0]))) == pytest.approx(float(by_hand))


def test_balanced_sampler_draws_each_class_alike(tiny_cfg: DataConfig) -> None:
    """BALANCE=sampler: a class of 100 images among 1,000 is drawn about half the time; the
    draws are seeded by run seed and epoch. Otherwise every image once per epoch."""
    labels = torch.tensor([0] * 900 + [1] * 100)
    loop = _Loop(
        nn.Identity(),
        dataclasses.replace(tiny_cfg, balance="sampler"),
        torch.device("cpu"),
        train_x=labels,
        train_y=labels,
        loss_fn=nn.Identity(),
        augment=nn.Identity(),
        optimizer=None,
        scaler=None,
        total_steps=1.0,
        seconds=1.0,
        seed=3,
    )
    order = loop.epoch_order(0)
    assert len(order) == 1000 and 430 < int((labels[order] == 1).sum()) < 570
    assert torch.equal(order, loop.epoch_order(0)) and not torch.equal(order, loop.epoch_order(1))
    shuffled = dataclasses.replace(loop, cfg=tiny_cfg).epoch_order(0)
    assert sorted(shuffled.tolist()) == list(range(1000))


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
    assert all(
        torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed_model), strict=True)
    )


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
    tiny_splits: Splits,
    tiny_cfg: DataConfig,
    make_model: ModelFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step's loss is the teacher's mix (its closed form is in test_distill.py)."""
    from runner.training.distill import Teacher

    teacher_model = make_model(seed=3)
    teacher = Teacher(teacher_model, img_size=32, temperature=2.0, weight=0.7)
    mixed: list[float] = []
    loss = Teacher.loss

    def spy(self: Teacher, student: torch.Tensor, x: torch.Tensor, label: torch.Tensor):
        assert x.shape[-1] == 24 and student.shape == (8, 3)
        out = loss(self, student, x, label)
        mixed.append(float(out.detach()))
        return out

    monkeypatch.setattr(Teacher, "loss", spy)
    taught = fit(
        make_model(), tiny_splits, tiny_cfg, FitOptions(epochs=2, teacher=teacher, progress=False)
    )
    assert len(mixed) == 2 * 4, "36 train images in batches of 8: 4 steps an epoch"
    assert taught.history[0].loss == pytest.approx(sum(mixed[:4]) / 4)
    assert taught.history[1].loss == pytest.approx(sum(mixed[4:]) / 4)
    assert not any(p.requires_grad for p in teacher_model.parameters()), "the teacher is frozen"
    x = torch.randn(4, 3, 24, 24)
    assert teacher.logits(x).shape == (4, 3), "a batch at the student's size reaches the teacher"


def test_fixres_trains_small_then_at_img_size(
    tiny_splits: Splits,
    tiny_cfg: DataConfig,
    make_model: ModelFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
