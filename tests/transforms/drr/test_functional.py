from __future__ import annotations

import pytest
import torch

from tests.conftest import make_affine, reorient
from transvert_monai.geometry import ap_view, biplanar_views, grid_centre_mm, lateral_view
from transvert_monai.transforms.drr.functional import (
    hu_to_mu,
    line_integrals,
    patch_origin,
    patch_pixels,
    render_drr,
)

HU_CASES = [(0.0, 0.02), (-1000.0, 0.0), (-2048.0, 0.0), (-3024.0, 0.0), (1000.0, 0.04), (-500.0, 0.01)]
ORIENTATIONS = ["RAS", "LPS", "PIR", "SLA"]


def _segment_box_length(source, target, lo, hi):
    """Exact length (mm) of the segment source→target inside the axis-aligned box [lo, hi] (slab method)."""
    d = target - source
    t0, t1 = torch.zeros(len(d), dtype=torch.float64), torch.ones(len(d), dtype=torch.float64)
    for a in range(3):
        ta = (lo[a] - source[a]) / d[:, a]
        tb = (hi[a] - source[a]) / d[:, a]
        t0 = torch.maximum(t0, torch.minimum(ta, tb))
        t1 = torch.minimum(t1, torch.maximum(ta, tb))
    return (t1 - t0).clamp_min(0) * d.norm(dim=-1)


