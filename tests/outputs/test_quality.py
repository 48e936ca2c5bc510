from __future__ import annotations

import numpy as np
import pytest
import torch

from transvert_monai.outputs import (
    QualityCheckName,
    assess_vertebra_quality,
    check_vertebra_quality,
    label_component_fractions,
    largest_component_fraction,
    training_volume_range,
)

VOXEL_MM3 = 1.5**3  # the 64³ target grid of 1.5 mm voxels
LUMBAR = {20: (25.0, 50.0), 21: (27.0, 52.0), 22: (28.0, 55.0)}  # real-size lumbar ranges (ml)


def blob(volume_ml: float, shape: int = 64, offset: int = 0) -> np.ndarray:
    """A solid box of about ``volume_ml`` on a 1.5 mm grid."""
    side = round((volume_ml * 1000 / VOXEL_MM3) ** (1 / 3))
    mask = np.zeros((shape,) * 3, dtype=np.uint8)
    mask[offset : offset + side, 2 : 2 + side, 2 : 2 + side] = 1
    return mask


def test_a_shape_with_a_fifth_of_a_lumbar_volume_is_not_ok():
    # the shipped model's lumbar shapes on the abdominal patient held 9–20 % of the true volume (about 4 ml)
    q = assess_vertebra_quality(blob(4.0), VOXEL_MM3, 22, 0.8, LUMBAR)
    assert not q.ok and q.names == ["volume_below_training_range"]
    assert q.flag.startswith("check: volume 4.") and "28.0–55.0 ml seen for L3 in training" in q.flag
    assert "limit 21.0 ml" in q.flag  # 28 × 0.75


def test_an_in_range_single_blob_is_ok():
    q = assess_vertebra_quality(torch.as_tensor(blob(35.0)), VOXEL_MM3, 22, 0.8, LUMBAR)
    assert q.ok and q.flag == "ok" and q.names == [] and q.largest_component_fraction == 1.0
    assert q.volume_range is not None and not q.volume_range.fallback


def test_two_separated_blobs_are_flagged_fragmented():
    mask = blob(18.0) + blob(18.0, offset=40)  # two halves of a 36 ml vertebra, 10 voxels apart
    q = assess_vertebra_quality(mask, VOXEL_MM3, 22, 0.8, LUMBAR)
    assert q.names == ["fragmented_shape"] and "largest connected part 50%" in q.flag
    assert largest_component_fraction(mask) == pytest.approx(0.5)


def test_corner_contact_is_one_component_and_a_speck_is_tolerated():
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[0:2, 0:2, 0:2] = True
    mask[2:4, 2:4, 2:4] = True  # touches the first cube at one corner: 26-connected
    assert largest_component_fraction(mask) == 1.0
    big = blob(30.0)
    big[60, 60, 60] = 1  # one stray voxel
    assert assess_vertebra_quality(big, VOXEL_MM3, 20, 0.5, LUMBAR).ok


def test_too_large_a_volume_is_flagged():
    q = assess_vertebra_quality(blob(80.0), VOXEL_MM3, 20, 0.5, LUMBAR)
    assert q.names == ["volume_above_training_range"] and "above the 25.0–50.0 ml seen for L1" in q.flag


def test_tolerance_band_around_the_training_range():
    # L1's range 25–50 ml: flagged under 18.75 ml and over 66.5 ml
    for volume, ok in ((18.0, False), (19.5, True), (65.0, True), (67.0, False)):
        q = check_vertebra_quality(20, 1000, volume, 0.1, LUMBAR)
        assert q.ok is ok, volume


def test_a_level_absent_from_training_uses_the_nearest_level_and_says_so():
    thoracic = {"T12": (20.0, 30.0), "18": (18.0, 28.0)}  # JSON keys: names or index strings
    q = assess_vertebra_quality(blob(4.0), VOXEL_MM3, 24, 0.3, thoracic)  # L5, far below T12
    assert q.volume_range is not None and q.volume_range.levels == (19,) and q.volume_range.fallback
    assert q.names == ["volume_below_training_range"]
    assert "seen for T12 in training (nearest level; L5 was not in training)" in q.flag
    # equally near levels above and below span one range
    r = training_volume_range(21, {20: (25.0, 50.0), 22: (30.0, 60.0)})
    assert (r.min_ml, r.max_ml, r.levels, r.fallback) == (25.0, 60.0, (20, 22), True)
    # T13 sits between T12 and L1 in level order
    assert training_volume_range(28, {19: (20.0, 30.0), 24: (40.0, 60.0)}).levels == (19,)


def test_empty_shape_and_large_residual_each_name_their_check():
    q = assess_vertebra_quality(np.zeros((8, 8, 8)), VOXEL_MM3, 20, 7.25, LUMBAR)
    assert q.names == ["empty_shape", "large_residual"]
    assert q.flag == "check: empty shape; check: residual 7.2 mm > 5 mm"
    assert check_vertebra_quality(20, 100, 30.0, float("nan")).names == [QualityCheckName.LARGE_RESIDUAL.value]


def test_small_shape_check_applies_only_without_training_ranges():
    assert check_vertebra_quality(20, 10, 0.5, 0.1).names == ["small_shape"]
    assert check_vertebra_quality(20, 10, 0.5, 0.1, LUMBAR).names == ["volume_below_training_range"]


def test_component_fractions_per_label_of_a_label_map():
    vol = np.zeros((20, 20, 20), dtype=np.uint8)
    vol[1:5, 1:5, 1:5] = 20
    vol[10:12, 10:12, 10:12] = 20  # 8 of 72 voxels elsewhere
    vol[14:18, 1:5, 1:5] = 21
    fractions = label_component_fractions(vol, [20, 21, 22])
    assert fractions == pytest.approx({20: 64 / 72, 21: 1.0, 22: 0.0})


BAD = [
    ({"volume_ranges_ml": {20: (50.0, 25.0)}}, "volume_ranges_ml"),
    ({"volume_ranges_ml": {"X9": (1.0, 2.0)}}, "volume_ranges_ml"),
    ({"volume_ranges_ml": {20: (1.0,)}}, "volume_ranges_ml"),
    ({"volume_tolerance": (1.2, 1.33)}, "volume_tolerance"),
    ({"min_largest_component_fraction": 1.5}, "min_largest_component_fraction"),
    ({"voxel_volume_mm3": 0.0}, "voxel_volume_mm3"),
]


@pytest.mark.parametrize("kwargs,name", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_limits_and_ranges_name_themselves(kwargs, name):
    args = {"mask": blob(30.0), "voxel_volume_mm3": VOXEL_MM3, "label": 20, "residual_mm": 0.1, **kwargs}
    with pytest.raises(ValueError, match=f"`{name}`"):
        assess_vertebra_quality(**args)


def test_a_2d_mask_is_rejected():
    with pytest.raises(ValueError, match="3D mask"):
        assess_vertebra_quality(np.ones((4, 4)), 1.0, 20, 0.1)
