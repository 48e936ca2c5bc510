from __future__ import annotations

import numpy as np
import pytest

from tests.data.synthetic import label_map
from transvert_monai.data.field_of_view import check_vertebra_labels, select_complete_vertebrae

SHAPE = (20, 20, 20)
INSIDE = (slice(5, 15), slice(5, 15), slice(5, 15))  # 1000 voxels, away from every border
# (box of vertebra 20, expected reason) for each way of touching the field of view
TOUCHING_CASES = [
    ((slice(0, 10), slice(5, 15), slice(5, 15)), "first plane of axis 0"),
    ((slice(10, 20), slice(5, 15), slice(5, 15)), "last plane of axis 0"),
    ((slice(5, 15), slice(0, 10), slice(5, 15)), "first plane of axis 1"),
    ((slice(5, 15), slice(5, 15), slice(10, 20)), "last plane of axis 2"),
    ((slice(5, 15), slice(5, 15), slice(0, 20)), "first plane of axis 2, last plane of axis 2"),
]


@pytest.mark.parametrize("box,reason", TOUCHING_CASES, ids=[r for _, r in TOUCHING_CASES])
def test_vertebra_touching_a_border_plane_is_excluded(box, reason):
    kept, excluded = select_complete_vertebrae(label_map(SHAPE, {20: box}), min_voxels=10)
    assert kept == []
    assert excluded[20] == f"touches the field of view: {reason}"


def test_vertebra_inside_the_grid_with_enough_voxels_is_kept():
    kept, excluded = select_complete_vertebrae(label_map(SHAPE, {20: INSIDE}), min_voxels=1000)
    assert kept == [20] and excluded == {}


def test_vertebra_with_too_few_voxels_is_excluded():
    kept, excluded = select_complete_vertebrae(label_map(SHAPE, {20: INSIDE}), min_voxels=1001)
    assert kept == []
    assert excluded[20] == "1000 voxels < min_voxels=1001"


def test_kept_vertebrae_are_sorted_cranial_to_caudal():
    boxes = {20: (slice(2, 4), slice(2, 4), slice(2, 4)), 28: (slice(6, 8), slice(6, 8), slice(6, 8))}
    boxes[19] = (slice(10, 12), slice(10, 12), slice(10, 12))
    kept, _ = select_complete_vertebrae(label_map(SHAPE, boxes), min_voxels=1)
    assert kept == [19, 28, 20]


def test_labels_outside_verse_indices_are_rejected():
    with pytest.raises(ValueError, match=r"labels \[26, 40\] outside the VerSe vertebra indices"):
        check_vertebra_labels(label_map(SHAPE, {20: INSIDE, 26: (slice(0, 2),) * 3, 40: (slice(17, 19),) * 3}))


def test_negative_min_voxels_is_rejected():
    with pytest.raises(ValueError, match="min_voxels"):
        select_complete_vertebrae(np.zeros(SHAPE, dtype=np.uint8), min_voxels=-1)
