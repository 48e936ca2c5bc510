from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.data.synthetic import SPINE_BOXES, SPINE_SHAPE, affine_for, label_map, save_nifti
from transvert_monai.data.centroids import CentroidSource, compute_centroids
from transvert_monai.data.convert_totalsegmentator import (
    TotalSegmentatorCase,
    convert_totalsegmentator_case,
    find_totalsegmentator_cases,
)

LPS_AFFINE = affine_for("LPS", (0.7, 0.7, 2.5), origin=(100.0, 80.0, -300.0))
# TotalSegmentator ids of the phantom's structures (v2 "total" numbering), plus non-vertebrae
TS_IDS = {17: 34, 18: 33, 19: 32, 20: 31, 21: 30}
STRUCTURES = {5: "liver", 25: "sacrum", 26: "vertebrae_S1", 30: "vertebrae_L2", 31: "vertebrae_L1"}
STRUCTURES |= {32: "vertebrae_T12", 33: "vertebrae_T11", 34: "vertebrae_T10"}
NAMES = {v: k for k, v in {"T10": 17, "T11": 18, "T12": 19, "L1": 20, "L2": 21}.items()}
COMPLETE = [18, 19, 20, 21]


def _multilabel() -> np.ndarray:
    out = label_map(SPINE_SHAPE, {TS_IDS[k]: box for k, box in SPINE_BOXES.items()})
    out[0:2, 0:2, 0:10] = 5  # liver
    out[14:16, 12:14, 50:60] = 26  # S1: not a TransVert vertebra
    return out


def _write_multilabel_case(folder, names_format="csv"):
    ct = save_nifti(folder / "ct.nii.gz", np.zeros(SPINE_SHAPE, dtype=np.int16), LPS_AFFINE)
    save_nifti(folder / "segmentations.nii.gz", _multilabel(), LPS_AFFINE)
    if names_format == "csv":
        rows = "".join(f"x,0,{name},{value}\n" for value, name in STRUCTURES.items())
        (folder / "structures.csv").write_text("group,original_idx,structure,id\n" + rows)
    return ct


def _write_structure_folder_case(folder):
    save_nifti(folder / "ct.nii.gz", np.zeros(SPINE_SHAPE, dtype=np.int16), LPS_AFFINE)
    for label, box in SPINE_BOXES.items():
        path = folder / "segmentations" / f"vertebrae_{NAMES[label]}.nii.gz"
        save_nifti(path, label_map(SPINE_SHAPE, {1: box}), LPS_AFFINE)
    save_nifti(folder / "segmentations" / "liver.nii.gz", np.ones(SPINE_SHAPE, dtype=np.uint8), LPS_AFFINE)
    save_nifti(folder / "segmentations" / "vertebrae_S1.nii.gz", np.ones(SPINE_SHAPE, dtype=np.uint8), LPS_AFFINE)


def _check_converted(case):
    np.testing.assert_array_equal(case.mask, label_map(SPINE_SHAPE, SPINE_BOXES))
    assert case.vertebrae == COMPLETE and list(case.excluded) == [17]
    assert set(case.centroid_sources.values()) == {CentroidSource.MASK_CENTRE_OF_MASS}
    expected = compute_centroids(label_map(SPINE_SHAPE, SPINE_BOXES), LPS_AFFINE, COMPLETE)
    for label in COMPLETE:
        torch.testing.assert_close(case.centroids[label], expected[label])


def test_multilabel_file_is_mapped_to_verse_indices_by_name(tmp_path):
    _write_multilabel_case(tmp_path / "s0001")
    cases = find_totalsegmentator_cases(tmp_path)
    assert [(c.case_id, c.segmentation.name, c.label_names.name) for c in cases] == [
        ("s0001", "segmentations.nii.gz", "structures.csv")
    ]
    _check_converted(convert_totalsegmentator_case(cases[0], min_voxels=500))


def test_multilabel_names_can_come_from_a_json_file(tmp_path):
    _write_multilabel_case(tmp_path / "s0001", names_format=None)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({str(k): v for k, v in STRUCTURES.items()}))
    cases = find_totalsegmentator_cases(tmp_path, label_names=names)
    _check_converted(convert_totalsegmentator_case(cases[0], min_voxels=500))


def test_folder_of_structure_files_is_read(tmp_path):
    _write_structure_folder_case(tmp_path / "s0002")
    cases = find_totalsegmentator_cases(tmp_path)
    assert [(c.case_id, c.segmentation.name, c.label_names) for c in cases] == [("s0002", "segmentations", None)]
    _check_converted(convert_totalsegmentator_case(cases[0], min_voxels=500))


def test_multilabel_file_without_names_is_rejected(tmp_path):
    _write_multilabel_case(tmp_path / "s0001", names_format=None)
    with pytest.raises(ValueError, match="without structure names; pass `label_names`"):
        find_totalsegmentator_cases(tmp_path)


def test_multilabel_values_missing_from_the_names_are_rejected(tmp_path):
    ct = _write_multilabel_case(tmp_path, names_format=None)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"31": "vertebrae_L1"}))
    case = TotalSegmentatorCase("c", "c", ct, tmp_path / "segmentations.nii.gz", names)
    with pytest.raises(ValueError, match=r"holds values \[5, 26, 30, 32, 33, 34\] that .*names.json does not name"):
        convert_totalsegmentator_case(case)


def test_structure_file_on_another_grid_is_rejected(tmp_path):
    _write_structure_folder_case(tmp_path)
    save_nifti(tmp_path / "segmentations" / "vertebrae_L1.nii.gz", np.zeros((4, 4, 4), dtype=np.uint8), LPS_AFFINE)
    case = find_totalsegmentator_cases(tmp_path)[0]
    with pytest.raises(ValueError, match="Shape mismatch.*vertebrae_L1.nii.gz"):
        convert_totalsegmentator_case(case)
