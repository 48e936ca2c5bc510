from __future__ import annotations

import re

import pytest
import torch

from tests.metrics.phantoms import box
from transvert_monai.metrics import VertebraDiceMetric, compute_vertebra_dice

# (prediction box, target box, Dice by hand)
ANALYTIC_CASES = [
    (((4, 4, 4), (10, 10, 10)), ((4, 4, 4), (10, 10, 10)), 1.0),  # identical
    (((0, 0, 0), (4, 4, 4)), ((10, 10, 10), (14, 14, 14)), 0.0),  # disjoint
    # 4³ boxes shifted by 2 along axis 0: overlap 2·4·4 = 32 → 2·32 / (64 + 64)
    (((0, 0, 0), (4, 4, 4)), ((2, 0, 0), (6, 4, 4)), 0.5),
    # 2×4×4 inside 4×4×4: 2·32 / (32 + 64)
    (((0, 0, 0), (2, 4, 4)), ((0, 0, 0), (4, 4, 4)), 2 / 3),
    # 6×6×6 and 4×6×6 offset by 4 along axis 2: overlap 6·6·2 = 72 → 2·72 / (216 + 144)
    (((0, 0, 0), (6, 6, 6)), ((0, 0, 4), (6, 6, 8)), 0.4),
]

BAD_SHAPE_CASES = [
    (torch.zeros(1, 8, 8, 8), torch.zeros(1, 8, 8, 8), "(B, 1, H, W, D)"),
    (torch.zeros(1, 2, 8, 8, 8), torch.zeros(1, 2, 8, 8, 8), "(B, 1, H, W, D)"),
    (torch.zeros(1, 1, 8, 8, 8), torch.zeros(1, 1, 8, 8, 9), "same shape"),
]


@pytest.mark.parametrize(
    "pred_box, true_box, expected", ANALYTIC_CASES, ids=["identical", "disjoint", "shift", "inside", "offset"]
)
def test_dice_of_boxes_matches_hand_computation(pred_box, true_box, expected):
    dice = compute_vertebra_dice(box(*pred_box, value=12.0), box(*true_box, value=12.0))
    assert dice.shape == (1, 1)
    assert float(dice) == pytest.approx(expected)


def test_regression_output_is_binarized_at_half_the_index():
    target = box((4, 4, 4), (10, 10, 10), value=20.0)
    # inside 0.51·i, outside 0.49·i: the rule gives the target's mask exactly
    pred = torch.where(target > 0, 0.51 * 20.0, 0.49 * 20.0)
    assert float(compute_vertebra_dice(pred, target)) == pytest.approx(1.0)


def test_empty_prediction_scores_zero():
    target = box((4, 4, 4), (10, 10, 10))
    assert float(compute_vertebra_dice(torch.zeros_like(target), target)) == 0.0


@pytest.mark.parametrize("y_pred, y, message", BAD_SHAPE_CASES, ids=["no-channel", "two-channels", "mismatch"])
def test_bad_shapes_are_rejected_with_the_expected_layout(y_pred, y, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compute_vertebra_dice(y_pred, y)


@pytest.mark.parametrize("y_pred, y", [c[:2] for c in BAD_SHAPE_CASES], ids=["no-channel", "two-channels", "mismatch"])
def test_metric_class_rejects_bad_shapes_naming_itself(y_pred, y):
    with pytest.raises(ValueError, match="VertebraDiceMetric"):
        VertebraDiceMetric()(y_pred, y)


def test_class_agrees_with_function_on_batch_and_list_inputs():
    y = torch.cat([box((4, 4, 4), (10, 10, 10), value=8.0), box((2, 2, 2), (12, 9, 9), value=24.0)])
    y_pred = torch.cat([box((5, 4, 4), (11, 10, 10), value=8.0), box((2, 2, 2), (10, 9, 9), value=24.0)])
    expected = compute_vertebra_dice(y_pred, y)
    metric = VertebraDiceMetric(reduction="none")
    metric(y_pred, y)
    metric(list(y_pred), list(y))
    assert torch.allclose(metric.aggregate(), torch.cat([expected, expected]))


def test_mean_reduction_reports_not_nans():
    y = torch.cat([box((4, 4, 4), (10, 10, 10)), box((2, 2, 2), (6, 6, 6))])
    metric = VertebraDiceMetric(get_not_nans=True)
    metric(y, y)
    value, not_nans = metric.aggregate()
    assert float(value) == pytest.approx(1.0) and int(not_nans) == 2


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError, match="mean"):
        VertebraDiceMetric(reduction="average")
