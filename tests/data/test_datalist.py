from __future__ import annotations

import json

import pytest
from monai.data import load_decathlon_datalist

from transvert_monai.data.centroids import write_centroids

from transvert_monai.data.datalist import (
    DATALIST_KEYS,
    make_item,
    split_levels,
    split_patients,
    validate_datalist,
    write_datalists,
    write_lopo_datalists,
    write_test_datalist,
)

# 8 cases of 6 patients (two patients have two scans each)
PATIENT_CASES = [
    {"case": f"{p}_{scan}", "patient": p, "vertebrae": [18, 19, 20]}
    for p, scans in [("p0", 2), ("p1", 1), ("p2", 1), ("p3", 2), ("p4", 1), ("p5", 1)]
    for scan in range(scans)
]
ONE_SPINE = [{"case": "spine", "vertebrae": list(range(8, 21))}]  # T1–L1, as in the example
TOO_FEW = [
    ([{"case": "a", "patient": "a", "vertebrae": [8]}, {"case": "b", "patient": "b", "vertebrae": [8]}], "3 patients"),
    ([{"case": "a", "vertebrae": [8, 9]}], "at least 3 complete vertebrae"),
    ([{"case": "a", "vertebrae": []}], "has a complete vertebra"),
]


def _touch_case_files(dataset_dir, cases):
    """Placeholder CT and mask files, and a real centroid file holding the case's vertebrae."""
    for c in cases:
        for key in ("ct", "mask", "centroids"):
            path = dataset_dir / make_item(c["case"], [])[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            if key == "centroids":
                write_centroids(path, {v: [0.0, 0.0, float(v)] for v in c["vertebrae"]}, "body_rule_estimate")
            else:
                path.write_text("x")


def _lists(path):
    return json.loads(path.read_text())


def test_patient_split_never_puts_one_patient_in_two_lists(tmp_path):
    patient_of = {c["case"]: c["patient"] for c in PATIENT_CASES}
    for path in write_datalists(PATIENT_CASES, tmp_path, "ds", folds=3, seed=1):
        data = _lists(path)
        groups = [{patient_of[item["case"]] for item in data[key]} for key in DATALIST_KEYS]
        assert all(groups), path.name
        assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
        assert sum(len(data[key]) for key in DATALIST_KEYS) == len(PATIENT_CASES)


def test_patient_split_tests_every_patient_exactly_once_across_folds():
    tested = [p for fold in range(3) for p in split_patients([c["patient"] for c in PATIENT_CASES], 3, fold, 0)[2]]
    assert sorted(tested) == ["p0", "p1", "p2", "p3", "p4", "p5"]


def test_patient_split_is_deterministic_for_a_seed(tmp_path):
    first = [p.read_text() for p in write_datalists(PATIENT_CASES, tmp_path / "a", "ds", seed=7)]
    second = [p.read_text() for p in write_datalists(PATIENT_CASES, tmp_path / "b", "ds", seed=7)]
    assert first == second


def test_patient_split_keeps_five_training_patients_per_validation_patient():
    training, validation, testing = split_patients([f"p{i:02d}" for i in range(27)], 3, 0, 0)
    assert (len(training), len(validation), len(testing)) == (15, 3, 9)


def test_single_case_is_split_by_vertebra_level(tmp_path):
    paths = write_datalists(ONE_SPINE, tmp_path, "one", folds=3)
    assert [p.name for p in paths] == ["one_fold0.json", "one_fold1.json", "one_fold2.json"]
    tested = []
    for path in paths:
        data = _lists(path)
        assert data["split"] == "vertebra_level" and "split by vertebra level" in data["description"]
        subsets = [set(data[key][0]["vertebrae"]) for key in DATALIST_KEYS]
        assert all(len(data[key]) == 1 for key in DATALIST_KEYS)
        assert not (subsets[0] & subsets[1] or subsets[0] & subsets[2] or subsets[1] & subsets[2])
        assert set().union(*subsets) == set(range(8, 21))
        tested += data["testing"][0]["vertebrae"]
    assert sorted(tested) == list(range(8, 21))


def test_level_split_tests_every_third_level():
    assert split_levels(range(8, 21), 3, 0) == ([9, 10, 12, 13, 16, 18, 19], [15], [8, 11, 14, 17, 20])


@pytest.mark.parametrize("cases,message", TOO_FEW, ids=["patients", "vertebrae", "empty"])
def test_too_little_data_for_the_folds_is_rejected(tmp_path, cases, message):
    with pytest.raises(ValueError, match=message):
        write_datalists(cases, tmp_path, "ds", folds=3)


@pytest.mark.parametrize("key", DATALIST_KEYS)
def test_load_decathlon_datalist_resolves_paths_against_the_dataset_dir(tmp_path, key):
    dataset_dir = tmp_path / "dataset"
    _touch_case_files(dataset_dir, PATIENT_CASES)
    path = write_datalists(PATIENT_CASES, dataset_dir / "data_lists", "ds")[0]
    items = load_decathlon_datalist(path, data_list_key=key, base_dir=dataset_dir)
    assert items
    for item in items:
        assert item["ct"] == str(dataset_dir / "cases" / item["case"] / "ct.nii.gz")
        assert item["centroids"] == str(dataset_dir / "cases" / item["case"] / "centroids.json")


def test_written_datalist_is_valid(tmp_path):
    _touch_case_files(tmp_path, ONE_SPINE)
    path = write_datalists(ONE_SPINE, tmp_path / "data_lists", "one")[1]
    assert validate_datalist(path, tmp_path)["fold"] == 1


def _drop_key(data):
    del data["training"][0]["mask"]


def _missing_file(data):
    data["validation"][0]["ct"] = "cases/nowhere/ct.nii.gz"


def _bad_vertebra(data):
    data["testing"][0]["vertebrae"] = [8, 26]


def _duplicate_vertebra(data):
    data["training"][0]["vertebrae"].append(data["testing"][0]["vertebrae"][0])


def _no_testing(data):
    del data["testing"]


def _level_not_in_case(data):
    data["testing"][0]["vertebrae"] = [22]  # L3: the case holds T1–L1


def _unreadable_centroids(data):
    data["training"][0]["centroids"] = data["training"][0]["ct"]  # a file that is not centroid JSON


INVALID_EDITS = [
    (_drop_key, r"training\[0\] \(case 'spine'\) lacks the key 'mask'"),
    (_missing_file, r"validation\[0\] \(case 'spine'\) key 'ct': file .*nowhere/ct.nii.gz does not exist"),
    (_bad_vertebra, r"testing\[0\] \(case 'spine'\) key 'vertebrae' holds \[26\]"),
    (_duplicate_vertebra, r"vertebra 8 of case 'spine' is also in 'training'"),
    (_no_testing, r"the key 'testing' \(a list\) is missing"),
    (_level_not_in_case, r"testing\[0\] \(case 'spine'\) names L3, which the case does not have \(its centroids hold T1, .*L1\)"),
    (_unreadable_centroids, r"training\[0\] \(case 'spine'\): .*not valid JSON"),
]


@pytest.mark.parametrize("edit,message", INVALID_EDITS, ids=[e.__name__.strip("_") for e, _ in INVALID_EDITS])
def test_invalid_datalist_error_names_list_item_and_key(tmp_path, edit, message):
    _touch_case_files(tmp_path, ONE_SPINE)
    path = write_datalists(ONE_SPINE, tmp_path / "data_lists", "one")[0]
    data = _lists(path)
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as err:
        validate_datalist(path, tmp_path)
    assert "one_fold0.json" in str(err.value)


TWO_SPINES = [
    {"case": "chest", "patient": "chest", "vertebrae": list(range(8, 21))},
    {"case": "abdomen", "patient": "abdomen", "vertebrae": [20, 21, 22, 23, 24]},
]


def test_level_folds_over_several_patients_pool_each_patients_levels(tmp_path):
    tested = []
    for path in write_datalists(TWO_SPINES, tmp_path, "two", folds=3, split="vertebra_level"):
        data = _lists(path)
        assert data["split"] == "vertebra_level" and "each of the 2 patients" in data["description"]
        assert {item["case"] for item in data["training"]} == {"chest", "abdomen"}
        tested += [(item["case"], v) for item in data["testing"] for v in item["vertebrae"]]
    assert sorted(tested) == sorted((c["case"], v) for c in TWO_SPINES for v in c["vertebrae"])


def test_leave_one_patient_out_tests_each_patient_once_and_validates_on_training_levels(tmp_path):
    paths = write_lopo_datalists(TWO_SPINES, tmp_path, "two")
    assert [p.name for p in paths] == ["two_lopo0.json", "two_lopo1.json"]
    first, second = _lists(paths[0]), _lists(paths[1])
    assert (first["test_patient"], second["test_patient"]) == ("abdomen", "chest")  # sorted ids
    assert [i["case"] for i in first["testing"]] == ["abdomen"]
    assert first["validation"] == [make_item("chest", [12, 17])]  # every 5th of T1–L1
    assert second["validation"] == [make_item("abdomen", [24])]
    assert second["training"] == [make_item("abdomen", [20, 21, 22, 23])]


def test_leave_one_patient_out_needs_two_patients(tmp_path):
    with pytest.raises(ValueError, match="at least 2 patients"):
        write_lopo_datalists(ONE_SPINE, tmp_path, "one")


def test_test_only_list_holds_every_vertebra_under_testing_even_with_two_vertebrae(tmp_path):
    _touch_case_files(tmp_path, [{"case": "a", "vertebrae": [20, 21]}])
    path = write_test_datalist([{"case": "a", "vertebrae": [21, 20]}], tmp_path / "data_lists", "mine")
    assert path.name == "mine_test.json"
    data = validate_datalist(path, tmp_path)
    assert (data["training"], data["validation"], data["split"]) == ([], [], "test_only")
    assert data["testing"] == [make_item("a", [20, 21])]


def test_unknown_split_is_rejected_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="vertebra_level"):
        write_datalists(TWO_SPINES, tmp_path, "two", split="by_level")
