"""Placement of vertebrae from two radiographs: cone-beam triangulation against the paper's orthographic rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.io.synthetic import write_png
from transvert_monai.geometry import ap_view, biplanar_views, lateral_view
from transvert_monai.io import read_radiograph
from transvert_monai.transforms.radiograph import extract_radiograph_samples
from transvert_monai.transforms.stacking import (
    Placement,
    PlaceVertebrae,
    PlaceVertebraed,
    place_vertebrae,
    triangulate_centres,
)

SPACING = 0.15  # original detector pixels (mm)
SHAPE = (4400, 1600)  # 660 × 240 mm detectors
SDD, SID = 1800.0, 1500.0
LABELS = list(range(8, 25))  # T1 … L5
NOISE_PX = 2.0  # centroid noise, σ per coordinate, in working pixels (1.8 mm)


def spine_centres() -> torch.Tensor:
    """17 vertebra centres along a curved spine, 500 mm tall, standing 30 mm right of the lateral's isocentre plane.

    Scoliosis (x) and kyphosis/lordosis (y) curves; the spine lies posterior to the AP's isocentre plane.
    """
    t = torch.linspace(0, 1, len(LABELS), dtype=torch.float64)
    x = 30 + 15 * torch.sin(math.pi * t)
    y = -40 + 25 * torch.cos(2 * math.pi * t)
    z = 250 - 500 * t
    return torch.stack((x, y, z), dim=1)


def native_views():
    kw = {"isocentre_mm": (0, 0, 0), "source_to_detector_mm": SDD, "source_to_isocentre_mm": SID}
    return lateral_view(detector_size_px=SHAPE, detector_spacing_mm=SPACING, **kw), ap_view(
        detector_size_px=SHAPE, detector_spacing_mm=SPACING, **kw
    )


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory):
    """Two PNG radiographs with side-cars and the true centroids projected into their original pixels."""
    folder = tmp_path_factory.mktemp("acquisition")
    side = {"pixel_spacing_mm": [SPACING, SPACING], "source_to_detector_mm": SDD, "source_to_patient_mm": SID}
    image = (1000 + np.arange(SHAPE[0])[:, None] % 7 + np.arange(SHAPE[1])[None] % 5).astype(np.uint16)  # some contrast
    lat = read_radiograph(write_png(folder / "lat.png", image, side), "lateral")
    ap = read_radiograph(write_png(folder / "ap.png", image, side), "ap")
    truth = spine_centres()
    g_lat, g_ap = native_views()
    return lat, ap, truth, g_lat.project(truth), g_ap.project(truth), folder


def placed_errors(acquisition, noise_px: float, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{placement: (3D error (B,), residual (B,))} through reading, resampling and triangulation."""
    lat, ap, truth, lat_rc, ap_rc, folder = acquisition
    gen = torch.Generator().manual_seed(seed)
    scale = noise_px * 1.8 / SPACING  # working pixels → original pixels
    noisy = [rc + scale * torch.randn(rc.shape, generator=gen, dtype=torch.float64) for rc in (lat_rc, ap_rc)]
    path = folder / f"centroids_{noise_px}_{seed}.json"
    path.write_text(
        json.dumps(
            {view: {str(v): p.tolist() for v, p in zip(LABELS, rc)} for view, rc in zip(("lateral", "ap"), noisy)}
        )
    )
    s = extract_radiograph_samples(lat, ap, path)
    out = {}
    for placement in ("cone_beam", "orthographic"):
        placed = place_vertebrae(s.lateral_geometry, s.ap_geometry, s.centroid_px, placement)
        out[placement] = (torch.linalg.norm(placed.centres_mm - truth, dim=1), placed.residual_mm)
    return out


@pytest.fixture(scope="module")
def noise_free(acquisition):
    return placed_errors(acquisition, 0.0)


@pytest.fixture(scope="module")
def noisy(acquisition):
    return [placed_errors(acquisition, NOISE_PX, seed) for seed in range(3)]


def test_cone_beam_recovers_noise_free_centres_within_1_mm(noise_free, record_property):
    error, residual = noise_free["cone_beam"]
    record_property("cone_beam_noise_free_max_error_mm", float(error.max()))
    assert error.max() < 1.0
    assert error.max() < 1e-6 and residual.max() < 1e-6  # exact geometry, exact resampling maps


def test_cone_beam_error_with_2_pixel_noise_is_as_expected(noisy, record_property):
    error = torch.cat([n["cone_beam"][0] for n in noisy])
    residual = torch.cat([n["cone_beam"][1] for n in noisy])
    # σ at the isocentre per coordinate and view: 2 px × 1.8 mm / 1.2 = 3 mm; superior–inferior seen twice (averaged)
    sigma_iso = NOISE_PX * 1.8 / (SDD / SID)
    expected_rms = sigma_iso * math.sqrt(2 + 0.5)
    rms = float(error.pow(2).mean().sqrt())
    record_property("cone_beam_2px_rms_error_mm", rms)
    record_property("cone_beam_2px_mean_residual_mm", float(residual.mean()))
    assert 0.7 * expected_rms < rms < 1.3 * expected_rms
    assert residual.mean() < 0.5 * expected_rms  # the superior–inferior disagreement only: about σ/√2 per view


