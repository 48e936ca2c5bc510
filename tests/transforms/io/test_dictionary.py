from __future__ import annotations

from pathlib import Path

import pytest
import torch

from transvert_monai.data.centroids import CentroidSource, write_centroids
from transvert_monai.transforms.io import LoadCentroidsd

CENTROIDS = {20: [1.0, 2.0, 3.0], 8: [-4.5, 0.25, 120.0]}
PATH_TYPES = [str, Path]


@pytest.fixture
def centroid_file(tmp_path):
    return write_centroids(tmp_path / "centroids.json", CENTROIDS, CentroidSource.VERSE_BODY_CENTROID)


@pytest.mark.parametrize("as_path", PATH_TYPES, ids=["str", "Path"])
def test_path_is_replaced_by_float64_world_centroids(centroid_file, as_path):
    out = LoadCentroidsd("centroids")({"centroids": as_path(centroid_file), "case": "a"})
    assert list(out["centroids"]) == [8, 20]
    assert all(v.dtype == torch.float64 and v.shape == (3,) for v in out["centroids"].values())
    torch.testing.assert_close(out["centroids"][20], torch.tensor(CENTROIDS[20], dtype=torch.float64))
    assert out["case"] == "a"


def test_already_loaded_centroids_are_left_as_is():
    loaded = {20: torch.zeros(3, dtype=torch.float64)}
    assert LoadCentroidsd("centroids")({"centroids": loaded})["centroids"] is loaded


def test_input_dictionary_is_not_modified(centroid_file):
    data = {"centroids": str(centroid_file)}
    LoadCentroidsd("centroids")(data)
    assert data == {"centroids": str(centroid_file)}


def test_missing_key_raises():
    with pytest.raises(KeyError):
        LoadCentroidsd("centroids")({"case": "a"})


def test_missing_key_is_skipped_when_allowed():
    assert LoadCentroidsd("centroids", allow_missing_keys=True)({"case": "a"}) == {"case": "a"}


def test_malformed_centroid_file_is_rejected(tmp_path):
    path = tmp_path / "centroids.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="'centroids' object"):
        LoadCentroidsd("centroids")({"centroids": path})


def test_value_that_is_not_a_path_is_rejected():
    with pytest.raises(TypeError, match="path to a centroid JSON"):
        LoadCentroidsd("centroids")({"centroids": 3})
