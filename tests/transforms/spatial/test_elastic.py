"""RandSmoothElasticd: CT and mask bent together on their own grid, centroids following the field."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from tests.conftest import make_affine, reorient
from transvert_monai.geometry import voxel_to_world
from transvert_monai.transforms import RandSmoothElasticd, warp_points


def _case(affine):
    """Two boxes of different size on a non-RAS grid (the asymmetry shows any axis mix-up)."""
    mask = torch.zeros(1, 48, 40, 30, dtype=torch.uint8)
    mask[0, 8:20, 10:22, 6:14] = 9
    mask[0, 28:40, 20:34, 16:26] = 12
    centroids = {v: voxel_to_world(affine, (mask[0] == v).nonzero().double().mean(0)) for v in (9, 12)}
    ct = torch.where(mask > 0, 700.0, -1000.0).to(torch.float32)
    return {"ct": MetaTensor(ct, affine=affine), "mask": MetaTensor(mask, affine=affine), "centroids": centroids}


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR"])
def test_centroids_follow_the_mask(codes):
    """On RAS and non-RAS storage of the same boxes, the moved centroid is the moved mask's centre."""
    data = _case(make_affine((1.0, 1.0, 1.0)))
    if codes != "RAS":
        (mask, affine), (ct, _) = (reorient(data[k][0], data[k].affine, codes) for k in ("mask", "ct"))
        data = {"ct": MetaTensor(ct[None], affine=affine), "mask": MetaTensor(mask[None], affine=affine), "centroids": data["centroids"]}
    affine = data["mask"].affine
    shifts, errors = [], []
    for seed in (0, 1):
        t = RandSmoothElasticd(["ct", "mask"], magnitude_mm=2.0, control_spacing_mm=30.0).set_random_state(seed)
        out = t(data)
        assert t.control is not None and t.control.abs().max() > 1.0  # it really bent the case
        assert out["mask"].shape == data["mask"].shape and out["mask"].dtype == torch.uint8
        assert torch.equal(out["mask"].affine, affine)
        assert set(out["mask"].unique().tolist()) == {0, 9, 12}  # nearest: no new values
        assert ((out["ct"] > 0) == (out["mask"] > 0)).float().mean() > 0.99  # the CT was bent with the mask
        for v in (9, 12):
            moved = voxel_to_world(affine, (out["mask"][0] == v).nonzero().double().mean(0))
            shifts.append(float(torch.linalg.norm(moved - data["centroids"][v])))
            errors.append(float(torch.linalg.norm(out["centroids"][v] - moved)))
    # boxes moved by ~1–2 mm; the centroids followed them to within the 1 mm voxels' rounding
    # (moving them the wrong way would miss by twice the shift)
    assert min(shifts) > 0.3 and max(errors) < 0.6
    assert sum(errors) < 0.35 * sum(shifts)


def test_a_constant_field_shifts_by_whole_voxels_exactly():
    affine = make_affine()
    data = _case(affine)
    t = RandSmoothElasticd(["ct", "mask"], magnitude_mm=1.0, control_spacing_mm=100.0)
    t.randomize((2, 2, 2))
    spacing = torch.linalg.norm(affine[:3, :3].double(), dim=0)
    voxels = torch.tensor([2.0, -3.0, 1.0], dtype=torch.float64)
    u_mm = affine[:3, :3].double() @ voxels  # out(x) = in(x + u): content moves by −u
    control = u_mm.to(torch.float32).reshape(3, 1, 1, 1).expand(3, 2, 2, 2).clone()
    t.randomize = lambda lattice: setattr(t, "control", control.expand(3, *lattice).clone())  # type: ignore[method-assign]
    out = t(data)
    expected = torch.zeros_like(data["mask"])
    expected[0, 6:18, 13:25, 5:13] = 9
    expected[0, 26:38, 23:37, 15:25] = 12
    assert torch.equal(out["mask"], expected)
    for v in (9, 12):
        assert torch.allclose(out["centroids"][v], data["centroids"][v] - u_mm, atol=1e-5)
    assert spacing.min() > 0


def test_warp_points_inverts_the_sampling_map():
    affine = make_affine()
    g = torch.Generator().manual_seed(0)
    control = torch.randn(3, 3, 4, 3, generator=g) * 2.0
    shape = (48, 40, 30)
    p = voxel_to_world(affine, torch.tensor([[20.0, 17.0, 11.0], [5.0, 33.0, 25.0]], dtype=torch.float64))
    x = warp_points(p, control, affine, shape)
    # x + u(x) = p, with u from the dense field at x
    from transvert_monai.transforms import smooth_displacement

    dense = smooth_displacement(control.double(), shape)
    inv = torch.linalg.inv(affine.double())
    vox = x @ inv[:3, :3].T + inv[:3, 3]
    # trilinear read of the dense field at the fractional voxel positions
    u = torch.nn.functional.grid_sample(
        dense[None], (2 * vox / (torch.tensor(shape) - 1) - 1).flip(-1).reshape(1, -1, 1, 1, 3), align_corners=True
    )[0, :, :, 0, 0].T
    assert torch.allclose(x + u, p, atol=1e-6)


def test_seeded_draws_repeat_and_zero_magnitude_is_the_identity():
    data = _case(make_affine())
    a = RandSmoothElasticd(["ct", "mask"], magnitude_mm=2.0).set_random_state(5)(data)
    b = RandSmoothElasticd(["ct", "mask"], magnitude_mm=2.0).set_random_state(5)(data)
    assert torch.equal(a["ct"], b["ct"]) and torch.equal(a["mask"], b["mask"])
    same = RandSmoothElasticd(["ct", "mask"], magnitude_mm=0.0)(data)
    assert torch.equal(same["ct"], data["ct"]) and same["centroids"] is data["centroids"]
    off = RandSmoothElasticd(["ct", "mask"], magnitude_mm=2.0, prob=0.0)(data)
    assert torch.equal(off["mask"], data["mask"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"magnitude_mm": -1.0}, "magnitude_mm"),
        ({"magnitude_mm": 10.0, "control_spacing_mm": 40.0}, "fold"),
        ({"control_spacing_mm": 0.0}, "control_spacing_mm"),
        ({"mode": "bicubic"}, "mode"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandSmoothElasticd(["ct", "mask"], **kwargs)


def test_volumes_on_different_grids_are_refused():
    data = _case(make_affine())
    data["mask"] = MetaTensor(data["mask"].as_tensor(), affine=make_affine() * 2)
    with pytest.raises(ValueError, match="not on the grid"):
        RandSmoothElasticd(["ct", "mask"], magnitude_mm=2.0).set_random_state(0)(data)
