"""Overlays at the radiograph's own resolution (:func:`overlay_radiograph`), not at the working spacing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.outputs.test_overlay import ras_grid, world_box
from transvert_monai.io import Radiograph
from transvert_monai.outputs import MAX_OVERLAY_SIDE_PX, label_colour, overlay_radiograph


UPPER, LOWER = 9, 20  # T2, L1: colours that are not grey (T1's is tab10's grey)
BOX_CENTRES_MM = {UPPER: [12.5, 0.0, 35.0], LOWER: [-2.0, 15.0, -27.5]}


def phantom(voxel_mm=1.0):
    """An asymmetric spine: T2 superior and on the patient's right, L1 inferior and anterior, of different sizes."""
    vol, affine = ras_grid(tuple(round(n / voxel_mm) for n in (80, 80, 120)), voxel_mm)
    vol = world_box(vol, affine, UPPER, (5.0, -8.0, 25.0), (20.0, 8.0, 45.0))  # T2
    vol = world_box(vol, affine, 20, (-12.0, 5.0, -40.0), (8.0, 25.0, -15.0))  # L1
    return vol, affine


def radiograph(view, shape=(640, 400), spacing=0.6, flipped=False):
    pixels = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    return Radiograph(pixels, (spacing, spacing), view, flipped_horizontal=flipped)


def colour(label):
    return np.round(label_colour(label) * 255).astype(np.uint8)


def pixels_of(rgb, label):
    return np.nonzero((rgb == colour(label)).all(-1))


def expected_mask(view_geometry, vol, affine, label):
    """The detector pixels whose centre's ray meets the label's world box (voxel centres ± half a voxel)."""
    from transvert_monai.outputs import project_label_volume

    return project_label_volume(view_geometry, (vol == label).to(torch.uint8) * label, affine) == label


@pytest.mark.parametrize("view", ["lateral", "ap"])
def test_overlay_has_the_radiographs_pixels_and_the_projection_where_its_geometry_says(tmp_path, view):
    vol, affine = phantom()
    image = radiograph(view)  # 400 × 640 pixels of 0.6 mm: 133 × 213 at the 1.8 mm working spacing
    work = image.geometry()
    path = overlay_radiograph(image, tmp_path / "overlay.png", vol, affine, geometry=work, alpha=1.0)
    rgb = np.asarray(Image.open(path))
    assert rgb.shape == (640, 400, 3)
    native = image.geometry(None)
    for label in (UPPER, LOWER):
        drawn = np.zeros((640, 400), dtype=bool)
        drawn[pixels_of(rgb, label)] = True
        truth = expected_mask(native, vol, affine, label)
        # the projection lands on the right pixels: the same region, up to its border
        assert (drawn & truth).sum() / truth.sum() > 0.97 and (drawn & ~truth).sum() / truth.sum() < 0.03
        rows, cols = np.nonzero(drawn)
        box_centre_mm = BOX_CENTRES_MM[label]
        centre = native.project(torch.tensor([box_centre_mm], dtype=torch.float64))[0]
        assert abs(rows.mean() - float(centre[0])) < 2 and abs(cols.mean() - float(centre[1])) < 2
    # superior at the top: T2 above L1
    assert pixels_of(rgb, UPPER)[0].mean() < pixels_of(rgb, LOWER)[0].mean()
    if view == "ap":  # the patient's right (T2) on the image's left
        assert pixels_of(rgb, UPPER)[1].mean() < pixels_of(rgb, LOWER)[1].mean()
    else:  # lateral: anterior (L1) on the image's left in this geometry's convention
        a = native.project(torch.tensor([[0.0, 30.0, 0.0]], dtype=torch.float64))[0, 1]
        p = native.project(torch.tensor([[0.0, -30.0, 0.0]], dtype=torch.float64))[0, 1]
        assert (pixels_of(rgb, LOWER)[1].mean() < pixels_of(rgb, UPPER)[1].mean()) == bool(a < p)


def test_grey_pixels_are_the_radiograph_itself(tmp_path):
    vol, affine = phantom()
    image = radiograph("lateral")
    rgb = np.asarray(Image.open(overlay_radiograph(image, tmp_path / "o.png", vol, affine, alpha=1.0)))
    grey = rgb[..., 0].astype(np.float64)
    free = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    lo, hi = np.percentile(image.pixels.numpy(), (1, 99))
    expected = np.clip((image.pixels.numpy() - lo) / (hi - lo), 0, 1) * 255
    assert np.abs(grey[free] - expected[free]).max() <= 0.5 + 1e-6


