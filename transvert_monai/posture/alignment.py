"""Spinal alignment measures from vertebra poses, and the JSON-ready posture summary.

All angles are measured in the RAS patient frame of the poses (for a reconstruction: the frame of
the radiographs), on the vertebrae's *superior axes* (the body axis, the mean endplate normal of
:mod:`transvert_monai.posture.frames`) projected onto the patient's planes, which is the 3D
counterpart of drawing endplate lines on a radiograph:

* **coronal tilt** of a vertebra: angle of its superior axis in the coronal (x–z) plane,
  ``atan2(s_x, s_z)``; positive when it tilts to the patient's right.
* **sagittal tilt**: angle in the sagittal (y–z) plane, ``atan2(s_y, s_z)``; positive when it
  tilts anteriorly.
* **coronal Cobb angle** (Cobb, AAOS Instr. Course Lect. 5:261–275, 1948; Scoliosis Research
  Society terminology): the largest difference of coronal tilts between two vertebrae; the end
  vertebrae are the two most tilted vertebrae of the curve (the pair giving that difference). The
  *secondary* curve is the largest such angle among the vertebrae above or below the major curve
  (sharing its end vertebra). A coronal Cobb angle ≥ 10° is the usual threshold of scoliosis.
* **thoracic kyphosis T4–T12**: sagittal Cobb angle, sagittal tilt of T4 minus that of T12
  (SRS; e.g. Fon et al., AJR 134:979–983, 1980); positive = kyphotic.
* **lumbar lordosis L1–L5** (and L1–S1, which needs S1, a level TransVert does not model): sagittal
  tilt of L5 minus that of L1; positive = lordotic.
* **axial rotation** of each vertebra: angle of its anterior axis projected on the transverse
  (x–y) plane from the patient's anterior axis; positive when it turns to the patient's left
  (counter-clockwise seen from above) (the CT angle of Aaro & Dahlborn, Spine 6(5):460–467, 1981,
  taken from the patient's mid-sagittal plane).
* **3D spine curve**: a cubic smoothing spline through the body centroids (cranial to caudal,
  chord-length parameter, smoothing ``n × (1 mm)²``; ``scipy.interpolate.splprep``), sampled
  every 2 mm of arc length.

A measure whose vertebrae are not all present is reported with ``value_deg: null`` and an
``absent_reason``; it is never extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import interpolate

from transvert_monai.data.labels import label_to_name, level_order, name_to_label
from transvert_monai.errors import TransVertInputError
from transvert_monai.posture.frames import VertebraPose, poses_from_label_map, poses_from_reconstruction

__all__ = [
    "ALIGNMENT_FRAME",
    "coronal_tilt_deg",
    "sagittal_tilt_deg",
    "axial_rotation_deg",
    "cobb_angle",
    "spine_curve",
    "alignment_measures",
    "posture_summary",
]

#: The frame the measures and the curve are given in.
ALIGNMENT_FRAME = "RAS mm, patient frame of the radiographs"

_COBB_REFERENCE = "Cobb JR, Outline for the study of scoliosis, AAOS Instr Course Lect 5:261-275, 1948; SRS terminology"
_SAGITTAL_REFERENCE = (
    "sagittal Cobb method (SRS); Fon GT, Pitt MJ, Thies AC, Thoracic kyphosis: range in normal subjects, "
    "AJR 134:979-983, 1980"
)
_ROTATION_REFERENCE = "Aaro S, Dahlborn M, Estimation of vertebral rotation and the spinal and rib cage deformity in scoliosis by computer tomography, Spine 6(5):460-467, 1981"


def coronal_tilt_deg(pose: VertebraPose) -> float:
    """Coronal tilt (degrees) of the superior axis: ``atan2(s_x, s_z)``, + to the patient's right."""
    s = pose.superior
    return math.degrees(math.atan2(s[0], s[2]))


def sagittal_tilt_deg(pose: VertebraPose) -> float:
    """Sagittal tilt (degrees) of the superior axis: ``atan2(s_y, s_z)``, + anteriorly."""
    s = pose.superior
    return math.degrees(math.atan2(s[1], s[2]))


def axial_rotation_deg(pose: VertebraPose) -> float:
    """Axial rotation (degrees) of the anterior axis in the transverse plane from +A, + towards the patient's left."""
    a = pose.anterior
    return math.degrees(math.atan2(-a[0], a[1]))


