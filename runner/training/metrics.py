"""Classification metrics and the competition's score (see the competition rules).

Macro F1 is the competition's metric: every class counts equally, so a rare class (Battery there,
trash here) weighs as much as a common one.
"""

from __future__ import annotations

import torch

REF_MACS = 13_863_553
REF_F1 = 0.8342
F1_CLIFF = 0.5


def _as_labels(values: torch.Tensor | list[int]) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.long).flatten().cpu()


def confusion_matrix(
    y_true: torch.Tensor | list[int], y_pred: torch.Tensor | list[int], num_classes: int
) -> torch.Tensor:
    """[num_classes, num_classes] counts, rows = true class, columns = predicted class."""
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} vs {len(y_pred)}")
    flat = y_true * num_classes + y_pred
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_f1(
    y_true: torch.Tensor | list[int], y_pred: torch.Tensor | list[int], num_classes: int
) -> torch.Tensor:
    """F1 of each class (0 where the class is neither present nor predicted)."""
    cm = confusion_matrix(y_true, y_pred, num_classes).double()
    tp = cm.diag()
    denominator = cm.sum(0) + cm.sum(1)  # = 2 tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), 0.0)


def macro_f1(
    y_true: torch.Tensor | list[int], y_pred: torch.Tensor | list[int], num_classes: int
) -> float:
    """Mean F1 over the classes present in y_true or y_pred (sklearn's average="macro")."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    present = (cm.sum(0) + cm.sum(1)) > 0
    if not present.any():
        return 0.0
    return float(per_class_f1(y_true, y_pred, num_classes)[present].mean())


def accuracy(y_true: torch.Tensor | list[int], y_pred: torch.Tensor | list[int]) -> float:
    """Share of correct predictions."""
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    return float((y_true == y_pred).double().mean()) if len(y_true) else 0.0


def f1_score_part(f1: float, ref_f1: float = REF_F1) -> float:
    """The competition's s_F1: 1 under the cliff, then a linear fall, halved past the reference."""
    if f1 < F1_CLIFF:
        return 1.0
    if f1 < ref_f1:
        return 1 - f1 / ref_f1
    return 0.5 * (1 - f1 / ref_f1)


def competition_score(
    macs: int, f1: float, ref_macs: int = REF_MACS, ref_f1: float = REF_F1
) -> float:
    """MACs / ref_macs + s_F1 (lower is better)."""
    return macs / ref_macs + f1_score_part(f1, ref_f1)


def cliff_distance(f1: float) -> float:
    """How far F1 sits above the F1 = 0.5 cliff (negative: already over it, s_F1 = 1)."""
    return f1 - F1_CLIFF