def test_orthographic_rule_is_worse_far_from_the_central_ray(noise_free, record_property):
    cone, _ = noise_free["cone_beam"]
    ortho, ortho_residual = noise_free["orthographic"]
    far = spine_centres()[:, 2].abs() > 150
    record_property("orthographic_noise_free_far_mean_error_mm", float(ortho[far].mean()))
    record_property("orthographic_noise_free_near_mean_error_mm", float(ortho[~far].mean()))
    assert cone.max() < 1e-6
    # height error z·x / (SID − x) ≈ 220 mm × 35 mm / 1465 mm ≈ 5 mm on top of the off-plane depth errors (≈ 2–3 mm)
    assert ortho[far].mean() > 4.0
    assert ortho[far].mean() > 1.3 * ortho[~far].mean()
    assert ortho_residual[far].mean() > 1.0  # the views disagree about the height of off-plane vertebrae


def test_orthographic_rule_is_worse_with_noise_too(noisy, record_property):
    far = spine_centres()[:, 2].abs() > 150
    cone = torch.cat([n["cone_beam"][0][far] for n in noisy]).mean()
    ortho = torch.cat([n["orthographic"][0][far] for n in noisy]).mean()
    record_property("far_mean_error_2px_mm", {"cone_beam": float(cone), "orthographic": float(ortho)})
    assert ortho > 1.3 * cone


# (x, z) of a point on the lateral's isocentre plane y = 0 → the analytic SI error of the orthographic rule
ANALYTIC_CASES = [(0.0, 250.0), (30.0, 250.0), (-40.0, -200.0), (30.0, 0.0)]


@pytest.mark.parametrize("x,z", ANALYTIC_CASES, ids=["on-plane", "right-high", "left-low", "central-ray"])
def test_orthographic_height_error_is_z_x_over_sid_minus_x(x, z):
    lat, ap = biplanar_views((0, 0, 0), detector_size_px=(800, 400), detector_spacing_mm=1.8)
    point = torch.tensor([[x, 0.0, z]], dtype=torch.float64)
    centre, _ = triangulate_centres(lat, ap, lat.project(point), ap.project(point), "orthographic")
    # the lateral source sits at x = +SID (rays run right → left): magnification SDD / (SID − x)
    assert float(centre[0, 2] - z) == pytest.approx(z * x / (SID - x), abs=1e-9)
    assert float(centre[0, 0]) == pytest.approx(x, abs=1e-9)  # y = 0: the AP reading of x is exact


def test_placement_gives_view_aligned_grids_centred_on_the_centres():
    lat, ap = biplanar_views(
        (0, 0, 0), rotation_rad=(0.1, 0.0, 0.2), detector_size_px=(400, 300), detector_spacing_mm=1.8
    )
    truth = spine_centres()[:3]
    px = torch.stack((lat.project(truth), ap.project(truth)), dim=1)
    placed = PlaceVertebrae(size=32, spacing_mm=2.0)(lat, ap.to_dict(), px)
    centre_vox = torch.tensor([15.5, 15.5, 15.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close((placed.affines @ centre_vox)[:, :3], truth, atol=1e-6, rtol=0)
    torch.testing.assert_close(placed.affines[0, :3, 0] / 2.0, lat.rotation[:, 1], atol=1e-12, rtol=0)


def test_place_vertebraed_adds_centres_residuals_and_affines():
    lat, ap = biplanar_views((0, 0, 0), detector_size_px=(400, 300), detector_spacing_mm=1.8)
    truth = spine_centres()[:2]
    d = {
        "centroid_px": torch.stack((lat.project(truth), ap.project(truth)), dim=1),
        "lateral_geometry": lat,
        "ap_geometry": ap,
    }
    out = PlaceVertebraed()(d)
    torch.testing.assert_close(out["centre_mm"], truth, atol=1e-6, rtol=0)
    assert out["residual_mm"].shape == (2,) and out["vertebra_affine"].shape == (2, 4, 4)


INVALID_PLACEMENT = [({"placement": "parallel"}, "parallel"), ({"centroid_px": torch.zeros(3, 2)}, r"\(B, 2, 2\)")]


@pytest.mark.parametrize("kw,match", INVALID_PLACEMENT, ids=["unknown-rule", "bad-shape"])
def test_invalid_placement_input_is_rejected(kw, match):
    lat, ap = biplanar_views((0, 0, 0))
    args = {"centroid_px": torch.full((1, 2, 2), 100.0), "placement": Placement.CONE_BEAM, **kw}
    with pytest.raises(ValueError, match=match):
        place_vertebrae(lat, ap, **args)
