"""Label names and colours of the spine label map for 3D Slicer and ITK-SNAP, written beside ``spine.nii.gz``.

Both files give every vertebra its name (:func:`~transvert_monai.data.labels.label_to_name`, ``T1``)
and the colour the overlays and renderings use (:func:`~transvert_monai.outputs.label_colour`), with
label 0 as a transparent background:

* ``spine_colors.ctbl``: a 3D Slicer colour table, one ``index name R G B A`` line per label
  (0–255). In Slicer, load it with the label map (drag both in) and choose it as the label map's
  lookup table (Volumes module, Display), or in the Segmentations module when importing the label map.
* ``spine_itksnap_labels.txt``: an ITK-SNAP label description file (``IDX -R- -G- -B- -A-- VIS MSH-VIS
  LABEL``, opacity 0–1). In ITK-SNAP: Segmentation › Import Label Descriptions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, label_to_name, level_order
from transvert_monai.outputs.palette import label_colour

__all__ = ["ITKSNAP_LABELS_NAME", "SLICER_COLOUR_TABLE_NAME", "colour_table_rows", "write_colour_tables"]

#: 3D Slicer colour table written by :func:`write_colour_tables`.
SLICER_COLOUR_TABLE_NAME = "spine_colors.ctbl"
#: ITK-SNAP label description file written by :func:`write_colour_tables`.
ITKSNAP_LABELS_NAME = "spine_itksnap_labels.txt"

_ITKSNAP_HEADER = """################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    MSH:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
# Written by transvert_monai: VerSe vertebra indices of spine.nii.gz
################################################
"""


def colour_table_rows(labels: Iterable[int] | None = None) -> list[tuple[int, str, tuple[int, int, int]]]:
    """``(index, name, (R, G, B) 0–255)`` of each vertebra label, cranial to caudal.

    Args:
        labels: VerSe indices (None: every VerSe index, C1–L6 and T13).

    Raises:
        ValueError: a label that is not a VerSe index.
    """
    chosen = VALID_VERTEBRA_LABELS if labels is None else {int(v) for v in labels}
    rows = []
    for label in sorted(chosen, key=level_order):
        name = label_to_name(label)  # raises for a non-VerSe index
        rgb = tuple(int(c) for c in np.round(label_colour(label) * 255))
        rows.append((label, name, rgb))
    return rows  # type: ignore[return-value]


def write_colour_tables(folder: str | os.PathLike, labels: Iterable[int] | None = None) -> dict[str, Path]:
    """Write ``spine_colors.ctbl`` (3D Slicer) and ``spine_itksnap_labels.txt`` (ITK-SNAP) into ``folder``.

    Args:
        folder: the output folder (created if needed), e.g. the one holding ``spine.nii.gz``.
        labels: the VerSe indices to list (None: every VerSe index, so later edits of the map keep names).

    Returns:
        ``{"slicer": path, "itksnap": path}``, each written atomically.

    Raises:
        ValueError: a label that is not a VerSe index (nothing is written).

    Example:
        >>> write_colour_tables("spine_out", [8, 9, 10])  # T1, T2, T3
    """
    rows = colour_table_rows(labels)
    slicer = [f"# Color table file {SLICER_COLOUR_TABLE_NAME}: VerSe vertebra indices of spine.nii.gz",
              f"# {len(rows) + 1} values", "0 Background 0 0 0 0"]  # fmt: skip
    slicer += [f"{v} {name} {r} {g} {b} 255" for v, name, (r, g, b) in rows]
    itksnap = [f"{0:5d} {0:5d} {0:4d} {0:4d} {0:8.2f} {0:2d} {0:2d}    \"Clear Label\""]
    itksnap += [f"{v:5d} {r:5d} {g:4d} {b:4d} {1:8.2f} {1:2d} {1:2d}    \"{name}\"" for v, name, (r, g, b) in rows]
    folder = Path(folder)
    return {
        "slicer": atomic_write(
            folder / SLICER_COLOUR_TABLE_NAME, lambda tmp: tmp.write_text("\n".join(slicer) + "\n", encoding="utf-8")
        ),
        "itksnap": atomic_write(
            folder / ITKSNAP_LABELS_NAME,
            lambda tmp: tmp.write_text(_ITKSNAP_HEADER + "\n".join(itksnap) + "\n", encoding="utf-8"),
        ),
    }
