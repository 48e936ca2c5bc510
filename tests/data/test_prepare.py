from __future__ import annotations

import json
import logging

import nibabel as nib
import numpy as np
import pytest

from tests.data.synthetic import SPINE_BOXES, SPINE_SHAPE, affine_for, label_map, write_verse2020_case
from transvert_monai.data import prepare
from transvert_monai.data.datalist import validate_datalist
from transvert_monai.data.prepare import main, prepare_dataset

AFFINE = affine_for("PIR", (0.8, 1.2, 2.0))
# three patients, one with two scans → four cases
SCANS = [("sub-a", "sub-a_dir-ax"), ("sub-a", "sub-a_dir-sag"), ("sub-b", "sub-b"), ("sub-c", "sub-c")]
CLI_ERRORS = [
    (lambda tmp: ["verse", str(tmp / "missing"), str(tmp / "out")], "does not exist"),
    (lambda tmp: ["verse", str(tmp / "src"), str(tmp / "out")], "No verse case found"),
    (lambda tmp: ["versee", str(tmp), str(tmp / "out")], "versee"),
    (lambda tmp: ["totalsegmentator", str(tmp / "src"), str(tmp / "out"), "--label-names", str(tmp / "x.csv")], "x.csv"),
]


@pytest.fixture
def verse_dir(tmp_path):
    root = tmp_path / "verse"
    mask = label_map(SPINE_SHAPE, SPINE_BOXES)
    for patient, prefix in SCANS:
        write_verse2020_case(root, patient, prefix, mask=mask, affine=AFFINE)
    return root


def _count_conversions(monkeypatch):
    calls = []
    original = prepare.convert_verse_case

    def counting(case, min_voxels):
        calls.append(case.case_id)
        return original(case, min_voxels)

    monkeypatch.setattr(prepare, "convert_verse_case", counting)
    return calls


def test_prepare_writes_cases_and_valid_data_lists(tmp_path, verse_dir):
    out = tmp_path / "out"
    paths = prepare_dataset("verse", verse_dir, out, "tiny", min_voxels=500)
    assert [p.name for p in paths] == ["tiny_fold0.json", "tiny_fold1.json", "tiny_fold2.json"]
    assert all(p.parent == out / "data_lists" for p in paths)
    for path in paths:
        assert validate_datalist(path, out)["split"] == "patient"
    manifest = json.loads((out / "cases" / "sub-b" / "case.json").read_text())
    assert manifest["vertebrae"] == [18, 19, 20, 21]
    assert manifest["excluded"] == {"17": "touches the field of view: first plane of axis 2"}
    assert manifest["centroid_source"] == "verse_body_centroid"
    assert sorted(p.name for p in (out / "cases" / "sub-b").iterdir()) == [
        "case.json",
        "centroids.json",
        "ct.nii.gz",
        "mask.nii.gz",
    ]


def test_second_run_skips_prepared_cases(tmp_path, verse_dir, monkeypatch):
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    calls = _count_conversions(monkeypatch)
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    assert calls == []


def test_case_without_manifest_is_redone(tmp_path, verse_dir, monkeypatch):
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    (tmp_path / "out" / "cases" / "sub-c" / "case.json").unlink()
    calls = _count_conversions(monkeypatch)
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    assert calls == ["sub-c"]


def test_case_prepared_with_other_settings_is_redone(tmp_path, verse_dir, monkeypatch):
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    calls = _count_conversions(monkeypatch)
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=400)
    assert len(calls) == len(SCANS)


def test_no_temporary_file_is_left_behind(tmp_path, verse_dir):
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".tmp-")]


def test_cli_writes_data_lists_to_the_given_folder(tmp_path, verse_dir):
    argv = ["verse", str(verse_dir), str(tmp_path / "out"), "--name", "tiny", "--min-voxels", "500"]
    assert main(argv + ["--data-list-dir", str(tmp_path / "lists"), "--folds", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == ["tiny_fold0.json", "tiny_fold1.json"]


@pytest.mark.parametrize("argv,message", CLI_ERRORS, ids=["missing_dir", "no_cases", "unknown_source", "no_names"])
def test_cli_bad_input_exits_with_code_3_and_a_message(tmp_path, caplog, argv, message):
    (tmp_path / "src").mkdir()
    with caplog.at_level(logging.ERROR):
        assert main(argv(tmp_path)) == 3
    assert message in caplog.text


def test_prepared_mask_keeps_the_ct_grid(tmp_path, verse_dir):
    prepare_dataset("verse", verse_dir, tmp_path / "out", "tiny", min_voxels=500)
    mask = nib.load(str(tmp_path / "out" / "cases" / "sub-b" / "mask.nii.gz"))
    np.testing.assert_allclose(mask.affine, AFFINE)
    assert mask.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), label_map(SPINE_SHAPE, SPINE_BOXES))


def test_cli_test_only_writes_one_test_list_even_with_fewer_vertebrae_than_folds(tmp_path):
    # one patient with two complete vertebrae: 3 folds by level are impossible, a test list is not
    mask = label_map(SPINE_SHAPE, {k: SPINE_BOXES[k] for k in (17, 18, 19)})
    write_verse2020_case(tmp_path / "verse", "sub-x", "sub-x", mask=mask, affine=AFFINE)
    argv = ["verse", str(tmp_path / "verse"), str(tmp_path / "out"), "--name", "mine", "--min-voxels", "500"]
    assert main(argv + ["--test-only"]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "data_lists").iterdir()) == ["mine_test.json"]
    data = validate_datalist(tmp_path / "out" / "data_lists" / "mine_test.json", tmp_path / "out")
    assert data["training"] == data["validation"] == [] and data["testing"][0]["vertebrae"] == [18, 19]
    assert main(argv) == 3  # the same data cannot give 3 folds


def test_cli_leave_one_patient_out_writes_one_list_per_patient(tmp_path, verse_dir):
    argv = ["verse", str(verse_dir), str(tmp_path / "out"), "--name", "tiny", "--min-voxels", "500"]
    assert main(argv + ["--leave-one-patient-out"]) == 0
    names = sorted(p.name for p in (tmp_path / "out" / "data_lists").iterdir())
    assert names == [f"tiny_fold{k}.json" for k in range(3)] + [f"tiny_lopo{k}.json" for k in range(3)]
    lists = tmp_path / "out" / "data_lists"
    tested = [validate_datalist(lists / f"tiny_lopo{k}.json", tmp_path / "out") for k in range(3)]
    assert [d["test_patient"] for d in tested] == ["sub-a", "sub-b", "sub-c"]
    assert [i["case"] for i in tested[0]["testing"]] == ["sub-a_dir-ax", "sub-a_dir-sag"]


def test_cli_unknown_split_fails_before_any_work(tmp_path, verse_dir, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["verse", str(verse_dir), str(tmp_path / "out"), "--split", "levels"]) == 3
    assert "vertebra_level" in caplog.text and not (tmp_path / "out").exists()