def cobb_angle(tilts_deg: Sequence[float]) -> tuple[float, int, int]:
    """Largest difference of tilts and its end vertebrae (indices ``i < j`` into ``tilts_deg``).

    Raises:
        TransVertInputError: fewer than two tilts.
    """
    t = np.asarray(tilts_deg, dtype=np.float64)
    if len(t) < 2:
        raise TransVertInputError(f"a Cobb angle needs at least two vertebrae, got {len(t)}.")
    diff = np.abs(t[:, None] - t[None, :])
    diff[np.tril_indices(len(t))] = -1.0
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return float(diff[i, j]), int(i), int(j)


def spine_curve(centres_mm: Sequence[Sequence[float]], step_mm: float = 2.0, smoothing_mm: float = 1.0) -> np.ndarray:
    """The 3D spine curve through body centres ordered cranial → caudal (module docstring), (M, 3) mm.

    One centre gives itself; two give the segment between them.
    """
    c = np.asarray(centres_mm, dtype=np.float64).reshape(-1, 3)
    if len(c) < 2:
        return c.copy()
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))]
    if chord[-1] <= 0:
        return c[:1].copy()
    k = min(3, len(c) - 1)
    tck, _ = interpolate.splprep(c.T, u=chord / chord[-1], k=k, s=len(c) * smoothing_mm**2)
    dense = np.asarray(interpolate.splev(np.linspace(0.0, 1.0, 2000), tck)).T
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
    samples = np.arange(0.0, arc[-1], step_mm)
    samples = np.r_[samples, arc[-1]] if arc[-1] - samples[-1] > 1e-6 else samples
    return np.stack([np.interp(samples, arc, dense[:, d]) for d in range(3)], 1)


def _measure(key: str, name: str, levels: list[str], definition: str, reference: str) -> dict[str, Any]:
    return {"key": key, "name": name, "value_deg": None, "levels": levels, "definition": definition, "reference": reference, "absent_reason": None}


def _present_names(poses: Mapping[int, VertebraPose]) -> str:
    names = [label_to_name(v) for v in sorted(poses, key=level_order)]
    return f"{names[0]}–{names[-1]}" if names else "none"


def _sagittal(poses: Mapping[int, VertebraPose], key: str, name: str, upper: str, lower: str, sign: float, kind: str) -> dict[str, Any]:
    m = _measure(
        key, name, [upper, lower],
        f"sagittal Cobb angle between the superior (body) axes of {upper} and {lower} projected on the sagittal plane: "
        f"{'tilt(' + upper + ') - tilt(' + lower + ')' if sign > 0 else 'tilt(' + lower + ') - tilt(' + upper + ')'}, "
        f"tilt = atan2(s_y, s_z); positive = {kind}",
        _SAGITTAL_REFERENCE,
    )  # fmt: skip
    missing = [n for n in (upper, lower) if n.upper() == "S1" or name_to_label(n) not in poses]
    if missing:
        why = " (TransVert models C1–L6; the sacrum is not reconstructed)" if "S1" in missing else ""
        m["absent_reason"] = f"{', '.join(missing)} not among the vertebrae ({_present_names(poses)}){why}"
        return m
    a, b = sagittal_tilt_deg(poses[name_to_label(upper)]), sagittal_tilt_deg(poses[name_to_label(lower)])
    m["value_deg"] = round(sign * (a - b), 2)
    return m


