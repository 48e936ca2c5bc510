from __future__ import annotations

import math

import pytest
import torch
from monai.data import MetaTensor

from tests.metrics.phantoms import box, centred_cube
from transvert_monai.metrics import VertebraHausdorffMetric, compute_vertebra_hausdorff

# Concentric cubes of sides a < b (b − a even), k = (b − a) / 2 voxels between their faces.
# Surface voxels are the outermost voxel layer of each cube (foreground voxels with a background face
# neighbour, MONAI's erosion-based edges). Outer → inner: the outer corner voxel is k voxels from the
# inner corner voxel along every axis, and no inner surface voxel is closer, so √3·k. Inner → outer:
# every inner surface voxel has an outer one k voxels straight out, so k. Symmetric HD = √3·k·s mm.
CONCENTRIC_CASES = [
    (6, 10, 1.0),
    (4, 12, 1.5),
    (8, 10, 0.8),
    (2, 16, 2.0),
]

# HD of a box against the same box shifted by t voxels along one axis, on an anisotropic grid:
# every surface voxel has its shifted twin t voxels away along that axis, so HD = t · s[axis].
SHIFT_CASES = [
    (2, 2, (1.0, 1.0, 2.5)),
    (0, 3, (0.7, 1.0, 1.0)),
    (1, 1, (1.0, 3.0, 1.0)),
]

INVALID_PERCENTILES = [0, -5, 101]


@pytest.mark.parametrize("a, b, spacing", CONCENTRIC_CASES, ids=[f"{a}in{b}@{s}" for a, b, s in CONCENTRIC_CASES])
def test_hd_of_concentric_cubes_is_root_three_times_the_gap(a, b, spacing):
    hd = compute_vertebra_hausdorff(centred_cube(a), centred_cube(b), spacing_mm=spacing)
    assert float(hd) == pytest.approx(math.sqrt(3) * (b - a) / 2 * spacing, rel=1e-5)


@pytest.mark.parametrize("axis, shift, spacing", SHIFT_CASES, ids=["z2.5", "x0.7", "y3"])
def test_hd_of_shifted_box_is_shift_times_axis_spacing(axis, shift, spacing):
    lo, hi = [4, 4, 4], [12, 12, 12]
    moved_lo, moved_hi = list(lo), list(hi)
    moved_lo[axis] += shift
    moved_hi[axis] += shift
    hd = compute_vertebra_hausdorff(box(tuple(moved_lo), tuple(moved_hi)), box(tuple(lo), tuple(hi)), spacing)
    assert float(hd) == pytest.approx(shift * spacing[axis], rel=1e-5)


def outlier_pair():
    """Target box [4, 12)³; prediction = the box plus one stray voxel 9 voxels beyond its face."""
    y = box((4, 4, 4), (12, 12, 12))
    y_pred = y.clone()
    y_pred[0, 0, 20, 8, 8] = 20.0
    return y_pred, y


def test_hd_sees_a_single_stray_voxel():
    y_pred, y = outlier_pair()
    assert float(compute_vertebra_hausdorff(y_pred, y, spacing_mm=1.5)) == pytest.approx(9 * 1.5)


def test_hd95_ignores_a_single_stray_voxel():
    # 1 of 297 prediction surface voxels is off the target surface; the 95th percentile is 0
    y_pred, y = outlier_pair()
    assert float(compute_vertebra_hausdorff(y_pred, y, spacing_mm=1.5, percentile=95)) == 0.0


@pytest.mark.parametrize("percentile", [None, 95], ids=["hd", "hd95"])
def test_doubling_the_spacing_doubles_the_distance(percentile):
    y_pred, y = box((3, 5, 4), (15, 12, 10)), box((5, 4, 6), (13, 14, 12))
    single = compute_vertebra_hausdorff(y_pred, y, (1.0, 1.5, 2.0), percentile=percentile)
    double = compute_vertebra_hausdorff(y_pred, y, (2.0, 3.0, 4.0), percentile=percentile)
    assert float(double) == pytest.approx(2 * float(single), rel=1e-5)


def test_empty_prediction_gives_nan_with_a_warning():
    y = box((4, 4, 4), (12, 12, 12))
    with pytest.warns(UserWarning, match="empty prediction"):
        hd = compute_vertebra_hausdorff(torch.zeros_like(y), y)
    assert math.isnan(float(hd))


def test_metric_skips_empty_predictions_and_counts_the_rest():
    y = torch.cat([centred_cube(6), centred_cube(6)])
    y_pred = torch.cat([centred_cube(10), torch.zeros_like(centred_cube(6))])
    metric = VertebraHausdorffMetric(spacing_mm=1.0, get_not_nans=True)
    with pytest.warns(UserWarning):
        metric(y_pred, y)
    value, not_nans = metric.aggregate()
    assert float(value) == pytest.approx(2 * math.sqrt(3), rel=1e-5) and int(not_nans) == 1


@pytest.mark.parametrize("percentile", [None, 95], ids=["hd", "hd95"])
def test_class_agrees_with_function(percentile):
    y = torch.cat([box((4, 4, 4), (12, 12, 12), value=8.0), box((2, 3, 4), (14, 12, 10), value=24.0)])
    y_pred = torch.cat([box((5, 4, 3), (13, 11, 12), value=8.0), box((3, 3, 4), (12, 15, 10), value=24.0)])
    expected = compute_vertebra_hausdorff(y_pred, y, spacing_mm=1.5, percentile=percentile)
    metric = VertebraHausdorffMetric(percentile=percentile, spacing_mm=1.5, reduction="none")
    metric(list(y_pred), list(y))
    assert torch.allclose(metric.aggregate(), expected)


def test_metric_reads_the_spacing_from_the_target_affine():
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
    y = MetaTensor(centred_cube(6), affine=affine)
    metric = VertebraHausdorffMetric(spacing_mm=1.0)
    metric(centred_cube(10), y)
    assert float(metric.aggregate()) == pytest.approx(2 * math.sqrt(3) * 2.0, rel=1e-5)


@pytest.mark.parametrize("percentile", INVALID_PERCENTILES, ids=str)
def test_invalid_percentile_is_rejected(percentile):
    with pytest.raises(ValueError, match="percentile"):
        VertebraHausdorffMetric(percentile=percentile)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        compute_vertebra_hausdorff(torch.zeros(1, 1, 8, 8, 8), torch.zeros(1, 1, 8, 8, 4))
