from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.data.synthetic import (
    SPINE_BOXES,
    SPINE_SHAPE,
    affine_for,
    label_map,
    save_nifti,
    write_verse2019_case,
    write_verse2020_case,
)
from transvert_monai.data.centroids import CentroidSource, compute_centroids
from transvert_monai.data.convert_verse import convert_verse_case, find_verse_cases

PIR_AFFINE = affine_for("PIR", (0.8, 1.2, 2.0), origin=(-30.0, 20.0, 400.0))
COMPLETE = [18, 19, 20, 21]


@pytest.fixture
def spine_mask() -> np.ndarray:
    return label_map(SPINE_SHAPE, SPINE_BOXES)


def test_both_verse_layouts_are_found(tmp_path, spine_mask):
    root = tmp_path / "verse"
    write_verse2020_case(root / "01_training", "sub-gl003", "sub-gl003_dir-ax", mask=spine_mask, affine=PIR_AFFINE)
    write_verse2020_case(root / "02_validation", "sub-verse500", "sub-verse500", mask=spine_mask, affine=PIR_AFFINE)
    write_verse2019_case(root / "verse19", "verse004", mask=spine_mask, affine=PIR_AFFINE)
    cases = find_verse_cases(root)
    assert [(c.case_id, c.patient_id) for c in cases] == [
        ("sub-gl003_dir-ax", "sub-gl003"),
        ("sub-verse500", "sub-verse500"),
        ("verse004", "verse004"),
    ]
    assert cases[0].mask.name == "sub-gl003_dir-ax_seg-vert_msk.nii.gz"
    assert cases[0].centroids.name == "sub-gl003_dir-ax_seg-subreg_ctd.json"
    assert cases[2].centroids.name == "verse004_ctd.json"


def test_ct_without_mask_is_skipped_with_a_warning(tmp_path, spine_mask, caplog):
    files = write_verse2020_case(tmp_path, "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE)
    files["mask"].unlink()
    with caplog.at_level(logging.WARNING):
        assert find_verse_cases(tmp_path) == []
    assert "no vertebra mask" in caplog.text


def test_verse_case_keeps_complete_vertebrae_with_body_centroids(tmp_path, spine_mask):
    write_verse2020_case(tmp_path, "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE, direction=("L", "A", "S"))
    case = convert_verse_case(find_verse_cases(tmp_path)[0], min_voxels=500)
    assert case.vertebrae == COMPLETE
    assert list(case.excluded) == [17]
    assert case.mask.dtype == np.uint8 and case.mask.shape == SPINE_SHAPE
    assert set(case.centroid_sources.values()) == {CentroidSource.VERSE_BODY_CENTROID}
    expected = compute_centroids(spine_mask, PIR_AFFINE, COMPLETE)
    for label in COMPLETE:
        torch.testing.assert_close(case.centroids[label], expected[label])


def test_vertebra_missing_from_centroid_file_falls_back_to_the_body_rule(tmp_path, spine_mask, caplog):
    write_verse2020_case(tmp_path, "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE, drop_centroids=[19])
    with caplog.at_level(logging.INFO):
        case = convert_verse_case(find_verse_cases(tmp_path)[0], min_voxels=500)
    assert case.centroid_sources[19] == CentroidSource.BODY_RULE_ESTIMATE
    assert case.centroid_sources[20] == CentroidSource.VERSE_BODY_CENTROID
    assert case.centroid_source == CentroidSource.VERSE_BODY_CENTROID
    assert "no VerSe body centroid for ['T12']" in caplog.text


def test_mask_with_non_vertebra_labels_is_rejected(tmp_path, spine_mask):
    spine_mask[0, 0, 30] = 26
    write_verse2020_case(tmp_path, "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE)
    with pytest.raises(ValueError, match=r"labels \[26\] outside the VerSe vertebra indices"):
        convert_verse_case(find_verse_cases(tmp_path)[0])


def test_mask_on_another_grid_is_rejected(tmp_path, spine_mask):
    files = write_verse2020_case(tmp_path, "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE)
    save_nifti(files["mask"], spine_mask[:, :, :-1], PIR_AFFINE)
    with pytest.raises(ValueError, match="Shape mismatch"):
        convert_verse_case(find_verse_cases(tmp_path)[0])


def test_duplicate_case_ids_are_rejected(tmp_path, spine_mask):
    write_verse2020_case(tmp_path / "01_training", "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE)
    write_verse2020_case(tmp_path / "02_validation", "sub-a", "sub-a", mask=spine_mask, affine=PIR_AFFINE)
    with pytest.raises(ValueError, match="Two VerSe cases have the id 'sub-a'"):
        find_verse_cases(tmp_path)
