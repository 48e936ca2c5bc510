from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.data.meta_obj import set_track_meta

from transvert_monai.geometry import ProjectionGeometry, grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms import RandRenderDRR, RenderDRR

INVALID_INIT = [
    ({"view": "oblique"}, ValueError, "lateral"),
    ({"detector_spacing_mm": -1.0}, ValueError, "detector_spacing_mm"),
    ({"source_to_isocentre_mm": 0.0}, ValueError, "source_to_isocentre_mm"),
    ({"mu_water_per_mm": 0.0}, ValueError, "mu_water_per_mm"),
    ({"patch_size": (0, 4)}, ValueError, "patch_size"),
]


@pytest.fixture
def ct(asymmetric_phantom):
    hu, affine, _ = asymmetric_phantom
    return MetaTensor(hu[None], affine=affine, meta={"filename_or_obj": "phantom.nii.gz"})


def test_output_is_a_metatensor_with_the_detector_affine_and_geometry(ct):
    out = RenderDRR("ap", detector_size_px=(40, 50), detector_spacing_mm=1.5)(ct)
    assert isinstance(out, MetaTensor) and out.shape == (1, 40, 50)
    g = ProjectionGeometry.from_dict(out.meta[TransVertKeys.GEOMETRY.value])
    assert torch.allclose(out.affine.double(), g.detector_affine())
    assert out.meta["filename_or_obj"] == "phantom.nii.gz"
    assert torch.allclose(torch.tensor(g.isocentre_mm, dtype=torch.float64), grid_centre_mm(ct.affine, ct.shape[1:]))


def test_output_is_a_plain_tensor_when_meta_tracking_is_off(ct):
    set_track_meta(False)
    try:
        out = RenderDRR("lateral", detector_size_px=(8, 8))(ct)
    finally:
        set_track_meta(True)
    assert type(out) is torch.Tensor and out.shape == (1, 8, 8)


def test_patch_affine_points_at_the_patch_pixels(ct, asymmetric_phantom):
    _, _, markers = asymmetric_phantom
    full = RenderDRR("lateral", detector_size_px=(96, 96), detector_spacing_mm=1.2)(ct)
    patch = RenderDRR("lateral", detector_size_px=(96, 96), detector_spacing_mm=1.2, patch_size=(16, 16))(
        ct, centre_mm=markers["anterior"]
    )
    r, c = (int(x) for x in patch.meta["patch_origin_px"])
    assert torch.allclose(patch.as_tensor(), full.as_tensor()[:, r : r + 16, c : c + 16], atol=1e-5)
    assert torch.allclose(patch.affine[:3, 3].double(), (full.affine[:3, :3].double() @ torch.tensor([r, c, 0.0], dtype=torch.float64)) + full.affine[:3, 3].double())


def test_plain_tensor_input_without_affine_is_a_type_error():
    with pytest.raises(TypeError, match="MetaTensor"):
        RenderDRR()(torch.zeros(1, 8, 8, 8))


def test_2d_input_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(1, X, Y, Z\)"):
        RenderDRR()(MetaTensor(torch.zeros(1, 8, 8)))


def test_patch_without_centre_is_rejected(ct):
    with pytest.raises(ValueError, match="centre_mm"):
        RenderDRR(patch_size=(8, 8))(ct)


@pytest.mark.parametrize("kwargs,error,match", INVALID_INIT, ids=[c[2] for c in INVALID_INIT])
def test_bad_parameters_fail_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        RenderDRR(**kwargs)


def test_random_pose_repeats_with_the_same_seed_and_differs_with_another(ct):
    kwargs = {"view": "ap", "detector_size_px": (32, 32), "detector_spacing_mm": 2.0, "rotation_range_rad": 0.1}
    a = RandRenderDRR(**kwargs).set_random_state(7)(ct)
    b = RandRenderDRR(**kwargs).set_random_state(7)(ct)
    c = RandRenderDRR(**kwargs).set_random_state(8)(ct)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.meta[TransVertKeys.POSE.value] == b.meta[TransVertKeys.POSE.value]


def test_random_pose_with_zero_probability_is_the_nominal_view(ct):
    nominal = RenderDRR("ap", detector_size_px=(32, 32))(ct)
    out = RandRenderDRR(prob=0.0, view="ap", detector_size_px=(32, 32)).set_random_state(0)(ct)
    assert torch.equal(out.as_tensor(), nominal.as_tensor())


def test_negative_range_is_rejected():
    with pytest.raises(ValueError, match="rotation_range_rad"):
        RandRenderDRR(rotation_range_rad=-0.1)
