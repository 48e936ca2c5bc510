from __future__ import annotations

import json

import pytest

from transvert_monai.data.labels import (
    VALID_VERTEBRA_LABELS,
    label_to_name,
    level_order,
    name_to_label,
    read_structure_names,
    structure_to_label,
    totalsegmentator_to_verse,
)

NAME_CASES = [
    ("C1", 1),
    ("C7", 7),
    ("T1", 8),
    ("t1", 8),
    ("T12", 19),
    ("L1", 20),
    ("L6", 25),
    ("T13", 28),
    ("vertebrae_T1", 8),
    ("vertebrae_L5", 24),
    (8, 8),
    ("20", 20),
    (" l2 ", 21),
]
UNKNOWN_NAMES = ["T14", "X1", "vertebrae_S1", "sacrum", 0, 26, "27", True]
STRUCTURE_CASES = [
    ("vertebrae_C1", 1),
    ("vertebrae_T12", 19),
    ("vertebrae_L5", 24),
    ("vertebrae_S1", None),
    ("sacrum", None),
    ("liver", None),
    ("rib_left_1", None),
]


@pytest.mark.parametrize("name,label", NAME_CASES, ids=[repr(c[0]) for c in NAME_CASES])
def test_name_to_label_accepts_names_totalsegmentator_names_and_numbers(name, label):
    assert name_to_label(name) == label


@pytest.mark.parametrize("name", UNKNOWN_NAMES, ids=[repr(n) for n in UNKNOWN_NAMES])
def test_unknown_name_is_rejected(name):
    with pytest.raises(ValueError):
        name_to_label(name)


def test_unknown_name_error_lists_valid_names_and_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'T11'.*Valid names: C1, C2"):
        name_to_label("T11x")


def test_label_to_name_inverts_name_to_label():
    assert {name_to_label(label_to_name(v)) for v in VALID_VERTEBRA_LABELS} == VALID_VERTEBRA_LABELS


def test_label_to_name_rejects_sacrum():
    with pytest.raises(ValueError, match="not a VerSe vertebra label"):
        label_to_name(26)


def test_t13_sorts_between_t12_and_l1():
    assert sorted([20, 28, 19, 8], key=level_order) == [8, 19, 28, 20]


@pytest.mark.parametrize("structure,label", STRUCTURE_CASES, ids=[c[0] for c in STRUCTURE_CASES])
def test_structure_to_label_maps_vertebrae_and_ignores_the_rest(structure, label):
    assert structure_to_label(structure) == label


def test_structure_names_are_read_from_csv(tmp_path):
    path = tmp_path / "structures.csv"
    path.write_text("group,original_idx,structure,id\norgans,5,liver,5\nvertebrae,19,vertebrae_T1,43\n")
    assert read_structure_names(path) == {5: "liver", 43: "vertebrae_T1"}


def test_structure_names_are_read_from_json(tmp_path):
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"5": "liver", "43": "vertebrae_T1"}))
    assert read_structure_names(path) == {5: "liver", 43: "vertebrae_T1"}


def test_csv_without_id_column_is_rejected(tmp_path):
    path = tmp_path / "structures.csv"
    path.write_text("structure,value\nliver,5\n")
    with pytest.raises(ValueError, match="columns 'structure' and 'id'"):
        read_structure_names(path)


def test_totalsegmentator_mapping_uses_names_not_ids():
    # the same structures under two different id schemes map to the same VerSe indices
    v2 = {26: "vertebrae_S1", 31: "vertebrae_L1", 43: "vertebrae_T1", 5: "liver"}
    other = {18: "vertebrae_L1", 40: "vertebrae_T1", 92: "sacrum"}
    assert totalsegmentator_to_verse(v2) == {31: 20, 43: 8}
    assert totalsegmentator_to_verse(other) == {18: 20, 40: 8}


def test_vertebra_named_twice_is_rejected():
    with pytest.raises(ValueError, match="T1 twice"):
        totalsegmentator_to_verse({3: "vertebrae_T1", 4: "vertebrae_T1"})
