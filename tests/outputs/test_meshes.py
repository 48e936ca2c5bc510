from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_affine, reorient
from transvert_monai.outputs import write_label_volume_nifti, write_meshes

trimesh = pytest.importorskip("trimesh")


def box_volume():
    vol = torch.zeros(30, 30, 20, dtype=torch.uint8)
    vol[5:15, 8:20, 3:9] = 20
    vol[12:25, 10:22, 11:17] = 21
    return vol


def ball(shape=(24, 24, 24), radius=8.0, hole=False):
    idx = np.indices(shape).astype(np.float64) - (np.asarray(shape)[:, None, None, None] - 1) / 2
    r = np.sqrt((idx**2).sum(0))
    mask = r <= radius
    if hole:  # a through-hole along axis 2: a torus-like single component
        mask &= np.sqrt(idx[0] ** 2 + idx[1] ** 2) > 3
    return mask


def l_shape(shape=(20, 20, 20)):
    mask = np.zeros(shape, dtype=bool)
    mask[3:16, 3:7, 3:16] = True
    mask[3:7, 3:16, 3:16] = True
    return mask


ONE_COMPONENT_CASES = [("ball", ball()), ("torus", ball(hole=True)), ("l-shape", l_shape())]


@pytest.mark.parametrize("name,mask", ONE_COMPONENT_CASES, ids=[c[0] for c in ONE_COMPONENT_CASES])
@pytest.mark.parametrize("axcodes", ["RAS", "LPS"])
def test_one_component_gives_a_watertight_outward_mesh(tmp_path, name, mask, axcodes):
    vol, affine = reorient(torch.from_numpy(mask.astype(np.uint8) * 20), make_affine(), axcodes)
    paths = write_meshes(vol, affine, tmp_path, formats=("stl", "ply"))
    for path in paths["L1"] + paths["spine"]:
        mesh = trimesh.load(path, force="mesh")
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 0  # normals point outwards, also for a mirroring (LPS) affine
        voxel_mm3 = abs(float(torch.linalg.det(affine[:3, :3])))
        assert mesh.volume == pytest.approx(mask.sum() * voxel_mm3, rel=0.15)


def test_vertices_are_in_world_millimetres(tmp_path):
    affine = make_affine(spacing=(1.0, 1.0, 2.5), origin=(-40.0, -40.0, -50.0))
    vol = box_volume()
    mesh = trimesh.load(write_meshes(vol, affine, tmp_path, formats=("stl",))["L1"][0], force="mesh")
    # marching cubes at 0.5 on a box: the surface is the box's outer voxel faces
    lo = affine[:3, :3] @ torch.tensor([4.5, 7.5, 2.5], dtype=torch.float64) + affine[:3, 3]
    hi = affine[:3, :3] @ torch.tensor([14.5, 19.5, 8.5], dtype=torch.float64) + affine[:3, 3]
    np.testing.assert_allclose(mesh.bounds, torch.stack((lo, hi)).numpy(), atol=1e-6)


def test_one_file_per_vertebra_and_format_plus_the_spine(tmp_path):
    paths = write_meshes(box_volume(), make_affine(), tmp_path, formats=("stl", "ply", "obj"))
    assert sorted(paths) == ["L1", "L2", "spine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.{f}" for n in ("L1", "L2", "spine") for f in ("stl", "ply", "obj")
    )


def test_metatensor_carries_its_affine(tmp_path):
    from monai.data import MetaTensor

    affine = make_affine(origin=(10.0, 0.0, 0.0))
    paths = write_meshes(MetaTensor(box_volume()[None], affine=affine), None, tmp_path, formats=("ply",))
    assert trimesh.load(paths["L1"][0], force="mesh").bounds[0, 0] == pytest.approx(10.0 + 4.5)


BAD_CASES = [
    ({"label_volume": torch.zeros(4, 4, 4, dtype=torch.uint8)}, "empty"),
    ({"formats": ("vtk",)}, "formats"),
    ({"label_volume": torch.full((4, 4, 4), 26)}, "VerSe"),
    ({"label_volume": torch.full((4, 4, 4), 2.5)}, "whole-number"),
    ({"label_volume": torch.ones(4, 4)}, "3D"),
]


@pytest.mark.parametrize("kw,match", BAD_CASES, ids=["empty", "format", "not-verse", "fractional", "2d"])
def test_bad_input_fails_before_any_file_is_written(tmp_path, kw, match):
    args = {"label_volume": box_volume(), "affine": make_affine(), "folder": tmp_path / "out", **kw}
    with pytest.raises(ValueError, match=match):
        write_meshes(**args)
    assert not (tmp_path / "out").exists()


def test_label_map_nifti_round_trip(tmp_path):
    import nibabel as nib

    vol, affine = reorient(box_volume(), make_affine(), "PIR")
    path = write_label_volume_nifti(vol, affine, tmp_path / "spine.nii.gz")
    img = nib.load(str(path))
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), vol.numpy())
    np.testing.assert_allclose(img.affine, affine.numpy(), atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["spine.nii.gz"]  # no temporary left behind


def test_label_map_needs_a_nifti_name(tmp_path):
    with pytest.raises(ValueError, match="NIfTI"):
        write_label_volume_nifti(box_volume(), make_affine(), tmp_path / "spine.nrrd")


def test_label_map_without_affine_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="affine"):
        write_label_volume_nifti(box_volume(), None, tmp_path / "spine.nii.gz")
