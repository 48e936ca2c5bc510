from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.data.synthetic import affine_for, label_map, verse_centroid_entries
from transvert_monai.data.centroids import (
    CentroidSource,
    compute_centroids,
    read_centroids,
    read_verse_centroids,
    write_centroids,
)
from transvert_monai.geometry import voxel_to_world

SHAPE = (30, 40, 20)
# a 4×6×4 blob of L1 whose centre of mass is voxel (11.5, 22.5, 6.5), and a T12 blob elsewhere
BLOBS = {20: (slice(10, 14), slice(20, 26), slice(5, 9)), 19: (slice(2, 5), slice(3, 4), slice(12, 18))}
BLOB_CENTRE = (11.5, 22.5, 6.5)

# (image axis codes, spacing mm): non-RAS orientations with anisotropic spacing, as in VerSe
IMAGE_GRIDS = [
    (("P", "I", "R"), (0.8, 1.5, 2.5)),
    (("L", "P", "S"), (0.7, 0.9, 3.0)),
    (("R", "A", "S"), (1.0, 1.0, 2.0)),
    (("S", "L", "A"), (2.5, 0.6, 1.2)),
]
# axis codes of the grid the VerSe coordinates refer to
FILE_DIRECTIONS = [("P", "I", "R"), ("L", "P", "S"), ("I", "R", "A")]

BAD_VERSE_FILES = [
    ({"label": 20, "X": 1, "Y": 2, "Z": 3}, "non-empty JSON list"),
    ([{"label": 20, "X": 1, "Y": 2, "Z": 3}], "no direction entry"),
    ([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1, "Y": 2}], r"lacks \['Z'\]"),
    ([{"direction": ["P", "I", "R"]}, {"X": 1, "Y": 2, "Z": 3}], "has no 'label'"),
    ([{"direction": ["P", "I"]}], "3 axis codes"),
    ([{"direction": ["P", "A", "R"]}], "direction"),
]
BAD_CENTROID_FILES = [
    ([{"direction": ["P", "I", "R"]}], "'centroids' object"),
    ({"coordinate_system": "LPS", "units": "mm", "centroids": {}}, "RAS millimetres"),
    ({"centroids": {"L1": [1, 2, 3]}}, "not a VerSe index string"),
    ({"centroids": {"26": [1, 2, 3]}}, "not a VerSe vertebra label"),
    ({"centroids": {"20": [1, 2]}}, r"\[x, y, z\]"),
]


def _blob_mask() -> np.ndarray:
    return label_map(SHAPE, BLOBS)


@pytest.mark.parametrize("axcodes,spacing", IMAGE_GRIDS, ids=["".join(g[0]) for g in IMAGE_GRIDS])
def test_centre_of_mass_of_a_blob_maps_through_the_affine(axcodes, spacing):
    affine = affine_for(axcodes, spacing, origin=(-12.0, 30.0, 5.0))
    centroids = compute_centroids(_blob_mask(), affine)
    expected = voxel_to_world(torch.as_tensor(affine), torch.tensor(BLOB_CENTRE))
    assert sorted(centroids) == [19, 20]
    assert centroids[20].dtype == torch.float64
    torch.testing.assert_close(centroids[20], expected)


def test_centroids_accept_a_channel_first_tensor_mask():
    affine = affine_for("RAS", (1.0, 1.0, 2.0))
    mask = torch.from_numpy(_blob_mask())[None]
    centroids = compute_centroids(mask, affine, labels=[20])
    torch.testing.assert_close(centroids[20], torch.tensor([11.5, 22.5, 13.0], dtype=torch.float64))


def test_centroid_of_an_absent_label_is_an_error():
    with pytest.raises(ValueError, match="Label 7 has no voxel"):
        compute_centroids(_blob_mask(), np.eye(4), labels=[7])


def test_centroids_need_a_nonsingular_affine():
    affine = np.eye(4)
    affine[2, 2] = 0.0
    with pytest.raises(ValueError, match="singular"):
        compute_centroids(_blob_mask(), affine)


@pytest.mark.parametrize("direction", FILE_DIRECTIONS, ids=["".join(d) for d in FILE_DIRECTIONS])
@pytest.mark.parametrize("axcodes,spacing", IMAGE_GRIDS, ids=["".join(g[0]) for g in IMAGE_GRIDS])
def test_verse_centroids_match_the_mask_centre_of_mass(tmp_path, axcodes, spacing, direction):
    affine = affine_for(axcodes, spacing, origin=(40.0, -7.0, 120.0))
    mask = _blob_mask()
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps(verse_centroid_entries(mask, affine, direction)))
    from_verse = read_verse_centroids(path, affine, mask.shape)
    from_mask = compute_centroids(mask, affine)
    assert sorted(from_verse) == [19, 20]
    for label in from_mask:
        torch.testing.assert_close(from_verse[label], from_mask[label])


def test_verse_pir_coordinates_on_a_ras_image_follow_hand_computed_indices(tmp_path):
    # RAS image of shape (5, 6, 7): P runs against axis 1, I against axis 2, R along axis 0, so
    # PIR (X, Y, Z) = (1, 2, 3) is voxel (i, j, k) = (3, 6 - 1 - 1, 7 - 1 - 2) = (3, 4, 4)
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1.0, "Y": 2.0, "Z": 3.0}]))
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    centroids = read_verse_centroids(path, affine, (5, 6, 7))
    torch.testing.assert_close(centroids[20], torch.tensor([6.0, 4.0, 12.0], dtype=torch.float64))


def test_verse_subregion_labels_are_ignored(tmp_path):
    path = tmp_path / "ctd.json"
    entries = [{"direction": ["R", "A", "S"]}, {"label": 20, "X": 1.0, "Y": 2.0, "Z": 3.0}]
    path.write_text(json.dumps(entries + [{"label": 41, "X": 1.0, "Y": 2.0, "Z": 3.0}]))
    assert list(read_verse_centroids(path, np.eye(4), (5, 5, 5))) == [20]


@pytest.mark.parametrize("content,message", BAD_VERSE_FILES, ids=[m for _, m in BAD_VERSE_FILES])
def test_malformed_verse_centroid_file_is_rejected_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad_ctd.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message) as err:
        read_verse_centroids(path, np.eye(4), (5, 5, 5))
    assert "bad_ctd.json" in str(err.value)


def test_centroid_file_round_trips(tmp_path):
    centroids = {20: torch.tensor([1.5, -2.0, 30.25], dtype=torch.float64), 8: [0.0, 1.0, 2.0]}
    path = write_centroids(tmp_path / "c.json", centroids, CentroidSource.MASK_CENTRE_OF_MASS)
    data = json.loads(path.read_text())
    assert data["coordinate_system"] == "RAS" and data["units"] == "mm"
    assert data["source"] == "mask_centre_of_mass"
    loaded = read_centroids(path)
    assert list(loaded) == [8, 20]
    torch.testing.assert_close(loaded[20], centroids[20])


def test_unknown_centroid_source_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="verse_body_centroid"):
        write_centroids(tmp_path / "c.json", {20: [0.0, 0.0, 0.0]}, "guess")


@pytest.mark.parametrize("content,message", BAD_CENTROID_FILES, ids=[m for _, m in BAD_CENTROID_FILES])
def test_malformed_centroid_file_is_rejected(tmp_path, content, message):
    path = tmp_path / "centroids.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        read_centroids(path)
