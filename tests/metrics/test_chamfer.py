from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.metrics.phantoms import ball, box, centred_cube
from transvert_monai.metrics import (
    ChamferDistanceMetric,
    compute_chamfer_distance,
    mask_surface_mesh,
    sample_surface_points,
)

# Balls of radius R and R + δ (voxels): every point of one surface is δ from the other, so the
# Chamfer distance is δ·s up to voxelization and sampling (measured within 2 %; allow 12 %, since
# the sampling floor of ~½·sqrt(area / n) makes small offsets read high).
OFFSET_CASES = [(12, 4, 1.0), (20, 4, 1.5), (15, 3, 0.8)]


def test_shape_against_itself_is_below_half_a_voxel():
    # independent point samples keep a floor of ~½·sqrt(area / n) = 0.4 mm here, under 0.75 mm
    y = centred_cube(10)
    assert float(compute_chamfer_distance(y, y, spacing_mm=1.5)) < 0.75


def test_shifted_flat_slab_scores_about_the_shift():
    # 62×62×7 slab moved 3 voxels along its normal: the faces are 3 voxels apart; the overlapping
    # rims (distance 0) pull the mean down and the point spacing pushes it up (measured 0.94 t)
    y = box((1, 1, 20), (63, 63, 27), size=64)
    y_pred = box((1, 1, 23), (63, 63, 30), size=64)
    assert float(compute_chamfer_distance(y_pred, y, spacing_mm=1.5)) == pytest.approx(3 * 1.5, rel=0.1)


@pytest.mark.parametrize("radius, offset, spacing", OFFSET_CASES, ids=[f"R{r}+{d}" for r, d, _ in OFFSET_CASES])
def test_offset_ball_scores_the_offset(radius, offset, spacing):
    cd = compute_chamfer_distance(ball(radius + offset), ball(radius), spacing_mm=spacing)
    assert float(cd) == pytest.approx(offset * spacing, rel=0.12)


def test_doubling_the_spacing_doubles_the_distance():
    y_pred, y = box((3, 5, 4), (15, 12, 10)), box((5, 4, 6), (13, 14, 12))
    single = compute_chamfer_distance(y_pred, y, (1.0, 1.5, 2.0), n_points=512)
    double = compute_chamfer_distance(y_pred, y, (2.0, 3.0, 4.0), n_points=512)
    assert float(double) == pytest.approx(2 * float(single), rel=1e-6)


def test_same_seed_gives_the_same_distance():
    y_pred, y = box((3, 5, 4), (15, 12, 10)), box((5, 4, 6), (13, 14, 12))
    first = compute_chamfer_distance(y_pred, y, seed=7, n_points=256)
    assert torch.equal(first, compute_chamfer_distance(y_pred, y, seed=7, n_points=256))


def test_empty_prediction_gives_nan_with_a_warning():
    y = centred_cube(8)
    with pytest.warns(UserWarning, match="empty prediction"):
        cd = compute_chamfer_distance(torch.zeros_like(y), y)
    assert math.isnan(float(cd))


def test_class_agrees_with_function():
    y = torch.cat([box((4, 4, 4), (12, 12, 12), value=8.0), box((2, 3, 4), (14, 12, 10), value=24.0)])
    y_pred = torch.cat([box((5, 4, 3), (13, 11, 12), value=8.0), box((3, 3, 4), (12, 15, 10), value=24.0)])
    expected = compute_chamfer_distance(y_pred, y, spacing_mm=1.5, n_points=512, seed=3)
    metric = ChamferDistanceMetric(n_points=512, seed=3, spacing_mm=1.5, reduction="none")
    metric(y_pred[:1], y[:1])
    metric([y_pred[1]], [y[1]])
    assert torch.allclose(metric.aggregate(), expected)


@pytest.mark.parametrize("n_points", [0, -3, 2.5], ids=["zero", "negative", "fraction"])
def test_invalid_point_count_is_rejected(n_points):
    with pytest.raises(ValueError, match="n_points"):
        ChamferDistanceMetric(n_points=n_points)


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        ChamferDistanceMetric(seed=-1)


def test_sampled_points_lie_on_the_box_surface():
    # voxels 4..11 occupy [3.5, 11.5] in index units; the 0.5 iso-surface runs on that boundary
    # (marching cubes cuts edges and corners, so check the bounds and the distance to the nearest face)
    points = sample_surface_points(box((4, 4, 4), (12, 12, 12))[0, 0], n_points=1000, spacing_mm=2.0, rng=0)
    index = points / 2.0
    assert points.shape == (1000, 3)
    assert index.min() >= 3.5 - 1e-6 and index.max() <= 11.5 + 1e-6
    to_face = np.minimum(np.abs(index - 3.5), np.abs(index - 11.5)).min(axis=1)
    assert np.all(to_face <= 0.5 + 1e-6)


def test_mesh_of_a_border_touching_mask_is_closed():
    # a mask filling the whole volume still has a surface thanks to the one-voxel padding
    vertices, faces = mask_surface_mesh(torch.ones(4, 4, 4), spacing_mm=1.0)
    assert len(faces) > 0 and vertices.min() == pytest.approx(-0.5) and vertices.max() == pytest.approx(3.5)


def test_empty_mask_has_no_surface():
    with pytest.raises(ValueError, match="empty"):
        mask_surface_mesh(torch.zeros(4, 4, 4))
