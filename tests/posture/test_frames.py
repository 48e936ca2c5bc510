from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import reorient
from tests.posture.phantoms import phantom_volume
from transvert_monai.errors import TransVertInputError
from transvert_monai.posture import (
    VertebraPose,
    angles_to_rotation,
    poses_from_label_map,
    rotation_angle_deg,
    rotation_to_angles,
    vertebra_pose,
)

ORIGIN = np.array([5.0, -20.0, 30.0])
KNOWN_POSES = [
    ((0.0, 0.0, 0.0), "neutral"),
    ((20.0, 0.0, 0.0), "flexion"),
    ((0.0, 15.0, 0.0), "lateral_bending"),
    ((0.0, 0.0, 25.0), "axial_rotation"),
    ((-12.0, 8.0, -17.0), "combined"),
]


@pytest.mark.parametrize("angles,name", KNOWN_POSES, ids=[k[1] for k in KNOWN_POSES])
def test_rotated_phantom_pose_is_recovered(angles, name):
    rotation = angles_to_rotation(*angles)
    occ, affine = phantom_volume(rotation, ORIGIN, spacing=(1.0, 1.0, 1.0), size=(84, 84, 84))
    pose = vertebra_pose(occ, affine, ORIGIN, label=15)
    assert rotation_angle_deg(pose.rotation, rotation) < 2.0
    recovered = pose.angles_deg()
    for key, value in zip(("flexion", "lateral_bending", "axial_rotation"), angles):
        assert recovered[key] == pytest.approx(value, abs=2.0)
    np.testing.assert_allclose(pose.origin_mm, ORIGIN)
    assert np.linalg.det(pose.rotation) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("axcodes", ["LPS", "PIR", "LAS"])
def test_pose_does_not_depend_on_voxel_orientation(axcodes):
    rotation = angles_to_rotation(10.0, -6.0, 12.0)
    occ, affine = phantom_volume(rotation, ORIGIN, spacing=(0.8, 0.8, 2.0), size=(100, 100, 40))
    mask = torch.from_numpy((occ >= 0.5).astype(np.int64) * 15)
    ras = poses_from_label_map(mask, torch.from_numpy(affine), {15: ORIGIN})[15]
    arr, aff = reorient(mask, torch.from_numpy(affine), axcodes)
    other = poses_from_label_map(arr, aff, {15: ORIGIN})[15]
    assert rotation_angle_deg(ras.rotation, other.rotation) < 0.2
    assert rotation_angle_deg(ras.rotation, rotation) < 3.0  # anisotropic 2 mm slices, binary mask


def test_angle_signs_follow_the_stated_convention():
    # flexion tilts the superior axis anteriorly (+y), lateral bending to the right (+x),
    # axial rotation turns the anterior axis to the left (-x)
    assert angles_to_rotation(flexion=10.0)[:, 2][1] > 0
    assert angles_to_rotation(lateral_bending=10.0)[:, 2][0] > 0
    assert angles_to_rotation(axial_rotation=10.0)[:, 1][0] < 0
    angles = {"flexion": -7.0, "lateral_bending": 4.0, "axial_rotation": 11.0}
    assert rotation_to_angles(angles_to_rotation(**angles)) == pytest.approx(angles)


def test_pose_dict_is_json_ready_and_states_its_conventions():
    import json

    pose = VertebraPose(15, ORIGIN, angles_to_rotation(5.0, 0.0, 0.0))
    d = json.loads(json.dumps(pose.to_dict()))
    assert set(d) >= {"origin_mm", "rotation_matrix", "angles_deg", "method"}
    assert "convention" in d["angles_deg"] and d["angles_deg"]["flexion"] == pytest.approx(5.0)
    np.testing.assert_allclose(np.array(d["rotation_matrix"])[:, 2], d["axes_ras"]["superior"], atol=1e-6)
    np.testing.assert_allclose(d["axes_ras"]["left"], -np.array(d["rotation_matrix"])[:, 0], atol=1e-6)


def test_transformed_pose_moves_with_the_transform():
    pose = VertebraPose(15, ORIGIN, np.eye(3))
    t = np.eye(4)
    t[:3, :3] = angles_to_rotation(0.0, 0.0, 30.0)
    t[:3, 3] = [1.0, 2.0, 3.0]
    moved = pose.transformed(t)
    np.testing.assert_allclose(moved.origin_mm, t[:3, :3] @ ORIGIN + t[:3, 3])
    assert moved.angles_deg()["axial_rotation"] == pytest.approx(30.0)


def test_empty_occupancy_is_rejected():
    with pytest.raises(TransVertInputError, match="empty"):
        vertebra_pose(np.zeros((10, 10, 10)), np.eye(4), ORIGIN, label=15)


def test_label_map_without_affine_is_rejected():
    with pytest.raises(TransVertInputError, match="no affine"):
        poses_from_label_map(np.zeros((5, 5, 5), dtype=np.int64))


def test_missing_label_is_named():
    with pytest.raises(TransVertInputError, match="T9"):
        poses_from_label_map(np.zeros((5, 5, 5), dtype=np.int64), np.eye(4), labels=[16])
