from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from tests.conftest import make_affine
from transvert_monai.geometry import grid_centre_mm, voxel_to_world
from transvert_monai.transforms import ExtractVertebraSamplesd, RandWorldScaled


@pytest.fixture
def data():
    mask = torch.zeros(1, 40, 40, 20, dtype=torch.uint8)
    mask[0, 10:20, 15:25, 5:12] = 9
    affine = make_affine()
    idx = mask[0].nonzero().double().mean(0)
    return {
        "ct": MetaTensor(torch.where(mask > 0, 700.0, 0.0), affine=affine, meta={"filename_or_obj": "ct"}),
        "mask": MetaTensor(mask, affine=affine),
        "centroids": {9: voxel_to_world(affine, idx)},
    }


def test_scaling_moves_affines_and_centroids_together_and_keeps_the_voxels(data):
    out = RandWorldScaled(["ct", "mask"], scale_range=0.2).set_random_state(1)(data)
    factors = torch.tensor(out["ct"].meta["world_scale"], dtype=torch.float64)
    assert not torch.allclose(factors, torch.ones(3, dtype=torch.float64))
    assert out["ct"].data_ptr() == data["ct"].data_ptr()  # no copy, no resampling
    assert torch.allclose(out["ct"].affine, out["mask"].affine)
    # the centroid stays the mask's centre of mass in the scaled world
    idx = out["mask"][0].nonzero().double().mean(0)
    assert torch.allclose(voxel_to_world(out["mask"].affine, idx), out["centroids"][9], atol=1e-6)
    # the grid centre is the fixed point; spacing scales by the factors
    assert torch.allclose(grid_centre_mm(out["ct"].affine, (40, 40, 20)), grid_centre_mm(data["ct"].affine, (40, 40, 20)))
    assert torch.allclose(torch.linalg.norm(out["ct"].affine[:3, :3].double(), dim=0), torch.tensor([1.0, 1.0, 2.5], dtype=torch.float64) * factors)


def test_scaled_case_still_gives_a_centred_target(data):
    out = RandWorldScaled(["ct", "mask"], scale_range=0.2).set_random_state(2)(data)
    sample = ExtractVertebraSamplesd(
        sampling_grid={"patch_size": 16, "target_size": 16, "target_spacing_mm": 2.0, "pixel_mm_at_vertebra": 2.0}
    )(out)[0]
    com = (sample["label"][0] > 0).nonzero().float().mean(0)
    assert torch.allclose(com, torch.full((3,), 7.5), atol=0.75)


def test_same_seed_same_factors_and_zero_probability_is_identity(data):
    a = RandWorldScaled(["ct", "mask"]).set_random_state(3)(data)
    b = RandWorldScaled(["ct", "mask"]).set_random_state(3)(data)
    assert torch.equal(a["ct"].affine, b["ct"].affine)
    c = RandWorldScaled(["ct", "mask"], prob=0.0).set_random_state(3)(data)
    assert torch.equal(c["ct"].affine, data["ct"].affine)


def test_scale_range_of_one_or_more_is_rejected():
    with pytest.raises(ValueError, match="below 1"):
        RandWorldScaled("ct", scale_range=1.0)


def test_isotropic_scale_changes_the_size_not_the_shape_and_spans_its_range(data):
    scaler = RandWorldScaled(["ct", "mask"], scale_range=0.0, isotropic_scale_range=0.25).set_random_state(4)
    factors = []
    for _ in range(200):
        out = scaler(data)
        f = out["ct"].meta["world_scale"]
        assert f[0] == pytest.approx(f[1]) == pytest.approx(f[2])  # one factor for every axis
        factors.append(f[0])
    assert 1 / 1.25 - 1e-9 <= min(factors) < 0.85 and 1.2 < max(factors) <= 1.25 + 1e-9
    # log-uniform: as many shrunk as enlarged
    assert abs(sum(f < 1 for f in factors) - 100) < 25


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.2"])
def test_isotropic_scale_range_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match="isotropic_scale_range"):
        RandWorldScaled("ct", isotropic_scale_range=bad)