def test_working_and_native_overlays_agree(tmp_path):
    from transvert_monai.outputs import overlay_projection

    vol, affine = phantom()
    image = radiograph("ap")
    work = image.geometry()
    small_png = overlay_projection(image.resampled().pixels, work, vol, affine, tmp_path / "w.png", alpha=1.0)
    small = np.asarray(Image.open(small_png))
    big = np.asarray(Image.open(overlay_radiograph(image, tmp_path / "n.png", vol, affine, geometry=work, alpha=1.0)))
    assert small.shape[:2] == (213, 133) and big.shape[:2] == (640, 400)
    for label in (UPPER, LOWER):  # the same region of the detector, in mm, at both resolutions
        for rgb, spacing in ((small, 640 * 0.6 / 213), (big, 0.6)):
            rows, _ = pixels_of(rgb, label)
            assert rows.size
        r_small = (pixels_of(small, label)[0].mean() - 106) * 640 * 0.6 / 213
        r_big = (pixels_of(big, label)[0].mean() - 319.5) * 0.6
        assert abs(r_small - r_big) < 1.8


def test_centroid_marks_move_to_the_native_pixels(tmp_path):
    vol, affine = phantom()
    image = radiograph("lateral")
    work = image.geometry()
    mark_work = torch.tensor([[20.0, 30.0]], dtype=torch.float64)  # working pixels (1.8 mm, 213 × 133)
    rgb = np.asarray(Image.open(overlay_radiograph(image, tmp_path / "o.png", vol, affine, work, points_px=mark_work)))
    # the same detector point: mm from the detector centre kept
    r = (20.0 - (213 - 1) / 2) * 1.8 / 0.6 + (640 - 1) / 2
    c = (30.0 - (133 - 1) / 2) * 1.8 / 0.6 + (400 - 1) / 2
    assert (rgb[round(r), round(c)] == 255).all()
    # and the radiograph's own native → working map sends it back
    np.testing.assert_allclose(image.to_working_px(torch.tensor([r, c])).numpy(), [20.0, 30.0], atol=1e-9)


def test_a_mirrored_radiograph_is_drawn_in_the_files_orientation(tmp_path):
    vol, affine = phantom()
    plain = np.asarray(Image.open(overlay_radiograph(radiograph("ap"), tmp_path / "a.png", vol, affine, alpha=1.0)))
    mirrored = radiograph("ap", flipped=True)
    flipped = np.asarray(Image.open(overlay_radiograph(mirrored, tmp_path / "b.png", vol, affine, alpha=1.0)))
    np.testing.assert_array_equal(flipped, plain[:, ::-1])


@pytest.mark.parametrize("voxel_mm", [1.0, 3.0], ids=["fine-model", "coarse-model"])
def test_a_large_radiograph_is_capped_at_the_stated_side_without_gaps(tmp_path, voxel_mm):
    vol, affine = phantom(voxel_mm)  # 3 mm voxels span ~10 output pixels: more than the 4 sub-samples per axis
    image = radiograph("lateral", shape=(4800, 2000), spacing=0.15)
    path = overlay_radiograph(image, tmp_path / "big.png", vol, affine, alpha=1.0)
    rgb = np.asarray(Image.open(path))
    assert MAX_OVERLAY_SIDE_PX == 2048 and rgb.shape == (2048, 853, 3)
    # no gaps: the projected T2 is one solid region, its bounding box filled
    rows, cols = pixels_of(rgb, UPPER)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert rows.size / box > 0.97


def test_a_geometry_of_another_detector_is_refused(tmp_path):
    vol, affine = phantom()
    other = radiograph("lateral", shape=(300, 300)).geometry()
    with pytest.raises(ValueError, match="detector"):
        overlay_radiograph(radiograph("lateral"), tmp_path / "x.png", vol, affine, geometry=other)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kw,match", [({"alpha": 1.5}, "alpha"), ({"max_side_px": 0}, "max_side_px")])
def test_bad_options_are_refused(tmp_path, kw, match):
    vol, affine = phantom()
    with pytest.raises(ValueError, match=match):
        overlay_radiograph(radiograph("ap"), tmp_path / "x.png", vol, affine, **kw)