def alignment_measures(poses: Mapping[int, VertebraPose]) -> dict[str, Any]:
    """The ``alignment`` object of the posture summary: frame, measures and curve (module docstring).

    Args:
        poses: {VerSe index: VertebraPose} in one world frame.

    Returns:
        ``{"frame", "measures": [{key, name, value_deg, levels, definition, reference, absent_reason}], "curve_mm"}``.
    """
    order = sorted(poses, key=level_order)
    names = [label_to_name(v) for v in order]
    measures: list[dict[str, Any]] = []
    coronal_def = (
        "coronal Cobb angle: largest difference of coronal tilts (superior body axis projected on the coronal plane, "
        "atan2(s_x, s_z)) between two vertebrae; end vertebrae = the two most tilted vertebrae of the curve"
    )
    major = _measure("coronal_cobb", "coronal Cobb angle (major curve)", [], coronal_def, _COBB_REFERENCE)
    secondary = _measure(
        "coronal_cobb_secondary", "coronal Cobb angle (secondary curve)", [],
        coronal_def + ", among the vertebrae above or below the major curve (sharing its end vertebra)", _COBB_REFERENCE,
    )  # fmt: skip
    tilts = [coronal_tilt_deg(poses[v]) for v in order]
    if len(order) < 2:
        major["absent_reason"] = secondary["absent_reason"] = f"fewer than two vertebrae ({_present_names(poses)})"
    else:
        value, i, j = cobb_angle(tilts)
        major.update(value_deg=round(value, 2), levels=[names[i], names[j]])
        candidates = [(tilts[: i + 1], 0), (tilts[j:], j)]
        best = None
        for part, offset in candidates:
            if len(part) >= 2:
                v2, a, b = cobb_angle(part)
                if best is None or v2 > best[0]:
                    best = (v2, a + offset, b + offset)
        if best is None:
            secondary["absent_reason"] = f"no vertebrae above {names[i]} or below {names[j]}, the major curve's end vertebrae"
        else:
            secondary.update(value_deg=round(best[0], 2), levels=[names[best[1]], names[best[2]]])
    measures += [major, secondary]
    measures.append(_sagittal(poses, "kyphosis_T4_T12", "thoracic kyphosis", "T4", "T12", 1.0, "kyphotic"))
    measures.append(_sagittal(poses, "lordosis_L1_L5", "lumbar lordosis", "L1", "L5", -1.0, "lordotic"))
    measures.append(_sagittal(poses, "lordosis_L1_S1", "lumbar lordosis (L1–S1)", "L1", "S1", -1.0, "lordotic"))
    for v, n in zip(order, names):
        m = _measure(
            f"axial_rotation_{n}", f"axial rotation of {n}", [n],
            "angle of the vertebra's anterior axis projected on the transverse plane from the patient's anterior axis, "
            "atan2(-a_x, a_y); positive = towards the patient's left (counter-clockwise seen from above)",
            _ROTATION_REFERENCE,
        )  # fmt: skip
        m["value_deg"] = round(axial_rotation_deg(poses[v]), 2)
        measures.append(m)
    curve = spine_curve([poses[v].origin_mm for v in order]) if order else np.zeros((0, 3))
    return {"frame": ALIGNMENT_FRAME, "measures": measures, "curve_mm": [[round(float(x), 2) for x in p] for p in curve]}


def posture_summary(
    source: Any,
    affine: Any = None,
    centroids_mm: Mapping[int, Any] | None = None,
    poses: Mapping[int, VertebraPose] | None = None,
) -> dict[str, Any]:
    """Poses and alignment of a reconstructed (or any labelled) spine, ready for ``summary.json``.

    Args:
        source: a :class:`~transvert_monai.apps.reconstruct.SpineReconstruction` (poses from its shapes and
            centres), a :class:`~transvert_monai.posture.fusion.CTFusion` (poses of the placed CT vertebrae),
            or a VerSe-indexed label map (MetaTensor, or array with ``affine``).
        affine: (4, 4) voxel → world of a label map without one.
        centroids_mm: body centroids of a label map (default: the canal-rule estimate).
        poses: precomputed poses (``source`` is then ignored).

    Returns:
        ``{"poses": {name: pose dict}, "alignment": {...}}`` (see :meth:`VertebraPose.to_dict`, :func:`alignment_measures`).

    Raises:
        TransVertInputError: see :func:`~transvert_monai.posture.frames.poses_from_label_map` and
            :func:`~transvert_monai.posture.frames.poses_from_reconstruction`.
    """
    if poses is None:
        if hasattr(source, "poses") and isinstance(getattr(source, "poses"), Mapping):
            poses = source.poses
        elif hasattr(source, "shapes") and hasattr(source, "vertebra_affines"):
            poses = poses_from_reconstruction(source)
        else:
            poses = poses_from_label_map(source, affine, centroids_mm)
    ordered = dict(sorted(poses.items(), key=lambda kv: level_order(kv[0])))
    return {
        "poses": {label_to_name(v): p.to_dict() for v, p in ordered.items()},
        "alignment": alignment_measures(ordered),
    }
