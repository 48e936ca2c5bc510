"""``summary.json``: per vertebra, where it was placed, how well the views agreed, its volume and quality checks.

Layout::

    {"coordinate_system": "RAS", "units": {"centre_mm": "mm", "residual_mm": "mm", "volume_ml": "ml"},
     "placement": "cone_beam",
     "vertebrae": [{"label": 20, "name": "L1", "centre_mm": [x, y, z], "residual_mm": 0.4,
                    "voxels": 61234, "volume_ml": 61.2, "quality": "ok", "quality_checks": []}, ...],
     "skipped": {"L5": "no AP centroid"}}

``volume_ml`` = voxel count × voxel volume (|det| of the affine's 3×3 part, mm³) / 1000.
``quality_checks`` lists the names of the failed checks (e.g. ``["volume_below_training_range"]``)
and ``quality`` their sentences joined with ``"; "`` (``"ok"`` when none failed), e.g.
``"check: volume 4.1 ml below the 18.2–45.0 ml seen for L3 in training (limit 13.7 ml)"``. The
checks (empty, small, fragmented shape; volume outside the level's training range; residual over
``residual_limit_mm``, default 5 mm) and their limits are described in
:mod:`transvert_monai.outputs.quality`. The volume-range check runs when ``volume_ranges_ml`` (the
ranges saved with the weights) is given, the fragmentation check when the shape's voxels are at hand
(always in :func:`vertebra_summary_rows`).
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
from transvert_monai.outputs.quality import (
    DEFAULT_VOLUME_TOLERANCE,
    QualityCheckName,
    check_vertebra_quality,
    label_component_fractions,
)
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["SUMMARY_FIELDS", "quality_flag", "vertebra_summary_rows", "write_summary", "summary_row"]

#: Keys of one vertebra's row.
SUMMARY_FIELDS = ("label", "name", "centre_mm", "residual_mm", "voxels", "volume_ml", "quality", "quality_checks")
_CHECK_NAMES = frozenset(c.value for c in QualityCheckName)


def quality_flag(
    voxels: int, volume_ml: float, residual_mm: float, residual_limit_mm: float = 5.0, min_volume_ml: float = 1.0
) -> str:
    """The quality flag of one vertebra from its numbers alone (empty, small, residual; see the module docstring).

    Kept for callers without a shape or training ranges; :func:`summary_row` runs every check.
    """
    return check_vertebra_quality(
        None, voxels, volume_ml, residual_mm, residual_limit_mm=residual_limit_mm, min_volume_ml=min_volume_ml
    ).flag


def vertebra_summary_rows(
    label_volume: object,
    affine: object,
    labels: Sequence[int],
    centres_mm: torch.Tensor | Sequence[Sequence[float]],
    residual_mm: torch.Tensor | Sequence[float],
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
    *,
    volume_ranges_ml: Mapping[object, Sequence[float]] | None = None,
    min_largest_component_fraction: float = 0.9,
    volume_tolerance: Sequence[float] = DEFAULT_VOLUME_TOLERANCE,
    patch_outside_fractions: Mapping[int, float] | None = None,
) -> list[dict[str, Any]]:
    """One summary row per placed vertebra, cranial to caudal, with every quality check.

    Args:
        label_volume: the spine label map (X, Y, Z) or (1, X, Y, Z).
        affine: its 4×4 voxel → world map (None: the MetaTensor's).
        labels: the VerSe indices of the placed vertebrae.
        centres_mm: (B, 3) their 3D centres.
        residual_mm: (B,) their placement residuals.
        residual_limit_mm, min_volume_ml: limits of the residual and small-shape checks (mm, ml).
        volume_ranges_ml: {VerSe level: (min_ml, max_ml)} seen in training, saved with the weights;
            None skips the volume-range check.
        min_largest_component_fraction: a shape whose largest 26-connected component holds less of its
            voxels is flagged fragmented (components are counted on each label's bounding box).
        volume_tolerance: (below, above) factors on the training range (see :mod:`~transvert_monai.outputs.quality`).
        patch_outside_fractions: {VerSe index: largest share of its patch outside a radiograph}; None skips that check.

    Raises:
        ValueError: mismatched lengths, bad ranges or limits, see
            :func:`~transvert_monai.outputs.volume.as_label_volume`.
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
    fractions = label_component_fractions(data, labels)
    rows = []
    for label, centre, res in sorted(zip(labels, centres.tolist(), residual.tolist()), key=lambda t: level_order(t[0])):
        voxels = int(counts[label])
        rows.append(
            summary_row(
                label,
                centre,
                res,
                voxels,
                voxels * voxel_ml,
                residual_limit_mm,
                min_volume_ml,
                volume_ranges_ml=volume_ranges_ml,
                largest_component_fraction=fractions[label],
                min_largest_component_fraction=min_largest_component_fraction,
                volume_tolerance=volume_tolerance,
                patch_outside_fraction=None if patch_outside_fractions is None else patch_outside_fractions.get(label),
            )
        )
    return rows


def summary_row(
    label: int,
    centre_mm: Sequence[float],
    residual_mm: float,
    voxels: int,
    volume_ml: float,
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
    *,
    volume_ranges_ml: Mapping[object, Sequence[float]] | None = None,
    largest_component_fraction: float | None = None,
    min_largest_component_fraction: float = 0.9,
    volume_tolerance: Sequence[float] = DEFAULT_VOLUME_TOLERANCE,
    patch_outside_fraction: float | None = None,
) -> dict[str, Any]:
    """One vertebra's row of ``summary.json`` (keys :data:`SUMMARY_FIELDS`), with its quality checks.

    Args:
        label: VerSe index.
        centre_mm: its 3D centre (mm).
        residual_mm: its triangulation residual (mm).
        voxels, volume_ml: its voxel count and volume (ml).
        residual_limit_mm, min_volume_ml: limits of the residual and small-shape checks.
        volume_ranges_ml: {VerSe level: (min_ml, max_ml)} seen in training; None skips that check.
        largest_component_fraction: share of its voxels in the largest 26-connected component
            (:func:`~transvert_monai.outputs.quality.largest_component_fraction`); None skips the
            fragmentation check.
        min_largest_component_fraction, volume_tolerance: see :func:`vertebra_summary_rows`.
        patch_outside_fraction: largest share of its patch outside a radiograph; None skips that check.

    Raises:
        ValueError: bad ranges or limits.
    """
    quality = check_vertebra_quality(
        int(label),
        int(voxels),
        float(volume_ml),
        float(residual_mm),
        volume_ranges_ml,
        largest_component_fraction,
        residual_limit_mm=residual_limit_mm,
        min_volume_ml=min_volume_ml,
        min_largest_component_fraction=min_largest_component_fraction,
        volume_tolerance=volume_tolerance,
        patch_outside_fraction=patch_outside_fraction,
    )
    return {
        "label": int(label),
        "name": label_to_name(int(label)),
        "centre_mm": [round(float(x), 3) for x in centre_mm],
        "residual_mm": round(float(residual_mm), 3),
        "voxels": int(voxels),
        "volume_ml": float(volume_ml),
        "quality": quality.flag,
        "quality_checks": quality.names,
    }


def write_summary(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    placement: str | None = None,
    skipped: Mapping[int, str] | None = None,
    input_checks: Sequence[Any] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``summary.json`` atomically after checking every row.

    Args:
        path: the JSON file.
        rows: per vertebra, the keys of :data:`SUMMARY_FIELDS` (see :func:`vertebra_summary_rows`).
        placement: the placement rule used (``"cone_beam"`` / ``"orthographic"``).
        skipped: {VerSe index: the view without a centroid} of the vertebrae left out.
        input_checks: findings about the inputs that did not stop the job
            (:class:`~transvert_monai.io.plausibility.InputCheck` or their dicts), kept under ``input_checks``;
            ``input_quality`` is ``"ok"`` without any, else ``"check inputs"``.
        extra: more top-level entries (provenance, posture), written after the standard ones.

    Raises:
        ValueError: a row without a required key, with a non-finite centre or volume, or whose
            ``quality_checks`` are not known check names agreeing with ``quality`` ("ok" iff none).
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
        checks = row["quality_checks"]
        if not isinstance(checks, (list, tuple)) or any(c not in _CHECK_NAMES for c in checks):
            raise ValueError(
                f"summary row {i} ({row['name']}): `quality_checks` must list names of {sorted(_CHECK_NAMES)}, "
                f"got {checks!r}."
            )
        if (row["quality"] == "ok") != (len(checks) == 0):
            raise ValueError(
                f"summary row {i} ({row['name']}): `quality` {row['quality']!r} disagrees with "
                f"`quality_checks` {list(checks)}; build rows with summary_row."
            )
        checked.append({**row, "quality_checks": [str(c) for c in checks]})
    data = {
        "coordinate_system": "RAS",
        "units": {"centre_mm": "mm", "residual_mm": "mm", "volume_ml": "ml"},
        "placement": placement,
        "vertebrae": checked,
        "skipped": {label_to_name(v): f"no {view} centroid" for v, view in sorted((skipped or {}).items())},
        "input_quality": "check inputs" if input_checks else "ok",
        "input_checks": [c.to_dict() if hasattr(c, "to_dict") else dict(c) for c in input_checks],
    }
    clash = sorted(set(extra or {}) & set(data))
    if clash:
        raise ValueError(f"`extra` must not replace the standard summary entries {clash}.")
    data.update(extra or {})
    return write_json_atomic(path, data)
