from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import reorient
from transvert_monai.geometry import ap_view, lateral_view
from transvert_monai.outputs import label_colour, overlay_projection, project_label_volume, render_views, to_ras


def ras_grid(shape=(80, 80, 120), spacing=1.0):
    affine = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=torch.float64))
    affine[:3, 3] = -(torch.tensor(shape, dtype=torch.float64) - 1) / 2 * spacing  # grid centred on the world origin
    return torch.zeros(shape, dtype=torch.uint8), affine


def world_box(vol, affine, label, lo_mm, hi_mm):
    """Set the voxels whose centres lie in the world box [lo, hi] (RAS grid)."""
    ijk = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in vol.shape], indexing="ij"), -1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    inside = ((world >= torch.tensor(lo_mm)) & (world <= torch.tensor(hi_mm))).all(-1)
    vol[inside] = label
    return vol


def test_projection_lands_where_the_geometry_says():
    vol, affine = ras_grid()
    vol = world_box(vol, affine, 20, (-10.0, -10.0, 20.0), (10.0, 10.0, 40.0))  # superior of the isocentre
    g = lateral_view(detector_size_px=(96, 96), detector_spacing_mm=1.8)
    seen = project_label_volume(g, vol, affine)
    rows, cols = np.nonzero(seen == 20)
    assert rows.max() < 47.5  # superior → upper half
    # the box spans 20 mm in z around z = 30: 20 × magnification / 1.8 mm ≈ 13–15 rows
    assert 12 <= rows.max() - rows.min() + 1 <= 16
    expected = g.project(torch.tensor([[0.0, 0.0, 30.0]], dtype=torch.float64))[0]
    assert abs(rows.mean() - float(expected[0])) < 1.0 and abs(cols.mean() - float(expected[1])) < 1.0


def test_the_vertebra_nearest_the_source_is_seen():
    vol, affine = ras_grid()
    vol = world_box(vol, affine, 20, (15.0, -5.0, -5.0), (25.0, 5.0, 5.0))  # patient's right: nearer the lateral source
    vol = world_box(vol, affine, 21, (-25.0, -5.0, -5.0), (-15.0, 5.0, 5.0))
    lat = lateral_view(detector_size_px=(64, 64), detector_spacing_mm=1.8)
    ap = ap_view(detector_size_px=(64, 64), detector_spacing_mm=1.8)
    assert set(np.unique(project_label_volume(lat, vol, affine))) == {0, 20}
    # the AP view sees them side by side, the patient's right (label 20) on the image's left
    seen = project_label_volume(ap, vol, affine)
    assert np.nonzero(seen == 20)[1].mean() < np.nonzero(seen == 21)[1].mean()


def test_overlay_png_colours_the_projection(tmp_path):
    vol, affine = ras_grid()
    vol = world_box(vol, affine, 20, (-10.0, -10.0, -10.0), (10.0, 10.0, 10.0))
    g = ap_view(detector_size_px=(64, 48), detector_spacing_mm=1.8)
    image = torch.rand(64, 48, generator=torch.Generator().manual_seed(0))
    path = overlay_projection(image, g, vol, affine, tmp_path / "ap_overlay.png", alpha=1.0, points_px=[(5.0, 5.0)])
    rgb = np.asarray(Image.open(path))
    assert rgb.shape == (64, 48, 3)
    np.testing.assert_array_equal(rgb[32, 24], np.round(label_colour(20) * 255).astype(np.uint8))
    assert rgb[60, 2, 0] == rgb[60, 2, 1] == rgb[60, 2, 2]  # grey outside the model
    assert (rgb[5, 5] == 255).all()  # the marked point


def test_overlay_rejects_an_image_of_another_detector(tmp_path):
    vol, affine = ras_grid((8, 8, 8))
    vol[2:5, 2:5, 2:5] = 20
    with pytest.raises(ValueError, match="detector"):
        overlay_projection(
            torch.zeros(10, 10), lateral_view(detector_size_px=(12, 10)), vol, affine, tmp_path / "x.png"
        )
    assert not (tmp_path / "x.png").exists()


def test_to_ras_undoes_any_axis_order():
    vol, affine = ras_grid((6, 7, 8))
    vol[1:3, 2:6, 3:4] = 20
    for codes in ("LPS", "PIR", "SAL"):
        other, other_affine = reorient(vol, affine, codes)
        ras, spacing = to_ras(other.numpy(), other_affine.numpy())
        np.testing.assert_array_equal(ras, vol.numpy())
        np.testing.assert_allclose(spacing, [1.0, 1.0, 1.0])


def test_render_views_writes_a_png(tmp_path):
    vol, affine = ras_grid((40, 40, 80))
    vol = world_box(vol, affine, 19, (-10.0, -10.0, 5.0), (10.0, 10.0, 25.0))
    vol = world_box(vol, affine, 20, (-10.0, -8.0, -25.0), (10.0, 12.0, -5.0))
    path = render_views(vol, affine, tmp_path / "views.png", dpi=40)
    img = np.asarray(Image.open(path))
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_render_views_of_an_empty_map_writes_nothing(tmp_path):
    vol, affine = ras_grid((8, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        render_views(vol, affine, tmp_path / "views.png")
    assert not (tmp_path / "views.png").exists()


def test_label_centres_are_the_centres_of_mass():
    from scipy import ndimage

    from transvert_monai.outputs.views import label_centres

    data = np.zeros((20, 30, 40), dtype=np.uint8)
    data[2:7, 3:9, 30:38] = 20
    data[10:19, 20:23, 1:4] = 8
    data[11, 21, 2] = 0  # not a box: the centre is not the box centre
    centres = label_centres(data)
    assert sorted(centres) == [8, 20]
    for label, centre in centres.items():
        np.testing.assert_allclose(centre, ndimage.center_of_mass(data == label), atol=1e-9)
