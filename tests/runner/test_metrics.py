"""Metrics against values computed by hand, and the competition score against its own table."""

from __future__ import annotations

import pytest
import torch

from runner.training.metrics import (
    accuracy,
    cliff_distance,
    competition_score,
    confusion_matrix,
    f1_score_part,
    macro_f1,
    per_class_f1,
)

Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def test_confusion_matrix_rows_are_true_classes() -> None:
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == expected


def test_f1_by_hand() -> None:
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert per_class_f1(Y_TRUE, Y_PRED, 3).tolist() == pytest.approx([0.5, 0.8, 2 / 3])
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_macro_f1_skips_classes_never_seen_nor_predicted() -> None:
    assert macro_f1([0, 1], [0, 1], 5) == 1.0
    assert macro_f1(torch.tensor([0, 0]), torch.tensor([1, 1]), 3) == 0.0


@pytest.mark.parametrize(
    ("macs", "f1", "score"),
    [(1_083_210, 0.62, 0.336), (2_295_497, 0.51, 0.554), (1_862_490, 0.49, 1.134)],
)
def test_competition_score_matches_the_published_table(macs: int, f1: float, score: float) -> None:
    # the table's F1 values are rounded to two digits, hence the tolerance
    assert competition_score(macs, f1) == pytest.approx(score, abs=0.01)


def test_competition_score_branches() -> None:
    assert competition_score(13_863_553, 0.8342) == pytest.approx(1.0)
    assert competition_score(0, 0.4999) == 1.0
    assert competition_score(0, 1.0) == pytest.approx(0.5 * (1 - 1 / 0.8342))
    assert competition_score(100, 0.6, ref_macs=100, ref_f1=0.6) == pytest.approx(1.0)
    assert cliff_distance(0.62) == pytest.approx(0.12)


def test_a_class_never_predicted_counts_as_zero_and_an_absent_one_not_at_all() -> None:
    # class 0: tp 2 -> 1; class 1: tp 1, fp 1 -> 2/3; class 2: fn 1, never predicted -> 0;
    # class 3: neither true nor predicted -> left out of the mean
    y_true, y_pred = [0, 0, 1, 2], [0, 0, 1, 1]
    assert per_class_f1(y_true, y_pred, 4).tolist() == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
    assert macro_f1(y_true, y_pred, 4) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert confusion_matrix(y_true, y_pred, 4).sum() == 4


def test_empty_and_mismatched_inputs() -> None:
    assert macro_f1([], [], 3) == 0.0 and accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="y_true and y_pred differ in length: 2 vs 1"):
        confusion_matrix([0, 1], [0], 2)


def test_f1_part_at_its_breakpoints() -> None:
    """Exactly at the cliff the linear part starts; exactly at the reference the halved one."""
    assert f1_score_part(0.5) == pytest.approx(1 - 0.5 / 0.8342)
    assert f1_score_part(0.8342) == 0.0
    assert f1_score_part(0.9, ref_f1=0.6) == pytest.approx(0.5 * (1 - 0.9 / 0.6))
    assert f1_score_part(0.55, ref_f1=0.6) == pytest.approx(1 - 0.55 / 0.6)
    assert cliff_distance(0.4) == pytest.approx(-0.1)


def test_a_class_only_predicted_counts_in_the_macro_mean() -> None:
    """sklearn's macro: a class predicted but never true is present, with F1 0."""
    # class 0: tp 1, fn 1 -> 2/3; class 1: fp 1 -> 0; class 2 absent
    assert macro_f1([0, 0], [0, 1], 3) == pytest.approx((2 / 3 + 0) / 2)


def test_labels_given_as_float_tensors_are_class_indices() -> None:
    assert macro_f1(torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0.0, 1.0, 0.0]), 2) == (
        pytest.approx((2 / 3 + 2 / 3) / 2)
    )
    assert confusion_matrix(torch.tensor([[1.0], [0.0]]), [1, 1], 2).tolist() == [[0, 1], [0, 1]]
