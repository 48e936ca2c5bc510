from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from transvert_monai.data.body_centroid import (
    body_label_map,
    body_mask_centroids,
    body_rule_centroids,
    estimate_body_centroid,
)
from transvert_monai.data.centroids import compute_centroids, read_centroids, read_verse_centroids
from transvert_monai.data.example import EXAMPLE_ABDOMEN_CASE

VERSE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "verse_sample"
VERSE_MASK = VERSE / "sub-verse004_seg-vert_msk.nii.gz"
VERSE_CTD = VERSE / "sub-verse004_seg-subreg_ctd.json"
needs_verse = pytest.mark.skipif(not VERSE_MASK.is_file(), reason="../shared/data/verse_sample is not on this machine")


def _verse():
    img = nib.load(str(VERSE_MASK))
    mask = np.asanyarray(img.dataobj).astype(np.int64)
    return img, mask, read_verse_centroids(VERSE_CTD, img.affine, img.shape)


@needs_verse
def test_canal_rule_matches_the_verse_body_centroids_within_2_5_mm():
    """Canal rule vs VerSe's annotated body centroids, real sample sub-verse004 (mask PIR, 1 × 1 × 2 mm).

    Measured distance per vertebra (mm): T9 1.4, T10 1.0, T11 0.9, T12 0.9, L1 1.7, L2 1.0, L3 1.1,
    L4 1.3, L5 2.3 (canal not closed at the 2 mm footprint pixel: anterior-half fallback); mean 1.3.
    The whole mask's centre of mass is 9.5–14.9 mm away (mean 11.7), mostly posterior.
    """
    img, mask, truth = _verse()
    estimate, methods = body_rule_centroids(mask, img.affine, list(truth))
    errors = np.array([float((estimate[v] - truth[v]).norm()) for v in truth])
    assert errors.max() < 2.5 and errors.mean() < 1.5, errors.round(1)
    assert list(methods.values()).count("canal") >= 8


@needs_verse
def test_whole_mask_centre_of_mass_lies_9_to_15_mm_from_the_verse_body_centroid():
    img, mask, truth = _verse()
    centres = compute_centroids(mask, img.affine, list(truth))
    offsets = torch.stack([centres[v] - truth[v] for v in truth])
    assert torch.all((offsets.norm(dim=1) > 9.0) & (offsets.norm(dim=1) < 15.0))
    assert torch.all(offsets[:, 1] < -9.0)  # posterior (RAS y) of the body


@needs_verse
def test_canal_rule_does_not_depend_on_the_axis_order():
    img, mask, truth = _verse()
    ras = nib.as_closest_canonical(img)  # PIR → RAS: the same voxels, axes permuted and flipped
    first, _ = body_rule_centroids(mask, img.affine, list(truth))
    second, _ = body_rule_centroids(np.asanyarray(ras.dataobj).astype(np.int64), ras.affine, list(truth))
    for v in truth:
        torch.testing.assert_close(first[v], second[v])


def test_open_vertebra_falls_back_to_the_part_anterior_of_the_centre_of_mass():
    box = np.stack(np.meshgrid(np.arange(10.0), np.arange(20.0), np.arange(5.0), indexing="ij"), -1).reshape(-1, 3)
    centre, method = estimate_body_centroid(box)
    assert method == "anterior_half"
    np.testing.assert_allclose(centre, [4.5, 14.5, 2.0])  # anterior half of y = 0..19


def test_ring_vertebra_body_is_anterior_of_its_canal():
    # a 1 mm grid "vertebra" (x 5–34, y 0–39): a ring around a canal (x 12–27, y 5–14) behind a solid
    # body; the body starts at the canal's anterior wall (y 15), so its centre is at y (15 + 39) / 2
    grid = np.zeros((40, 45, 10), dtype=np.int64)
    grid[5:35, 0:40, :] = 20
    grid[12:28, 5:15, :] = 0
    centroids, methods = body_rule_centroids(grid, np.eye(4), [20])
    assert methods == {20: "canal"}
    torch.testing.assert_close(centroids[20], torch.tensor([19.5, 27.0, 4.5], dtype=torch.float64))


def test_body_mask_centroid_is_the_centre_of_mass_of_body_and_vertebra():
    mask = np.zeros((10, 10, 10), dtype=np.int64)
    mask[:, :, :5], mask[:, :, 5:] = 20, 21
    body = np.zeros_like(mask)
    body[2:4, 6:8, :] = 1  # bodies of both vertebrae
    body[0, 0, :] = 2  # discs: ignored
    centroids = body_mask_centroids(mask, body, np.diag([2.0, 1.0, 1.0, 1.0]), [20, 21])
    torch.testing.assert_close(centroids[20], torch.tensor([5.0, 6.5, 2.0], dtype=torch.float64))
    torch.testing.assert_close(centroids[21], torch.tensor([5.0, 6.5, 7.0], dtype=torch.float64))
    assert set(np.unique(body_label_map(mask, body))) == {0, 20, 21}


def test_canal_rule_matches_the_body_mask_on_the_abdominal_patient(example_dataset):
    """Canal rule vs TotalSegmentator's body mask (body ∩ vertebra centre of mass), real abdomen, 3 mm.

    Measured (mm): L1 0.3, L2 0.4, L3 0.4, L4 0.8, L5 3.1.
    """
    case = example_dataset / "cases" / EXAMPLE_ABDOMEN_CASE
    manifest = json.loads((case / "case.json").read_text())
    assert manifest["files"]["body"] == "body.nii.gz"
    assert set(manifest["centroid_sources"].values()) == {"body_mask_centre_of_mass"}
    mask_img = nib.load(str(case / "mask.nii.gz"))
    estimate, _ = body_rule_centroids(np.asanyarray(mask_img.dataobj), mask_img.affine, manifest["vertebrae"])
    from_body = read_centroids(case / "centroids.json")
    errors = [float((estimate[v] - from_body[v]).norm()) for v in manifest["vertebrae"]]
    assert max(errors[:4]) < 1.5 and errors[4] < 4.0, np.round(errors, 1)
