from __future__ import annotations

import pytest
import torch

from tests.conftest import make_affine, reorient
from transvert_monai.geometry import biplanar_views, view_aligned_frame
from transvert_monai.transforms.drr.functional import patch_pixels
from transvert_monai.transforms.voi import RenderVOIDisc, approximate_body_mask, crop_vertebra_target, render_voi_disc, render_voi_shadow

DISC_CASES = [(1.0, (5.0, 5.0), 5), (0.0, (5.0, 5.0), 1), (2.0, (5.0, 5.0), 13), (1.0, (5.5, 5.5), 4)]


@pytest.mark.parametrize("radius,centre,count", DISC_CASES, ids=[f"r{c[0]}-{c[1]}" for c in DISC_CASES])
def test_disc_holds_the_pixels_within_its_radius(radius, centre, count):
    disc = render_voi_disc(torch.tensor(centre), patch_pixels(torch.zeros(2), (11, 11)), radius)
    assert disc.sum() == count
    assert disc[int(centre[0]), int(centre[1])] == 1


def test_negative_radius_is_rejected():
    with pytest.raises(ValueError, match="radius_px"):
        render_voi_disc(torch.zeros(2), patch_pixels(torch.zeros(2), (3, 3)), -1.0)


def test_render_voi_disc_transform_rejects_a_centroid_outside_the_image():
    with pytest.raises(ValueError, match="outside"):
        RenderVOIDisc()(torch.zeros(1, 8, 8), centroid_rc=(9.0, 2.0))


def test_render_voi_disc_transform_keeps_shape_and_affine():
    from monai.data import MetaTensor

    img = MetaTensor(torch.rand(1, 8, 10), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])))
    out = RenderVOIDisc()(img, centroid_rc=(4.0, 4.0))
    assert out.shape == (1, 8, 10) and out.sum() == 5 and torch.equal(out.affine, img.affine)


@pytest.fixture
def vertebra():
    """A 'vertebra': body block (anterior) plus a thin process (posterior), label 20, RAS 1 × 1 × 2.5 mm."""
    mask = torch.zeros(80, 80, 40, dtype=torch.uint8)
    mask[30:50, 40:60, 15:25] = 20  # body: y ∈ [0, 20) mm (anterior)
    mask[38:42, 15:40, 18:22] = 20  # process: y ∈ [−25, 0) mm (posterior)
    affine = make_affine()
    return mask, affine


def test_target_crop_puts_the_anterior_body_at_high_axis_1_indices(vertebra):
    mask, affine = vertebra
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    centre = torch.tensor([0.0, 0.0, -6.25], dtype=torch.float64)
    target = crop_vertebra_target(mask, affine, 20, view_aligned_frame(lat, ap, centre, 32, 2.0), (32, 32, 32))
    assert set(target.unique().tolist()) == {0.0, 20.0}
    profile = (target > 0).sum(dim=(0, 2))  # voxels per posterior→anterior position
    assert profile[16:26].sum() > 3 * profile[4:14].sum()  # the body (anterior) is the bulky part
    # the process is thin along the left–right axis (axis 2) and along the superior–inferior axis (axis 0)
    process = target[:, 5:12, :] > 0
    assert process.any(dim=(0, 1)).sum() <= 3 and process.any(dim=(1, 2)).sum() <= 6


def test_target_crop_does_not_depend_on_the_storage_orientation(vertebra):
    mask, affine = vertebra
    lat, ap = biplanar_views((0.0, 0.0, 0.0), rotation_rad=(0.1, -0.05, 0.2))
    frame = view_aligned_frame(lat, ap, (0.0, 0.0, -6.25), 32, 2.0)
    reference = crop_vertebra_target(mask, affine, 20, frame, (32, 32, 32))
    for axcodes in ("LPS", "PIR"):
        m, a = reorient(mask, affine, axcodes)
        assert torch.equal(crop_vertebra_target(m, a, 20, frame, (32, 32, 32)), reference)


def test_target_of_a_grid_outside_the_mask_is_empty(vertebra):
    mask, affine = vertebra
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    target = crop_vertebra_target(mask, affine, 20, view_aligned_frame(lat, ap, (500.0, 0, 0), 8, 1.0), (8, 8, 8))
    assert target.shape == (8, 8, 8) and not target.any()


def test_vertebra_shadow_covers_the_projected_mask_and_body_shadow_is_its_anterior_part(vertebra):
    mask, affine = vertebra
    lat, _ = biplanar_views((0.0, 0.0, 0.0), detector_size_px=(64, 64), detector_spacing_mm=1.2)
    pixels = patch_pixels(torch.zeros(2), (64, 64))
    whole = render_voi_shadow(mask == 20, affine, lat, pixels)
    body = render_voi_shadow(approximate_body_mask(mask == 20, affine, lat.rotation[:, 0]), affine, lat, pixels)
    assert whole.sum() > body.sum() > 0
    assert torch.all(whole >= body)  # the body's shadow lies inside the vertebra's
    cols = body.nonzero()[:, 1].float()
    assert cols.mean() > whole.nonzero()[:, 1].float().mean()  # and to the anterior (right) side of it


def test_body_approximation_keeps_the_anterior_voxels(vertebra):
    mask, affine = vertebra
    body = approximate_body_mask(mask == 20, affine, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    assert body[30:50, 48:60, 15:25].all()  # centre of mass at y index ≈ 47.5
    assert not body[38:42, 15:30, 18:22].any()
