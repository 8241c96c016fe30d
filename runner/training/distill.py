"""Knowledge distillation from a trained teacher run (Hinton et al. 2015, arXiv:1503.02531).

The student learns from the teacher's softened class probabilities as well as from the labels:
loss = (1 - w) * CE(student, labels) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
Only the student is the model a study or an export counts: the teacher runs inside the training
step, under no_grad, and its MACs never reach the student's cost.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass
class Teacher:
    """A frozen trained model, the input size it was trained at, and the loss mix."""

    model: nn.Module
    img_size: int
    temperature: float = 4.0
    weight: float = 0.5

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"KD_TEMPERATURE must be > 0, got {self.temperature}")
        if not 0.0 < self.weight <= 1.0:
            raise ValueError(f"KD_WEIGHT must be in (0, 1] with a teacher, got {self.weight}")
        self.model.eval().requires_grad_(False)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for a normalised batch, resized to its own input size."""
        if x.shape[-1] != self.img_size:
            size = (self.img_size, self.img_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=x.shape[-1] > size[0])
        return self.model(x).flatten(1).float()

    def loss(
        self, student: torch.Tensor, x: torch.Tensor, label_loss: torch.Tensor
    ) -> torch.Tensor:
        """The label loss mixed with the temperature-scaled KL divergence to the teacher."""
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student.float() / t, dim=1),
            F.log_softmax(self.logits(x) / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return (1 - self.weight) * label_loss + self.weight * t * t * soft
