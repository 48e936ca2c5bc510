from __future__ import annotations

import pytest
import torch

from transvert_monai.metrics import binarize_prediction, label_index_from_target, per_item_label_index

# (value as a fraction of the index, index, foreground?)
RULE_CASES = [
    (0.49, 8, False),
    (0.51, 8, True),
    (0.49, 24, False),
    (0.51, 24, True),
    (0.50, 8, False),  # "exceeds": the midpoint itself is background
    (0.0, 8, False),
    (1.0, 8, True),
    (2.0, 8, True),  # overshooting the index is still foreground
    (-1.0, 8, False),
]

INVALID_INDEX_CASES = [
    (0, "positive"),
    (-8, "positive"),
    ([8, 9, 10], "one per batch item"),
]


@pytest.mark.parametrize("fraction, index, expected", RULE_CASES, ids=[f"{f}x{i}" for f, i, _ in RULE_CASES])
def test_voxel_is_foreground_when_it_exceeds_half_the_index(fraction, index, expected):
    pred = torch.full((1, 1, 2, 2, 2), fraction * index)
    assert bool(binarize_prediction(pred, index).all()) is expected


def test_each_batch_item_uses_its_own_index():
    pred = torch.full((2, 1, 2, 2, 2), 5.0)  # above 8/2, below 12/2
    mask = binarize_prediction(pred, torch.tensor([8, 12]))
    assert mask[0].all() and not mask[1].any()


def test_binary_target_maps_to_its_mask():
    y = torch.zeros(1, 1, 4, 4, 4)
    y[0, 0, 1:3, 1:3, 1:3] = 17
    assert torch.equal(binarize_prediction(y, 17), y > 0)


def test_label_index_from_target_is_the_maximum_of_each_item():
    y = torch.zeros(3, 1, 4, 4, 4)
    for b, index in enumerate((8, 20, 24)):
        y[b, 0, b, b, b] = index
    assert label_index_from_target(y).tolist() == [8.0, 20.0, 24.0]


def test_empty_target_has_no_index():
    with pytest.raises(ValueError, match="pass `label_index`"):
        label_index_from_target(torch.zeros(2, 1, 4, 4, 4))


@pytest.mark.parametrize("index, message", INVALID_INDEX_CASES, ids=["zero", "negative", "wrong-count"])
def test_invalid_label_index_is_rejected(index, message):
    with pytest.raises(ValueError, match=message):
        per_item_label_index(index, batch_size=2)
