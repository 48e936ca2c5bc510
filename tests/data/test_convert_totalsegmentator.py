from __future__ import annotations

import ast
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.data.synthetic import SPINE_BOXES, SPINE_SHAPE, affine_for, label_map, save_nifti
from transvert_monai.data.body_centroid import body_rule_centroids
from transvert_monai.data.centroids import CentroidSource
from transvert_monai.data.convert_totalsegmentator import (
    TotalSegmentatorCase,
    convert_totalsegmentator_case,
    find_totalsegmentator_cases,
    read_multilabel_vertebrae,
    read_structure_folder_vertebrae,
)
from transvert_monai.data.example import EXAMPLE_ABDOMEN_CASE
from transvert_monai.data.labels import TOTALSEGMENTATOR_V2_TOTAL_CLASSES, TOTALSEGMENTATOR_V2_TOTAL_IDS
from transvert_monai.data.volume import load_volume

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
    assert set(case.centroid_sources.values()) == {CentroidSource.BODY_RULE_ESTIMATE}
    expected, _ = body_rule_centroids(label_map(SPINE_SHAPE, SPINE_BOXES), LPS_AFFINE, COMPLETE)
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


def test_multilabel_file_without_names_is_read_with_the_v2_total_ids(tmp_path):
    _write_multilabel_case(tmp_path / "s0001", names_format=None)  # the phantom uses v2 'total' ids
    cases = find_totalsegmentator_cases(tmp_path)
    assert cases[0].label_names is None
    case = convert_totalsegmentator_case(cases[0], min_voxels=500)
    _check_converted(case)
    assert case.inputs["label_names"].startswith("TotalSegmentator v2 'total' class ids")


def test_multilabel_file_without_names_beyond_the_v2_ids_is_rejected(tmp_path):
    ct = _write_multilabel_case(tmp_path, names_format=None)
    save_nifti(tmp_path / "segmentations.nii.gz", np.full(SPINE_SHAPE, 118, dtype=np.uint8), LPS_AFFINE)
    case = TotalSegmentatorCase("c", "c", ct, tmp_path / "segmentations.nii.gz")
    with pytest.raises(ValueError, match="more than the 117 classes .* pass its structure names"):
        convert_totalsegmentator_case(case)


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


SHARED_TS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "totalsegmentator_example"
LUMBAR = [20, 21, 22, 23, 24]


@pytest.mark.skipif(not SHARED_TS.is_dir(), reason="../shared/data/totalsegmentator_example is not on this machine")
def test_v2_multilabel_and_v1_structure_files_of_the_same_ct_agree_on_l1_to_l5(example_dataset):
    """Per-vertebra Dice of two real TotalSegmentator outputs of its abdominal example CT (3 mm).

    The v2 multi-label ``totalseg.nii.gz`` of the 2.18.0 sdist (read with the built-in v2 ids) against
    the v1 one-file-per-structure output in ../shared/data (read by name), on the same grid: Dice
    measured L1 0.966, L2 0.964, L3 0.945, L4 0.947, L5 0.946 (two model versions, so not identical).
    A wrong id table would pair different levels and give Dice near 0.
    """
    source = default_cache_dir_of(example_dataset) / "downloads" / "example" / EXAMPLE_ABDOMEN_CASE
    ct = load_volume(source / "ct.nii.gz", role="CT")
    v2 = read_multilabel_vertebrae(ct, source / "segmentations.nii.gz")
    v1 = read_structure_folder_vertebrae(load_volume(SHARED_TS / "ct.nii.gz"), SHARED_TS / "segmentations")
    for label in LUMBAR:
        a, b = v2 == label, v1 == label
        assert 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)) > 0.93, label


def test_built_in_v2_ids_are_those_of_the_totalsegmentator_sdist(example_dataset):
    """Our table against ``class_map["total"]`` in map_to_binary.py of the downloaded 2.18.0 sdist."""
    archive = default_cache_dir_of(example_dataset) / "downloads" / "totalsegmentator-2.18.0.tar.gz"
    if not archive.is_file():
        pytest.skip("the sdist archive is not in the cache")
    with tarfile.open(archive) as tar:
        source = tar.extractfile("totalsegmentator-2.18.0/totalsegmentator/map_to_binary.py").read().decode()
    assignments = [node for node in ast.parse(source).body if isinstance(node, ast.Assign)]
    assignment = next(node for node in assignments if ast.unparse(node.targets[0]) == "class_map")
    class_map = ast.literal_eval(assignment.value)  # read as data, never executed
    total = class_map["total"]
    assert {k: total[k] for k in TOTALSEGMENTATOR_V2_TOTAL_IDS} == TOTALSEGMENTATOR_V2_TOTAL_IDS
    assert len(total) == TOTALSEGMENTATOR_V2_TOTAL_CLASSES
    assert not [k for k, v in total.items() if v.startswith("vertebrae_") and k not in TOTALSEGMENTATOR_V2_TOTAL_IDS]


def default_cache_dir_of(example_dataset: Path) -> Path:
    return example_dataset.parent