def _ncc(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize("hu,mu", HU_CASES, ids=[str(c[0]) for c in HU_CASES])
def test_hu_to_mu_is_water_relative_and_clips_air(hu, mu):
    assert float(hu_to_mu(torch.tensor(hu))) == pytest.approx(mu)


def test_non_positive_mu_water_is_rejected():
    with pytest.raises(ValueError, match="mu_water_per_mm"):
        hu_to_mu(torch.zeros(2), mu_water_per_mm=0.0)


@pytest.mark.parametrize("preset", [lateral_view, ap_view], ids=["lateral", "ap"])
def test_uniform_box_gives_the_analytic_line_integral_on_central_and_oblique_rays(box_phantom, preset):
    hu, affine, (lo, hi) = box_phantom
    iso = grid_centre_mm(affine, hu.shape)
    g = preset(isocentre_mm=tuple(iso.tolist()), detector_size_px=(41, 41), detector_spacing_mm=1.0)
    # central pixel and oblique ones well inside the box's shadow (rays enter and leave through the slab faces)
    rc = torch.tensor([[20.0, 20.0], [5.0, 8.0], [33.0, 30.0], [9.0, 34.0]], dtype=torch.float64)
    image = render_drr(hu_to_mu(hu), affine, g, rc)
    source = g.source_mm
    expected = 0.04 * _segment_box_length(source, g.pixel_to_world(rc), lo, hi)
    assert torch.all(expected > 1.0)  # the rays do cross the box
    assert torch.allclose(image.double(), expected, rtol=5e-3)


def test_rays_missing_the_volume_integrate_to_zero(box_phantom):
    hu, affine, _ = box_phantom
    g = lateral_view(isocentre_mm=(0.0, 0.0, 500.0), detector_size_px=(8, 8))
    assert torch.all(render_drr(hu_to_mu(hu), affine, g) == 0)


@pytest.mark.parametrize("axcodes", ORIENTATIONS[1:])
@pytest.mark.parametrize("preset", [lateral_view, ap_view], ids=["lateral", "ap"])
def test_the_same_ct_stored_in_another_orientation_gives_the_same_drr(asymmetric_phantom, axcodes, preset):
    hu, affine, _ = asymmetric_phantom
    iso = tuple(grid_centre_mm(affine, hu.shape).tolist())
    g = preset(isocentre_mm=iso, detector_size_px=(96, 96), detector_spacing_mm=1.2)
    reference = render_drr(hu_to_mu(hu), affine, g)
    other_hu, other_affine = reorient(hu, affine, axcodes)
    assert not torch.allclose(other_affine, affine)
    image = render_drr(hu_to_mu(other_hu), other_affine, g)
    assert _ncc(image, reference) > 0.9999


def _gaussian_blobs(shape, affine):
    """Three smooth anisotropic blobs sampled at the voxel centres of a grid (HU)."""
    idx = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij"), -1)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    hu = torch.full(shape, -1000.0, dtype=torch.float64)
    for centre, sigma, peak in (((0, 0, 0), (12, 8, 15), 2500), ((-15, 10, 10), (5, 5, 6), 3000), ((10, -10, -12), (6, 4, 5), 2000)):
        r2 = (((world - torch.tensor(centre)) / torch.tensor(sigma, dtype=torch.float64)) ** 2).sum(-1)
        hu += peak * torch.exp(-0.5 * r2)
    return hu.float()


def test_anisotropic_and_isotropic_sampling_of_a_smooth_phantom_give_the_same_drr():
    coarse_affine = make_affine(spacing=(1.0, 1.0, 2.5), origin=(-40.0, -40.0, -50.0))
    fine_affine = make_affine(spacing=(1.0, 1.0, 0.5), origin=(-40.0, -40.0, -51.0))
    coarse = _gaussian_blobs((81, 81, 41), coarse_affine)
    fine = _gaussian_blobs((81, 81, 205), fine_affine)
    for preset in (lateral_view, ap_view):
        g = preset(isocentre_mm=(0.0, 0.0, 0.0), detector_size_px=(64, 64), detector_spacing_mm=1.5)
        assert _ncc(render_drr(hu_to_mu(fine), fine_affine, g), render_drr(hu_to_mu(coarse), coarse_affine, g)) > 0.9999


def test_asymmetric_markers_land_where_the_convention_says(asymmetric_phantom):
    hu, affine, markers = asymmetric_phantom
    iso = grid_centre_mm(affine, hu.shape)
    lat, ap = biplanar_views(iso, detector_size_px=(96, 96), detector_spacing_mm=1.2)
    mu = hu_to_mu(hu)
    for g in (lat, ap):
        image = render_drr(mu, affine, g)
        for name, centre in markers.items():
            r, c = g.project(centre[None])[0].round().long().tolist()
            peak = image[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].max()
            assert peak > image.median() * 1.5, f"{name} marker not at its projection in the {g.view} view"
    # the convention itself: left marker right of centre in AP, anterior marker right of centre in lateral,
    # superior marker above centre in both
    c0 = 47.5
    assert ap.project(markers["left"][None])[0, 1] > c0 + 10
    assert lat.project(markers["anterior"][None])[0, 1] > c0 + 10
    assert lat.project(markers["superior"][None])[0, 0] < c0 - 10
    assert ap.project(markers["superior"][None])[0, 0] < c0 - 10


def test_mirroring_the_phantom_left_right_mirrors_the_ap_drr(asymmetric_phantom):
    hu, affine, _ = asymmetric_phantom
    iso = tuple(grid_centre_mm(affine, hu.shape).tolist())  # x-centre of the grid: mirroring keeps it
    g = ap_view(isocentre_mm=iso, detector_size_px=(96, 96), detector_spacing_mm=1.2)
    image = render_drr(hu_to_mu(hu), affine, g)
    mirrored = render_drr(hu_to_mu(hu.flip(0)), affine, g)
    assert torch.allclose(mirrored, image.flip(1), atol=1e-4)
    assert not torch.allclose(mirrored, image, atol=1e-2)


def test_patch_is_exactly_a_crop_of_the_full_detector_image(asymmetric_phantom):
    hu, affine, markers = asymmetric_phantom
    g = lateral_view(isocentre_mm=tuple(grid_centre_mm(affine, hu.shape).tolist()), detector_size_px=(96, 96), detector_spacing_mm=1.2)
    mu = hu_to_mu(hu)
    full = render_drr(mu, affine, g)
    origin = patch_origin(g.project(markers["anterior"][None])[0], (16, 16))
    patch = render_drr(mu, affine, g, patch_pixels(origin, (16, 16)))
    r, c = origin.long().tolist()
    assert torch.allclose(patch, full[r : r + 16, c : c + 16], atol=1e-5)


def test_patch_origin_centres_the_point_within_half_a_pixel():
    centre = torch.tensor([[10.2, 40.7], [-3.5, 0.49]], dtype=torch.float64)
    origin = patch_origin(centre, (64, 64))
    offset = centre - (origin + 31.5)
    assert torch.all(offset.abs() <= 0.5)
    assert torch.all(origin == origin.round())


def test_beer_lambert_is_the_transmitted_fraction(box_phantom):
    hu, affine, _ = box_phantom
    g = ap_view(isocentre_mm=tuple(grid_centre_mm(affine, hu.shape).tolist()), detector_size_px=(16, 16))
    mu = hu_to_mu(hu)
    assert torch.allclose(render_drr(mu, affine, g, output="beer_lambert"), torch.exp(-render_drr(mu, affine, g)))


def test_render_drr_rejects_a_2d_volume_and_an_unknown_output(box_phantom):
    hu, affine, _ = box_phantom
    g = ap_view()
    with pytest.raises(ValueError, match="3D volume"):
        render_drr(hu[0], affine, g)
    with pytest.raises(ValueError, match="beer_lambert"):
        render_drr(hu, affine, g, output="beer")


def test_singular_affine_is_rejected(box_phantom):
    hu, affine, _ = box_phantom
    bad = affine.clone()
    bad[:3, 2] = 0
    with pytest.raises(ValueError, match="singular"):
        render_drr(hu_to_mu(hu), bad, ap_view())


def test_line_integrals_accept_any_leading_shape(box_phantom):
    hu, affine, _ = box_phantom
    g = ap_view(isocentre_mm=tuple(grid_centre_mm(affine, hu.shape).tolist()))
    pixels = patch_pixels(torch.tensor([[100.0, 100.0], [120.0, 110.0]]), (4, 5))  # (2, 4, 5, 2)
    out = line_integrals(hu_to_mu(hu), affine, g.source_mm, g.pixel_to_world(pixels))
    assert out.shape == (2, 4, 5)


@pytest.mark.parametrize("binning", [2, 3])
def test_plane_binning_keeps_slab_integrals_exact_and_images_close(box_phantom, asymmetric_phantom, binning):
    from transvert_monai.transforms.drr.functional import AttenuationVolume

    hu, affine, (lo, hi) = box_phantom
    iso = tuple(grid_centre_mm(affine, hu.shape).tolist())
    g = lateral_view(isocentre_mm=iso, detector_size_px=(41, 41), detector_spacing_mm=1.0)
    rc = torch.tensor([[20.0, 20.0], [5.0, 8.0], [33.0, 30.0]], dtype=torch.float64)
    binned = render_drr(AttenuationVolume(hu_to_mu(hu), affine, binning), None, g, rc)
    expected = 0.04 * _segment_box_length(g.source_mm, g.pixel_to_world(rc), lo, hi)
    assert torch.allclose(binned.double(), expected, rtol=5e-3)
    # on a phantom with small dense markers (80 planes: bins of 3 leave a partial last bin) the image stays close
    hu, affine, _ = asymmetric_phantom
    for preset in (lateral_view, ap_view):
        g = preset(isocentre_mm=iso, detector_size_px=(64, 64), detector_spacing_mm=1.5)
        mu = hu_to_mu(hu)
        assert _ncc(render_drr(mu, affine, g, plane_binning=binning), render_drr(mu, affine, g)) > 0.999


def test_prepared_volume_caches_one_plane_stack_per_marching_axis(box_phantom):
    from transvert_monai.transforms.drr.functional import AttenuationVolume

    hu, affine, _ = box_phantom
    volume = AttenuationVolume(hu_to_mu(hu), affine, plane_binning=2)
    iso = tuple(grid_centre_mm(affine, hu.shape).tolist())
    for preset in (lateral_view, ap_view, lateral_view):
        render_drr(volume, None, preset(isocentre_mm=iso, detector_size_px=(8, 8)))
    assert sorted(volume._stacks) == [0, 1]
    assert volume.planes(0).shape == (40, 1, 80, 40)  # 80 planes along x binned by 2


def test_bad_plane_binning_is_rejected(box_phantom):
    from transvert_monai.transforms.drr.functional import AttenuationVolume

    hu, affine, _ = box_phantom
    with pytest.raises(ValueError, match="plane_binning"):
        AttenuationVolume(hu, affine, plane_binning=0)
