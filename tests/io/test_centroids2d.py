from __future__ import annotations

import json
import warnings

import pytest
import torch

from transvert_monai.io import Centroids2D, parse_centroids_2d, read_centroids_2d

PER_VIEW = {"lateral": {"T12": [100.0, 50.0], "L1": [140.5, 52.0]}, "ap": {"T12": [101.0, 60.0], "L1": [141.0, 61.5]}}
PER_VERTEBRA = {
    "vertebrae": [
        {"label": "T12", "lateral": [100.0, 50.0], "ap": [101.0, 60.0]},
        {"label": "L1", "lateral": [140.5, 52.0], "ap": [141.0, 61.5]},
    ]
}
NAMES = {
    "lateral": {"19": [100.0, 50.0], "vertebrae_L1": [140.5, 52.0]},
    "ap": {"t12": [101.0, 60.0], "20": [141.0, 61.5]},
}
INDICES = {
    "vertebrae": [
        {"label": 19, "lateral": [100, 50], "ap": [101, 60]},
        {"label": 20, "lateral": [140.5, 52], "ap": [141, 61.5]},
    ]
}

LAYOUTS = [PER_VIEW, PER_VERTEBRA, NAMES, INDICES]


@pytest.mark.parametrize("data", LAYOUTS, ids=["per-view", "per-vertebra", "mixed-names", "indices"])
def test_layouts_read_the_same_centroids(tmp_path, data):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    c = read_centroids_2d(path)
    assert c.labels == [19, 20] and c.missing == {}
    lat, ap = c.as_tensors()
    torch.testing.assert_close(lat, torch.tensor([[100.0, 50.0], [140.5, 52.0]], dtype=torch.float64))
    torch.testing.assert_close(ap, torch.tensor([[101.0, 60.0], [141.0, 61.5]], dtype=torch.float64))


def test_labels_are_ordered_cranial_to_caudal_with_t13():
    data = {"lateral": {"L1": [3, 3], "T13": [2, 2], "T12": [1, 1]}, "ap": {"L1": [3, 3], "T13": [2, 2], "T12": [1, 1]}}
    assert parse_centroids_2d(data).labels == [19, 28, 20]


ONE_VIEW_CASES = [
    ({"lateral": {"T12": [1, 1], "L1": [2, 2]}, "ap": {"T12": [1, 1]}}, {20: "ap"}),
    (
        {"vertebrae": [{"label": "T12", "lateral": [1, 1], "ap": [1, 1]}, {"label": "L2", "ap": [3, 3]}]},
        {21: "lateral"},
    ),
]


@pytest.mark.parametrize("data,missing", ONE_VIEW_CASES, ids=["no-ap", "no-lateral"])
def test_label_in_one_view_only_is_reported_and_skipped(data, missing):
    with pytest.warns(UserWarning, match="one view only"):
        c = parse_centroids_2d(data)
    assert c.missing == missing and c.labels == [19]


INVALID_CASES = [
    ([1, 2], "JSON object"),
    ({"lateral": {"T1": [1, 2]}}, "expected"),
    ({"lateral": {"T1": [1, 2]}, "ap": {"T1": [1, 2]}, "extra": 1}, "expected"),
    ({"lateral": {"T1": [1]}, "ap": {"T1": [1, 2]}}, r"\[row, col\]"),
    ({"lateral": {"T1": [1, "x"]}, "ap": {"T1": [1, 2]}}, r"\[row, col\]"),
    ({"lateral": {"T1": [1, float("nan")]}, "ap": {"T1": [1, 2]}}, r"\[row, col\]"),
    ({"lateral": {"X9": [1, 2]}, "ap": {"T1": [1, 2]}}, "Unknown vertebra name"),
    ({"lateral": {"T1": [1, 2], "8": [3, 4]}, "ap": {"T1": [1, 2]}}, "twice"),
    ({"lateral": {"T1": [1, 2]}, "ap": {"T2": [1, 2]}}, "both"),
    ({"vertebrae": [{"lateral": [1, 2], "ap": [1, 2]}]}, "entry 0"),
]


@pytest.mark.parametrize(
    "data,match",
    INVALID_CASES,
    ids=[
        "list",
        "one-view-key",
        "extra-key",
        "short",
        "text",
        "nan",
        "unknown-name",
        "duplicate",
        "no-pair",
        "no-label",
    ],
)
def test_wrong_layout_is_rejected(data, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-pair case also warns about its one-view labels
        with pytest.raises(ValueError, match=match):
            parse_centroids_2d(data)


OUTSIDE_CASES = [((-0.6, 5.0), "lateral"), ((5.0, 40.0), "lateral"), ((30.0, 5.0), "ap")]


@pytest.mark.parametrize("rc,view", OUTSIDE_CASES, ids=["above", "right-of", "below-ap"])
def test_centroid_outside_its_image_is_rejected_naming_label_and_view(rc, view):
    data = {"lateral": {"L2": [5.0, 5.0]}, "ap": {"L2": [5.0, 5.0]}}
    data[view]["L2"] = list(rc)
    with pytest.raises(ValueError, match=f"{view} centroid of L2"):
        parse_centroids_2d(data, image_sizes={"lateral": (30, 40), "ap": (30, 20)})


def test_pixel_edges_are_inside():
    c = parse_centroids_2d(
        {"lateral": {"L2": [-0.5, 39.5]}, "ap": {"L2": [29.5, 0]}}, image_sizes={"lateral": (30, 40), "ap": (30, 20)}
    )
    assert isinstance(c, Centroids2D)


def test_duplicate_json_keys_are_rejected(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"lateral": {"T1": [1, 2], "T1": [3, 4]}, "ap": {"T1": [1, 2]}}')
    with pytest.raises(ValueError, match="twice"):
        read_centroids_2d(path)


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="c.json"):
        read_centroids_2d(path)
