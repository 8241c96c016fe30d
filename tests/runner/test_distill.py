"""Knowledge distillation's loss against its closed form on tiny logits.

loss = (1 - w) * CE + w * T^2 * mean over the batch of KL(softmax(teacher / T) || softmax(student
/ T)); the expected values are computed with math.exp on plain floats.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runner.training.distill import Teacher


class FixedLogits(nn.Module):
    """A teacher that answers the same logits for every image and records the sizes it saw."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 1)  # a parameter, so freezing can be checked
        self.register_buffer("out", torch.tensor(logits))
        self.seen: list[torch.Size] = []
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape)
        self.inputs.append(x)
        return self.out[: x.shape[0]]


def softmax(logits: list[float], t: float) -> list[float]:
    exps = [math.exp(v / t) for v in logits]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


@pytest.mark.parametrize(("t", "w"), [(2.0, 0.7), (1.0, 1.0), (4.0, 0.25)])
def test_loss_is_the_closed_form(t: float, w: float) -> None:
    teacher_logits = [[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]
    student_logits = [[1.0, 1.0, 0.0], [0.0, 2.0, -2.0]]
    teacher = Teacher(FixedLogits(teacher_logits), img_size=4, temperature=t, weight=w)
    label_loss = torch.tensor(0.8)
    got = teacher.loss(torch.tensor(student_logits), torch.zeros(2, 3, 4, 4), label_loss)
    soft = (
        sum(
            kl(softmax(a, t), softmax(b, t))
            for a, b in zip(teacher_logits, student_logits, strict=True)
        )
        / 2
    )
    assert float(got) == pytest.approx((1 - w) * 0.8 + w * t * t * soft, rel=1e-5)


def test_student_equal_to_the_teacher_leaves_the_label_loss_share() -> None:
    logits = [[1.0, -2.0, 0.5]]
    teacher = Teacher(FixedLogits(logits), img_size=4, temperature=3.0, weight=0.4)
    got = teacher.loss(torch.tensor(logits), torch.zeros(1, 3, 4, 4), torch.tensor(2.0))
    assert float(got) == pytest.approx(0.6 * 2.0, abs=1e-6)


def test_teacher_sees_its_own_input_size_antialiased() -> None:
    model = FixedLogits([[0.0, 1.0]] * 2)
    teacher = Teacher(model, img_size=8)
    x = torch.randn(2, 3, 16, 16)
    assert teacher.logits(x).shape == (2, 2)
    expected = F.interpolate(x, size=(8, 8), mode="bilinear", antialias=True)
    assert torch.allclose(model.inputs[-1], expected)
    teacher.logits(torch.randn(2, 3, 4, 4))
    assert model.seen[-1] == (2, 3, 8, 8), "an upscale too"
    same = torch.randn(2, 3, 8, 8)
    teacher.logits(same)
    assert model.inputs[-1] is same, "at its own size the batch passes untouched"


def test_teacher_is_frozen_in_eval_mode() -> None:
    model = FixedLogits([[0.0]]).train()
    Teacher(model, img_size=4)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "KD_TEMPERATURE must be > 0, got 0.0"),
        ({"weight": 0.0}, r"KD_WEIGHT must be in \(0, 1\] with a teacher, got 0.0"),
        ({"weight": 1.01}, "KD_WEIGHT must be in"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Teacher(FixedLogits([[0.0]]), img_size=4, **kwargs)


def test_defaults_are_the_data_configs() -> None:
    """A Teacher built without a config mixes as KD_TEMPERATURE and KD_WEIGHT default to."""
    from runner.data.config import DataConfig

    teacher, cfg = Teacher(FixedLogits([[0.0]]), img_size=4), DataConfig(data_path=".")
    assert (teacher.temperature, teacher.weight) == (cfg.kd_temperature, cfg.kd_weight)
