"""``summary.json``: per vertebra, where it was placed, how well the views agreed, its volume and a quality flag.

Layout::

    {"coordinate_system": "RAS", "units": {"centre_mm": "mm", "residual_mm": "mm", "volume_ml": "ml"},
     "placement": "cone_beam",
     "vertebrae": [{"label": 20, "name": "L1", "centre_mm": [x, y, z], "residual_mm": 0.4,
                    "voxels": 61234, "volume_ml": 61.2, "quality": "ok"}, ...],
     "skipped": {"L5": "no AP centroid"}}

``volume_ml`` = voxel count × voxel volume (|det| of the affine's 3×3 part, mm³) / 1000.
Quality flags, joined with ``"; "`` when several apply, ``"ok"`` when none does:

* ``"check: empty shape"`` — the vertebra has no voxel in the spine label map;
* ``"check: small shape (V ml < L ml)"`` — fewer than ``min_volume_ml`` (default 1 ml; the smallest
  cervical vertebrae are several ml);
* ``"check: residual R mm > L mm"`` — the two views disagree about its position by more than
  ``residual_limit_mm`` (default 5 mm; 2-pixel centroid noise at 1.8 mm gives about 1–2 mm).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transvert_monai.data.atomic import write_json_atomic
from transvert_monai.data.labels import label_to_name, level_order
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["SUMMARY_FIELDS", "quality_flag", "vertebra_summary_rows", "write_summary", "summary_row"]

#: Keys of one vertebra's row.
SUMMARY_FIELDS = ("label", "name", "centre_mm", "residual_mm", "voxels", "volume_ml", "quality")


def quality_flag(
    voxels: int, volume_ml: float, residual_mm: float, residual_limit_mm: float = 5.0, min_volume_ml: float = 1.0
) -> str:
    """The quality flag of one vertebra (see the module docstring)."""
    notes = []
    if voxels == 0:
        notes.append("check: empty shape")
    elif volume_ml < min_volume_ml:
        notes.append(f"check: small shape ({volume_ml:.2f} ml < {min_volume_ml:g} ml)")
    if not math.isfinite(residual_mm) or residual_mm > residual_limit_mm:
        notes.append(f"check: residual {residual_mm:.1f} mm > {residual_limit_mm:g} mm")
    return "; ".join(notes) or "ok"


def vertebra_summary_rows(
    label_volume: object,
    affine: object,
    labels: Sequence[int],
    centres_mm: torch.Tensor | Sequence[Sequence[float]],
    residual_mm: torch.Tensor | Sequence[float],
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
) -> list[dict[str, Any]]:
    """One summary row per placed vertebra, cranial to caudal.

    Args:
        label_volume: the spine label map (X, Y, Z) or (1, X, Y, Z).
        affine: its 4×4 voxel → world map (None: the MetaTensor's).
        labels: the VerSe indices of the placed vertebrae.
        centres_mm: (B, 3) their 3D centres.
        residual_mm: (B,) their placement residuals.
        residual_limit_mm, min_volume_ml: limits of the quality flags.

    Raises:
        ValueError: mismatched lengths, see :func:`~transvert_monai.outputs.volume.as_label_volume`.
    """
    data, aff = as_label_volume(label_volume, affine)
    centres = torch.as_tensor(centres_mm, dtype=torch.float64).reshape(-1, 3)
    residual = torch.as_tensor(residual_mm, dtype=torch.float64).reshape(-1)
    labels = [int(v) for v in labels]
    if not len(labels) == len(centres) == len(residual):
        raise ValueError(
            f"one centre and one residual per label are needed: {len(labels)} labels, {len(centres)} centres, {len(residual)} residuals."
        )
    voxel_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    counts = np.bincount(data.reshape(-1), minlength=256)
    rows = []
    for label, centre, res in sorted(zip(labels, centres.tolist(), residual.tolist()), key=lambda t: level_order(t[0])):
        voxels = int(counts[label])
        rows.append(summary_row(label, centre, res, voxels, voxels * voxel_ml, residual_limit_mm, min_volume_ml))
    return rows


def summary_row(
    label: int,
    centre_mm: Sequence[float],
    residual_mm: float,
    voxels: int,
    volume_ml: float,
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
) -> dict[str, Any]:
    """One vertebra's row of ``summary.json`` (keys :data:`SUMMARY_FIELDS`), with its quality flag."""
    return {
        "label": int(label),
        "name": label_to_name(int(label)),
        "centre_mm": [round(float(x), 3) for x in centre_mm],
        "residual_mm": round(float(residual_mm), 3),
        "voxels": int(voxels),
        "volume_ml": float(volume_ml),
        "quality": quality_flag(int(voxels), float(volume_ml), float(residual_mm), residual_limit_mm, min_volume_ml),
    }


def write_summary(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    placement: str | None = None,
    skipped: Mapping[int, str] | None = None,
) -> Path:
    """Write ``summary.json`` atomically after checking every row.

    Args:
        path: the JSON file.
        rows: per vertebra, the keys of :data:`SUMMARY_FIELDS` (see :func:`vertebra_summary_rows`).
        placement: the placement rule used (``"cone_beam"`` / ``"orthographic"``).
        skipped: {VerSe index: the view without a centroid} of the vertebrae left out.

    Raises:
        ValueError: a row without a required key or with a non-finite centre or volume.
    """
    checked = []
    for i, row in enumerate(rows):
        absent = [k for k in SUMMARY_FIELDS if k not in row]
        if absent:
            raise ValueError(
                f"summary row {i} lacks {absent}; rows need {list(SUMMARY_FIELDS)} (see vertebra_summary_rows)."
            )
        centre = [float(x) for x in row["centre_mm"]]
        if len(centre) != 3 or not all(math.isfinite(x) for x in centre) or not math.isfinite(float(row["volume_ml"])):
            raise ValueError(
                f"summary row {i} ({row['name']}) needs a finite 3D centre and volume, got {row['centre_mm']} and {row['volume_ml']}."
            )
        checked.append({k: row[k] for k in row})
    data = {
        "coordinate_system": "RAS",
        "units": {"centre_mm": "mm", "residual_mm": "mm", "volume_ml": "ml"},
        "placement": placement,
        "vertebrae": checked,
        "skipped": {label_to_name(v): f"no {view} centroid" for v, view in sorted((skipped or {}).items())},
    }
    return write_json_atomic(path, data)
