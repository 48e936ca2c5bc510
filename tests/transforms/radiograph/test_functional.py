from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.io.synthetic import write_png
from transvert_monai.geometry import SamplingGrid
from transvert_monai.io import Radiograph, read_radiograph
from transvert_monai.transforms.radiograph import extract_radiograph_samples, sample_patches

SPACING = 0.15  # original pixels (mm)
SIDE = {"pixel_spacing_mm": [SPACING, SPACING], "source_to_detector_mm": 1800, "source_to_patient_mm": 1500}


def blob_image(shape, centres, sigma_px=24.0):
    """Gaussian blobs (σ = 2 working pixels of 1.8 mm) on a dark background, 16-bit range."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    img = np.zeros(shape)
    for r, c in centres:
        img += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma_px**2))
    return (100 + 60000 * img).round()


def weighted_centre(patch: torch.Tensor) -> torch.Tensor:
    w = (patch - patch.median()).clamp_min(0).double()  # the blob above the background (and the zero padding)
    r, c = torch.meshgrid(torch.arange(patch.shape[0]), torch.arange(patch.shape[1]), indexing="ij")
    return torch.stack(((w * r).sum(), (w * c).sum())) / w.sum()


@pytest.fixture
def pair(tmp_path):
    """Lateral and AP PNGs (0.15 mm) with a blob per vertebra; the AP file is stored mirrored (read with a flip)."""
    lat_c = {"T12": (311.7, 402.2), "L1": (905.3, 380.6)}
    ap_c = {"T12": (312.4, 170.9), "L1": (906.0, 601.3)}  # file pixels
    lat = write_png(tmp_path / "lat.png", blob_image((1200, 900), lat_c.values()), SIDE)
    ap = write_png(tmp_path / "ap.png", blob_image((1200, 800), ap_c.values()), SIDE)
    centroids = tmp_path / "centroids.json"
    centroids.write_text(
        json.dumps({"lateral": {k: list(v) for k, v in lat_c.items()}, "ap": {k: list(v) for k, v in ap_c.items()}})
    )
    return lat, ap, centroids


def test_the_dot_is_at_the_patch_centre_after_resampling(pair):
    lat_path, ap_path, centroids = pair
    lat = read_radiograph(lat_path, "lateral")
    ap = read_radiograph(ap_path, "ap", flip_horizontal=True)
    s = extract_radiograph_samples(lat, ap, centroids)
    assert s.image.shape == (2, 4, 64, 64) and s.labels == [19, 20]
    centre = torch.full((2,), 31.5, dtype=torch.float64)
    for b in range(2):
        for view, channel in ((0, 0), (1, 2)):
            # scale-true patches are centred on the centroid: it sits at (P − 1) / 2 in patch pixels
            local = (s.centroid_px[b, view] - s.patch_origin_px[b, view]) / s.patch_step_px[b, view]
            torch.testing.assert_close(local, centre, atol=1e-9, rtol=0)
            torch.testing.assert_close(weighted_centre(s.image[b, channel]), centre, atol=0.05, rtol=0)
            voi = s.image[b, channel + 1]
            assert voi[31:33, 31:33].all() and voi.sum() == 4  # radius 1 around 31.5: the four central pixels


def test_patches_are_z_scored_and_discs_binary(pair):
    lat_path, ap_path, centroids = pair
    s = extract_radiograph_samples(
        read_radiograph(lat_path, "lateral"), read_radiograph(ap_path, "ap", flip_horizontal=True), centroids
    )
    images = s.image[:, [0, 2]]
    torch.testing.assert_close(images.mean(dim=(-2, -1)), torch.zeros(2, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(images.std(dim=(-2, -1), unbiased=False), torch.ones(2, 2), atol=1e-4, rtol=0)
    assert set(s.image[:, [1, 3]].unique().tolist()) == {0.0, 1.0}
    assert s.lateral_image.shape == s.lateral_geometry.detector_size_px == (100, 75)


def test_working_geometry_is_the_preset_at_the_working_spacing(pair):
    lat_path, ap_path, centroids = pair
    s = extract_radiograph_samples(
        read_radiograph(lat_path, "lateral"),
        read_radiograph(ap_path, "ap", flip_horizontal=True),
        centroids,
        grid=SamplingGrid(pixel_mm_at_vertebra=1.25),
    )
    # working pixels span the grid's pixel at the isocentre: 1.25 mm · 1800 / 1500 = 1.5 mm
    assert s.lateral_geometry.detector_spacing_mm == pytest.approx((1.5, 1.5)) and s.ap_geometry.view == "ap"
    assert s.ap_geometry.detector_size_px == (120, 80)


PATCH_CASES = [(0.0, 0.0), (9.0, 5.0), (99.0, 79.0)]


@pytest.mark.parametrize("centre", PATCH_CASES, ids=["corner", "near-corner", "far-corner"])
def test_sampled_patches_are_exact_on_pixels_and_zero_outside_the_image(centre):
    image = torch.arange(100 * 80, dtype=torch.float32).reshape(100, 80) + 1
    offsets = torch.arange(64, dtype=torch.float64) - 31.5
    rows, cols = torch.meshgrid(centre[0] + 0.5 + offsets, centre[1] + 0.5 + offsets, indexing="ij")
    pixels = torch.stack((rows, cols), dim=-1)[None]  # whole-pixel positions
    patch = sample_patches(image, pixels)[0]
    inside = (rows >= 0) & (rows <= 99) & (cols >= 0) & (cols <= 79)
    assert (patch[~inside] == 0).all() and (patch[inside] > 0).all()
    # on pixel centres the sample is the pixel (up to float32 coordinate rounding, ~1e-5 pixel)
    torch.testing.assert_close(patch[inside], image[rows[inside].long(), cols[inside].long()], rtol=0, atol=0.01)
    # between pixels: bilinear
    mid = sample_patches(image, torch.tensor([[[[10.5, 20.5]]]], dtype=torch.float64))
    assert float(mid) == pytest.approx(float(image[10:12, 20:22].mean()))


def test_one_view_labels_are_passed_on_as_missing():
    lat = Radiograph(torch.rand(200, 150), 0.5, "lateral")
    ap = Radiograph(torch.rand(200, 150), 0.5, "ap")
    with pytest.warns(UserWarning, match="one view only"):
        s = extract_radiograph_samples(
            lat, ap, {"lateral": {"L1": [100, 70], "L2": [150, 70]}, "ap": {"L1": [100, 80]}}
        )
    assert s.labels == [20] and s.missing == {21: "ap"}


def test_centroid_outside_the_image_fails_before_any_patch():
    lat = Radiograph(torch.rand(200, 150), 0.5, "lateral")
    ap = Radiograph(torch.rand(200, 150), 0.5, "ap")
    with pytest.raises(ValueError, match="ap centroid of L1"):
        extract_radiograph_samples(lat, ap, {"lateral": {"L1": [100, 70]}, "ap": {"L1": [100, 150]}})
