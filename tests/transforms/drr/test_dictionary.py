from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from transvert_monai.geometry import ProjectionGeometry, biplanar_views, grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms import RandRenderDRRd, RenderDRR, RenderDRRd


@pytest.fixture
def data(asymmetric_phantom):
    hu, affine, markers = asymmetric_phantom
    return {"ct": MetaTensor(hu[None], affine=affine), "centre": markers["left"]}


def test_render_drrd_matches_the_array_transform(data):
    out = RenderDRRd("ct", output_keys="lateral", view="lateral", detector_size_px=(24, 24))(data)
    assert torch.equal(out["lateral"].as_tensor(), RenderDRR("lateral", detector_size_px=(24, 24))(data["ct"]).as_tensor())
    assert out["ct"] is data["ct"]


def test_render_drrd_patch_uses_the_centre_key(data):
    out = RenderDRRd("ct", output_keys="ap", centre_key="centre", view="ap", patch_size=(8, 8), detector_size_px=(96, 96))(data)
    assert out["ap"].shape == (1, 8, 8)


def test_missing_centre_key_names_it(data):
    t = RenderDRRd("ct", output_keys="ap", centre_key="nowhere", patch_size=(8, 8))
    with pytest.raises(KeyError, match="nowhere"):
        t(data)


def test_missing_key_is_skipped_when_allowed(data):
    out = RenderDRRd(["ct", "other"], output_keys=["a", "b"], allow_missing_keys=True, detector_size_px=(8, 8))(data)
    assert "a" in out and "b" not in out


def test_both_views_share_one_random_pose(data):
    t = RandRenderDRRd("ct", rotation_range_rad=0.1, translation_range_mm=10, view_angle_range_rad=0.05, detector_size_px=(24, 24))
    out = t.set_random_state(3)(data)
    lat, ap = out["ct_lateral"], out["ct_ap"]
    assert lat.meta[TransVertKeys.POSE.value] == ap.meta[TransVertKeys.POSE.value]
    pose = lat.meta[TransVertKeys.POSE.value]
    expected = biplanar_views(
        grid_centre_mm(data["ct"].affine, data["ct"].shape[1:]), pose["rotation_rad"], pose["translation_mm"], pose["view_angle_rad"],
        detector_size_px=(24, 24), detector_spacing_mm=2.0,
    )
    for out_img, g in zip((lat, ap), expected):
        assert ProjectionGeometry.from_dict(out_img.meta[TransVertKeys.GEOMETRY.value]) == g


def test_random_views_repeat_with_the_same_seed(data):
    kwargs = {"keys": "ct", "rotation_range_rad": 0.1, "detector_size_px": (24, 24)}
    a = RandRenderDRRd(**kwargs).set_random_state(5)(data)
    b = RandRenderDRRd(**kwargs).set_random_state(5)(data)
    assert torch.equal(a["ct_lateral"], b["ct_lateral"]) and torch.equal(a["ct_ap"], b["ct_ap"])


def test_output_keys_must_come_in_pairs():
    with pytest.raises(ValueError, match="pair"):
        RandRenderDRRd("ct", output_keys=[("only_one",)])
