from __future__ import annotations

import pytest
import torch

from tests.metrics.phantoms import box
from transvert_monai.metrics import (
    binarize_prediction,
    mean_shape_baseline,
    mean_shape_prediction,
    score_mean_shape_baseline,
)


def training_targets():
    """Two targets of different levels: boxes [4, 12)³ (T1 = 8) and [8, 16)³ (L1 = 20)."""
    return torch.cat([box((4, 4, 4), (12, 12, 12), value=8.0), box((8, 8, 8), (16, 16, 16), value=20.0)])


def test_mean_shape_is_the_foreground_frequency():
    mean = mean_shape_baseline(training_targets())
    assert mean.shape == (1, 24, 24, 24)
    assert float(mean[0, 9, 9, 9]) == 1.0  # in both boxes
    assert float(mean[0, 5, 5, 5]) == 0.5  # in the first only
    assert float(mean[0, 20, 20, 20]) == 0.0


def test_iterable_of_targets_gives_the_same_mean_as_a_batch():
    targets = training_targets()
    assert torch.equal(mean_shape_baseline(iter(list(targets))), mean_shape_baseline(targets))


def test_prediction_is_the_mean_shape_scaled_by_the_index():
    mean = mean_shape_baseline(training_targets())
    pred = mean_shape_prediction(mean, torch.tensor([8, 24]))
    assert pred.shape == (2, 1, 24, 24, 24)
    assert torch.allclose(pred[1], 24 * mean)


def test_binarized_prediction_is_the_majority_shape():
    mean = mean_shape_baseline(training_targets())
    assert torch.equal(binarize_prediction(mean_shape_prediction(mean, 12), 12)[0], mean > 0.5)


def test_baseline_of_one_shape_scores_perfectly_on_that_shape():
    target = box((4, 4, 4), (12, 12, 12), value=8.0)
    scores = score_mean_shape_baseline(mean_shape_baseline(target), box((4, 4, 4), (12, 12, 12), value=19.0))
    assert float(scores["dice"]) == 1.0 and float(scores["hd_mm"]) == 0.0


def test_baseline_of_mixed_shapes_scores_below_perfect():
    targets = training_targets()
    scores = score_mean_shape_baseline(mean_shape_baseline(targets), targets, n_points=256)
    assert set(scores) == {"dice", "hd_mm", "hd95_mm", "chamfer_mm"}
    assert bool((scores["dice"] < 1).all()) and bool((scores["hd_mm"] > 0).all())


def test_no_training_targets_is_rejected():
    with pytest.raises(ValueError, match="at least one"):
        mean_shape_baseline([])
