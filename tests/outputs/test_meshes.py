from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_affine, reorient
from transvert_monai.outputs import load_mesh_ras, mesh_space, write_label_volume_nifti, write_meshes

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


LPS = np.array([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("fmt", ["stl", "ply", "obj"])
@pytest.mark.parametrize("axcodes", ["RAS", "LPS", "PIR"])
def test_files_hold_lps_millimetres_of_the_label_map_world(tmp_path, fmt, axcodes):
    # an asymmetric box, in a label map of any orientation: the file's vertices are its RAS world corners, x y negated
    vol, affine = reorient(box_volume(), make_affine(spacing=(1.0, 1.0, 2.5), origin=(-40.0, -40.0, -50.0)), axcodes)
    mesh = trimesh.load(write_meshes(vol, affine, tmp_path, formats=(fmt,))["L1"][0], force="mesh")
    ras_box = make_affine(spacing=(1.0, 1.0, 2.5), origin=(-40.0, -40.0, -50.0))
    # marching cubes at 0.5 on a box: the surface is the box's outer voxel faces
    lo = (ras_box[:3, :3] @ torch.tensor([4.5, 7.5, 2.5], dtype=torch.float64) + ras_box[:3, 3]).numpy()
    hi = (ras_box[:3, :3] @ torch.tensor([14.5, 19.5, 8.5], dtype=torch.float64) + ras_box[:3, 3]).numpy()
    corners = np.stack((lo, hi)) * LPS  # RAS → LPS
    np.testing.assert_allclose(mesh.bounds, np.sort(corners, axis=0), atol=1e-5)
    # every vertex, x y negated back to RAS and through the label map's world → voxel map, lies on the box's faces
    idx = (mesh.vertices * LPS - ras_box[:3, 3].numpy()) @ np.linalg.inv(ras_box[:3, :3].numpy()).T
    box_lo, box_hi = np.array([4.5, 7.5, 2.5]), np.array([14.5, 19.5, 8.5])
    assert np.all(idx > box_lo - 1e-6) and np.all(idx < box_hi + 1e-6)
    assert (np.isclose(idx, box_lo, atol=1e-6) | np.isclose(idx, box_hi, atol=1e-6)).any(axis=1).all()
    assert mesh.is_watertight and mesh.volume > 0  # a rotation, not a mirror: outward normals kept


@pytest.mark.parametrize("fmt,marker", [("stl", b"SPACE=LPS"), ("ply", b"comment SPACE=LPS"), ("obj", b"# SPACE=LPS")])
def test_files_declare_lps(tmp_path, fmt, marker):
    (path,) = write_meshes(box_volume(), make_affine(), tmp_path, formats=(fmt,))["L1"]
    head = path.read_bytes()[:200]
    assert marker in head and mesh_space(path) == "LPS"
    if fmt == "stl":
        assert head.startswith(b"SPACE=LPS") and not head.startswith(b"solid")  # stays a binary STL


def test_stl_header_is_trimesh_metadata(tmp_path):
    (path,) = write_meshes(box_volume(), make_affine(), tmp_path, formats=("stl",))["L2"]
    assert trimesh.load(path, force="mesh").metadata["header"].startswith("SPACE=LPS")


def test_load_mesh_ras_undoes_the_file_space(tmp_path):
    affine = make_affine(origin=(10.0, -20.0, 5.0))
    (path,) = write_meshes(box_volume(), affine, tmp_path, formats=("ply",))["L1"]
    in_ras = load_mesh_ras(path)
    lo = affine[:3, :3] @ torch.tensor([4.5, 7.5, 2.5], dtype=torch.float64) + affine[:3, 3]
    np.testing.assert_allclose(in_ras.bounds[0], lo.numpy(), atol=1e-5)
    assert in_ras.volume > 0


def test_a_file_without_declaration_is_read_as_ras(tmp_path):
    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    box.apply_translation([5.0, 0.0, 0.0])
    box.export(str(tmp_path / "old.stl"))
    assert mesh_space(tmp_path / "old.stl") is None
    np.testing.assert_allclose(load_mesh_ras(tmp_path / "old.stl").bounds[0], [4.0, -1.0, -1.0], atol=1e-6)


def test_dicom_stl_of_our_files_is_lps_once(tmp_path):
    import io

    from transvert_monai.dicom.stl import lps_stl_bytes

    affine = make_affine(origin=(10.0, -20.0, 5.0))
    (path,) = write_meshes(box_volume(), affine, tmp_path, formats=("stl",))["L1"]
    data, _ = lps_stl_bytes(path)
    assert data.startswith(b"SPACE=LPS")
    decoded = trimesh.load(io.BytesIO(data), file_type="stl")
    np.testing.assert_allclose(decoded.bounds, trimesh.load(path).bounds, atol=1e-5)  # not flipped twice


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
    assert trimesh.load(paths["L1"][0], force="mesh").bounds[1, 0] == pytest.approx(-(10.0 + 4.5))  # LPS x = −RAS x


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
