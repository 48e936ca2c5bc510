from __future__ import annotations

import json

import pytest
import torch
from monai.data import MetaTensor, set_track_meta
from monai.transforms import Compose

from tests.io.synthetic import gradient_image, write_png
from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.io import Radiograph
from transvert_monai.transforms.radiograph import LoadRadiographd, RadiographPatches, RadiographPatchesd

CENTROIDS = {"lateral": {"L1": [100, 70], "L2": [150, 72]}, "ap": {"L1": [101, 80], "L2": [151, 79]}}


def views():
    return Radiograph(torch.rand(200, 150), 0.5, "lateral"), Radiograph(torch.rand(200, 160), 0.5, "ap")


@pytest.mark.parametrize("track", [True, False], ids=["meta", "plain"])
def test_radiograph_patches_output_type_follows_track_meta(track):
    set_track_meta(track)
    try:
        out = RadiographPatches()(*views(), CENTROIDS)
    finally:
        set_track_meta(True)
    assert out.shape == (2, 4, 64, 64)
    assert isinstance(out, MetaTensor) is track
    if track:
        assert out.meta["vertebrae"] == [20, 21]
        assert ProjectionGeometry.from_dict(out.meta["ap_geometry"]).view == "ap"
        assert out.meta["centroid_px"].shape == (2, 2, 2)


INVALID_ARGS = [
    ({"sampling_grid": {"pixel_mm_at_vertebra": 0.0}}, "pixel_mm_at_vertebra"),
    ({"sampling_grid": {"patch_size": 0}}, "patch_size"),
    ({"sampling_grid": {"voi_radius_px": -1}}, "voi_radius_px"),
    ({"sampling_grid": {"working_spacing_mm": 1.8}}, "unknown sampling-grid fields"),
]


@pytest.mark.parametrize("kw,match", INVALID_ARGS, ids=["pixel", "patch", "radius", "old-argument"])
def test_invalid_arguments_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        RadiographPatches(**kw)


def test_non_radiograph_input_is_a_type_error():
    with pytest.raises(TypeError, match="read_radiograph"):
        RadiographPatches()(torch.zeros(10, 10), views()[1], CENTROIDS)


def test_dictionary_pipeline_from_files(tmp_path):
    side = {"pixel_spacing_mm": 0.5}
    item = {
        "lateral": str(write_png(tmp_path / "lat.png", gradient_image((200, 150)), side)),
        "ap": str(write_png(tmp_path / "ap.png", gradient_image((200, 160)), side)),
        "centroids": str(tmp_path / "c.json"),
    }
    (tmp_path / "c.json").write_text(json.dumps(CENTROIDS))
    out = Compose(
        [LoadRadiographd(["lateral", "ap"], flip_horizontal=[False, True]), RadiographPatchesd(["lateral", "ap"])]
    )(item)
    assert out["image"].shape == (2, 4, 64, 64) and out["vertebrae"] == [20, 21]
    assert out["lateral_geometry"].view == "lateral" and out["ap_geometry"].detector_size_px == (56, 44)
    assert out["centroid_px"].shape == (2, 2, 2) and out["missing_vertebrae"] == {}
    assert out["ap"].flipped_horizontal


def test_dictionary_transform_needs_two_keys():
    with pytest.raises(ValueError, match="two keys"):
        RadiographPatchesd(["lateral"])


def test_missing_centroids_item_is_a_key_error():
    lat, ap = views()
    with pytest.raises(KeyError, match="centroids"):
        RadiographPatchesd()({"lateral": lat, "ap": ap})


def test_load_radiograph_needs_known_views():
    with pytest.raises(ValueError, match="lateral"):
        LoadRadiographd(["left", "right"])


def test_patch_size_and_disc_come_from_the_sampling_grid():
    out = RadiographPatches(sampling_grid={"patch_size": 32, "target_size": 32, "voi_radius_px": 2.0})(*views(), CENTROIDS)
    assert out.shape == (2, 4, 32, 32)
    # radius 2 around the centre (15.5, 15.5): the pixels within 2 patch pixels, 12 of them
    assert out[0, 1].sum() == 12 and out[0, 1, 15:17, 15:17].all()
