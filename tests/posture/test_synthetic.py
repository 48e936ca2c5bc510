from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from tests.posture.phantoms import phantom_volume
from transvert_monai.data.labels import name_to_label
from transvert_monai.errors import TransVertInputError
from transvert_monai.posture import angles_to_rotation, rotation_to_angles
from transvert_monai.posture.synthetic import (
    apply_transform,
    chain_transforms,
    piecewise_rigid_resample,
    posture_scenario,
)

THORACIC = {name_to_label(f"T{i}"): np.array([0.0, 0.0, -22.0 * i]) for i in range(1, 13)}


def test_kyphosis_scenario_adds_10_degrees_between_t4_and_t12():
    moves = posture_scenario("kyphosis_plus10", THORACIC)
    relative = moves[name_to_label("T12")][:3, :3].T @ moves[name_to_label("T4")][:3, :3]
    assert rotation_to_angles(relative)["flexion"] == pytest.approx(10.0, abs=1e-6)
    np.testing.assert_allclose(moves[name_to_label("T12")], np.eye(4))


def test_scoliosis_scenario_bends_15_degrees_with_apical_rotation():
    moves = posture_scenario("scoliosis15", THORACIC)
    t5, t8, t11 = (moves[name_to_label(n)][:3, :3] for n in ("T5", "T8", "T11"))
    s5, s11 = t5[:, 2], t11[:, 2]
    tilt = np.degrees(np.arctan2(s5[0], s5[2]) - np.arctan2(s11[0], s11[2]))
    assert abs(tilt) == pytest.approx(15.0, abs=0.5)
    assert abs(rotation_to_angles(t11.T @ t8)["axial_rotation"]) > 5.0


def test_chain_joint_turns_about_the_joint_centre():
    cent = {19: np.array([0.0, 0.0, 0.0]), 18: np.array([0.0, 0.0, 20.0])}
    moves = chain_transforms(cent, {(18, 19): (10.0, 0.0, 0.0)})
    np.testing.assert_allclose(apply_transform(moves[18], [0.0, 0.0, 10.0]), [0.0, 0.0, 10.0], atol=1e-9)


def test_unknown_scenario_and_missing_levels_are_rejected():
    with pytest.raises(TransVertInputError, match="unknown"):
        posture_scenario("handstand", THORACIC)
    with pytest.raises(TransVertInputError, match="L5"):
        posture_scenario("lordosis_plus10", THORACIC)


def test_piecewise_rigid_resample_moves_each_vertebra_rigidly():
    # two phantom vertebrae in one volume; move the upper one by a known rigid motion
    occ_a, affine = phantom_volume(np.eye(3), (0.0, 0.0, 0.0), size=(80, 70, 110))
    labels = np.zeros(occ_a.shape, dtype=np.int64)
    # vertebra 16 centred on the grid, 15 the same shape 40 mm (voxels) above it
    occ_b = np.roll(occ_a, 40, axis=2)
    labels[occ_a >= 0.5] = 16
    labels[occ_b >= 0.5] = 15
    hu = np.where(labels > 0, 800.0, 0.0).astype(np.float32)
    a = torch.from_numpy(affine)
    ct, mask = MetaTensor(torch.from_numpy(hu)[None], affine=a), MetaTensor(torch.from_numpy(labels)[None], affine=a.clone())
    centroids = {16: np.zeros(3), 15: np.array([0.0, 0.0, 40.0])}
    move = np.eye(4)
    move[:3, :3] = angles_to_rotation(0.0, 8.0, 5.0)
    move[:3, 3] = [2.0, -1.0, 3.0]
    moves = {16: np.eye(4), 15: move}
    moved_ct, moved_mask, moved_c = piecewise_rigid_resample(ct, mask, moves, centroids)
    np.testing.assert_allclose(moved_c[15].numpy(), apply_transform(move, centroids[15]))
    # every moved voxel of 15 comes from a voxel of 15 through the inverse motion
    ijk = np.argwhere(moved_mask[0].numpy() == 15).astype(np.float64)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    src = np.rint(np.linalg.solve(affine, np.c_[apply_transform(np.linalg.inv(move), world), np.ones(len(world))].T)[:3].T).astype(int)
    assert (labels[src[:, 0], src[:, 1], src[:, 2]] == 15).all()
    # the volume is kept (rigid), and the unmoved vertebra stays in place
    assert (moved_mask[0] == 15).sum().item() == pytest.approx((labels == 15).sum(), rel=0.03)
    assert ((moved_mask[0].numpy() == 16) == (labels == 16)).mean() > 0.999
    assert moved_ct.shape == ct.shape and torch.allclose(moved_ct.affine.double(), a)


def test_resample_rejects_a_mask_on_another_grid():
    ct = MetaTensor(torch.zeros(1, 8, 8, 8), affine=torch.eye(4, dtype=torch.float64))
    mask = MetaTensor(torch.zeros(1, 8, 8, 7, dtype=torch.int64), affine=torch.eye(4, dtype=torch.float64))
    with pytest.raises(TransVertInputError, match="grid"):
        piecewise_rigid_resample(ct, mask, {}, {})
