from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged

from transvert_monai.data.centroids import read_centroids
from transvert_monai.data.datalist import DATALIST_KEYS, validate_datalist
from transvert_monai.data.example import EXAMPLE_ABDOMEN_CASE, EXAMPLE_CASE, EXAMPLE_CASES, prepare_example
from transvert_monai.geometry import world_to_voxel

REPO_DATA_LISTS = Path(__file__).resolve().parents[2] / "data_lists"
LISTS = [f"example_fold{k}.json" for k in range(3)] + [f"example_lopo{k}.json" for k in range(2)]
# field-of-view rule: chest C5–C7 touch the top slice, L2–L3 the bottom; abdomen T11–T12 touch the top
KEPT = {EXAMPLE_CASE: list(range(8, 21)), EXAMPLE_ABDOMEN_CASE: list(range(20, 25))}
EXCLUDED = {EXAMPLE_CASE: {5, 6, 7, 21, 22}, EXAMPLE_ABDOMEN_CASE: {18, 19}}
SOURCES = {EXAMPLE_CASE: "body_rule_estimate", EXAMPLE_ABDOMEN_CASE: "body_mask_centre_of_mass"}


@pytest.mark.parametrize("case", EXAMPLE_CASES)
def test_example_keeps_the_complete_vertebrae_of_each_patient(example_dataset, case):
    manifest = json.loads((example_dataset / "cases" / case / "case.json").read_text())
    assert manifest["vertebrae"] == KEPT[case]
    assert {int(k) for k in manifest["excluded"]} == EXCLUDED[case]
    assert all("touches the field of view" in reason for reason in manifest["excluded"].values())
    assert list(read_centroids(example_dataset / "cases" / case / "centroids.json")) == KEPT[case]
    assert manifest["centroid_source"] == SOURCES[case]


@pytest.mark.parametrize("name", LISTS)
def test_example_data_lists_are_valid_and_match_the_repository_copy(example_dataset, name):
    validate_datalist(example_dataset / "data_lists" / name, example_dataset)
    assert (example_dataset / "data_lists" / name).read_text() == (REPO_DATA_LISTS / name).read_text()


@pytest.mark.parametrize("fold", [0, 1])
def test_leave_one_patient_out_fold_k_tests_patient_k_only(example_dataset, fold):
    data = json.loads((example_dataset / "data_lists" / f"example_lopo{fold}.json").read_text())
    tested, trained = EXAMPLE_CASES[fold], EXAMPLE_CASES[1 - fold]
    assert [(i["case"], i["vertebrae"]) for i in data["testing"]] == [(tested, KEPT[tested])]
    assert {i["case"] for i in data["training"] + data["validation"]} == {trained}
    levels = sorted(v for key in ("training", "validation") for i in data[key] for v in i["vertebrae"])
    assert levels == KEPT[trained] and data["validation"]


def test_level_folds_pool_both_patients(example_dataset):
    tested = []
    for k in range(3):
        data = json.loads((example_dataset / "data_lists" / f"example_fold{k}.json").read_text())
        assert {i["case"] for i in data["training"]} == set(EXAMPLE_CASES)
        assert "each of the 2 patients" in data["description"]
        tested += [(i["case"], v) for i in data["testing"] for v in i["vertebrae"]]
    assert sorted(tested) == sorted((c, v) for c in EXAMPLE_CASES for v in KEPT[c])


def test_example_centroids_lie_in_their_vertebra_through_the_monai_affine(example_dataset):
    items = load_decathlon_datalist(example_dataset / "data_lists" / "example_fold0.json", base_dir=example_dataset)
    for item in items:
        mask = LoadImaged("mask", image_only=True)(item)["mask"]
        voxels = mask.numpy()
        for label, centre in read_centroids(item["centroids"]).items():
            ijk = world_to_voxel(mask.affine, centre).numpy()
            where = np.argwhere(voxels == label)
            assert np.all(ijk >= where.min(0)) and np.all(ijk <= where.max(0)), label


def test_prepared_example_is_returned_fast(example_dataset):
    start = time.perf_counter()
    assert prepare_example(example_dataset.parent) == example_dataset
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("case", EXAMPLE_CASES)
def test_example_centroids_run_cranial_to_caudal(example_dataset, case):
    centroids = read_centroids(example_dataset / "cases" / case / "centroids.json")
    superior = torch.stack([centroids[v] for v in KEPT[case]])[:, 2]
    assert torch.all(superior[:-1] > superior[1:])


def test_every_data_list_has_the_three_lists(example_dataset):
    for name in LISTS:
        data = json.loads((example_dataset / "data_lists" / name).read_text())
        assert all(isinstance(data[key], list) and data[key] for key in DATALIST_KEYS), name
