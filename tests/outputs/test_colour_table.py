from __future__ import annotations

import re
import shlex

import numpy as np
import pytest

from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, label_to_name
from transvert_monai.outputs import ITKSNAP_LABELS_NAME, SLICER_COLOUR_TABLE_NAME, label_colour, write_colour_tables

LABELS = [8, 9, 10, 19, 20, 28]  # T1 T2 T3 T12 L1 T13


def read_slicer(path):
    """``{index: (name, (r, g, b, a))}`` of a Slicer colour table (``index name R G B A`` lines, ``#`` comments)."""
    table = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            index, name, *rgba = line.split()
            table[int(index)] = (name, tuple(int(c) for c in rgba))
    return table


def read_itksnap(path):
    """``{index: (name, (r, g, b), opacity, visible, mesh_visible)}`` of an ITK-SNAP label description file."""
    table = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            idx, r, g, b, a, vis, msh, name = shlex.split(line)
            table[int(idx)] = (name, (int(r), int(g), int(b)), float(a), int(vis), int(msh))
    return table


def expected_rgb(label):
    return tuple(int(c) for c in np.round(label_colour(label) * 255))


def test_slicer_table_has_the_palette_names_and_colours(tmp_path):
    paths = write_colour_tables(tmp_path, LABELS)
    assert paths["slicer"] == tmp_path / SLICER_COLOUR_TABLE_NAME
    table = read_slicer(paths["slicer"])
    assert table.pop(0) == ("Background", (0, 0, 0, 0))
    assert table == {v: (label_to_name(v), (*expected_rgb(v), 255)) for v in LABELS}


def test_itksnap_file_has_the_palette_names_and_colours(tmp_path):
    paths = write_colour_tables(tmp_path, LABELS)
    assert paths["itksnap"] == tmp_path / ITKSNAP_LABELS_NAME
    text = paths["itksnap"].read_text()
    assert "ITK-SnAP Label Description File" in text
    table = read_itksnap(paths["itksnap"])
    assert table.pop(0) == ("Clear Label", (0, 0, 0), 0.0, 0, 0)
    assert table == {v: (label_to_name(v), expected_rgb(v), 1.0, 1, 1) for v in LABELS}
    # ITK-SNAP's column layout: index, three colours, opacity with two decimals, two flags, quoted name
    assert re.search(r'^\s+8\s+\d+\s+\d+\s+\d+\s+1\.00\s+1\s+1\s+"T1"$', text, flags=re.M)


def test_without_labels_every_verse_index_is_listed_cranial_to_caudal(tmp_path):
    table = read_slicer(write_colour_tables(tmp_path)["slicer"])
    assert set(table) == {0, *VALID_VERTEBRA_LABELS}
    names = [name for _, (name, _) in table.items()][1:]
    assert names[:2] == ["C1", "C2"] and names.index("T13") == names.index("T12") + 1


def test_adjacent_vertebrae_differ_in_colour(tmp_path):
    table = read_slicer(write_colour_tables(tmp_path, LABELS[:5])["slicer"])
    colours = [table[v][1] for v in LABELS[:5]]
    assert all(a != b for a, b in zip(colours, colours[1:]))


def test_a_non_verse_label_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError):
        write_colour_tables(tmp_path / "out", [8, 99])
    assert not (tmp_path / "out").exists()
