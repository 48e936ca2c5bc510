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
from transvert_monai.data.datalist import validate_datalist
from transvert_monai.data.example import EXAMPLE_CASE, prepare_example
from transvert_monai.geometry import world_to_voxel

REPO_DATA_LISTS = Path(__file__).resolve().parents[2] / "data_lists"
FOLDS = [0, 1, 2]
COMPLETE = list(range(8, 21))  # T1–L1
TOUCHING = {5, 6, 7, 21, 22}  # C5–C7 at the top slice, L2–L3 at the bottom slice


def test_example_keeps_the_13_complete_vertebrae_t1_to_l1(example_dataset):
    manifest = json.loads((example_dataset / "cases" / EXAMPLE_CASE / "case.json").read_text())
    assert manifest["vertebrae"] == COMPLETE
    assert {int(k) for k in manifest["excluded"]} == TOUCHING
    assert all("touches the field of view" in reason for reason in manifest["excluded"].values())
    assert list(read_centroids(example_dataset / "cases" / EXAMPLE_CASE / "centroids.json")) == COMPLETE


@pytest.mark.parametrize("fold", FOLDS, ids=[f"fold{k}" for k in FOLDS])
def test_example_data_lists_are_valid_and_match_the_repository_copy(example_dataset, fold):
    name = f"example_fold{fold}.json"
    validate_datalist(example_dataset / "data_lists" / name, example_dataset)
    assert (example_dataset / "data_lists" / name).read_text() == (REPO_DATA_LISTS / name).read_text()


def test_example_centroids_lie_in_their_vertebra_through_the_monai_affine(example_dataset):
    item = load_decathlon_datalist(example_dataset / "data_lists" / "example_fold0.json", base_dir=example_dataset)[0]
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


def test_example_centroids_run_cranial_to_caudal(example_dataset):
    centroids = read_centroids(example_dataset / "cases" / EXAMPLE_CASE / "centroids.json")
    superior = torch.stack([centroids[v] for v in COMPLETE])[:, 2]
    assert torch.all(superior[:-1] > superior[1:])
