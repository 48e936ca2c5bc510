"""Tiny synthetic VerSe / TotalSegmentator cases for the data tests (written to tmp_path only)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations
from scipy import ndimage

__all__ = [
    "SPINE_SHAPE",
    "SPINE_BOXES",
    "affine_for",
    "save_nifti",
    "label_map",
    "verse_centroid_entries",
    "write_verse2020_case",
    "write_verse2019_case",
]

#: A small spine: four complete vertebrae T11–L2 stacked along axis 2, and T10 cut by the first slice.
SPINE_SHAPE = (16, 14, 60)
SPINE_BOXES: dict[int, tuple[slice, slice, slice]] = {
    17: (slice(3, 13), slice(3, 11), slice(0, 8)),  # T10: touches the first plane of axis 2
    18: (slice(3, 13), slice(3, 11), slice(9, 21)),  # T11
    19: (slice(3, 13), slice(3, 11), slice(22, 34)),  # T12
    20: (slice(3, 13), slice(3, 11), slice(35, 47)),  # L1
    21: (slice(3, 13), slice(3, 11), slice(48, 59)),  # L2
}


def affine_for(
    axcodes: Sequence[str], spacing: Sequence[float] = (1.0, 1.0, 1.0), origin: Sequence[float] = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """Affine whose voxel axes point to ``axcodes`` (nibabel codes, e.g. ``"PIR"``) with ``spacing`` mm."""
    ornt = orientations.axcodes2ornt(tuple(axcodes))
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for axis, (world_axis, sign) in enumerate(ornt):
        affine[int(world_axis), axis] = sign * spacing[axis]
    affine[:3, 3] = origin
    return affine


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Save ``array`` with ``affine`` (qform and sform, scanner code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def label_map(shape: Sequence[int], boxes: Mapping[int, tuple[slice, ...]], dtype: type = np.uint8) -> np.ndarray:
    """Label map with one box per label."""
    out = np.zeros(tuple(shape), dtype=dtype)
    for label, box in boxes.items():
        out[box] = label
    return out


def verse_centroid_entries(mask: np.ndarray, affine: np.ndarray, direction: Sequence[str]) -> list[dict]:
    """VerSe centroid entries of ``mask``: centres of mass on the mask reoriented to ``direction``.

    Independent of the code under test: nibabel reorients the *array*, scipy takes the centre of mass.
    """
    transform = orientations.ornt_transform(orientations.io_orientation(affine), orientations.axcodes2ornt(direction))
    reoriented = orientations.apply_orientation(mask, transform)
    entries: list[dict] = [{"direction": list(direction)}]
    for label in sorted(int(v) for v in np.unique(mask) if v):
        x, y, z = ndimage.center_of_mass(reoriented == label)
        entries.append({"label": label, "X": float(x), "Y": float(y), "Z": float(z)})
    return entries


def _ct(shape: Sequence[int]) -> np.ndarray:
    return np.random.default_rng(0).integers(-1000, 1500, size=tuple(shape)).astype(np.int16)


def write_verse2020_case(
    root: Path,
    patient: str,
    prefix: str,
    *,
    mask: np.ndarray,
    affine: np.ndarray,
    direction: Sequence[str] = ("P", "I", "R"),
    drop_centroids: Sequence[int] = (),
) -> dict[str, Path]:
    """Write ``rawdata/<patient>/<prefix>_ct.nii.gz`` and its derivatives (mask, centroid JSON)."""
    ct = save_nifti(root / "rawdata" / patient / f"{prefix}_ct.nii.gz", _ct(mask.shape), affine)
    deriv = root / "derivatives" / patient
    msk = save_nifti(deriv / f"{prefix}_seg-vert_msk.nii.gz", mask, affine)
    entries = [e for e in verse_centroid_entries(mask, affine, direction) if e.get("label") not in drop_centroids]
    # subregion centroids (labels > 40) share the file and must be ignored
    entries.append({"label": 41, "X": 1.0, "Y": 2.0, "Z": 3.0})
    ctd = deriv / f"{prefix}_seg-subreg_ctd.json"
    ctd.write_text(json.dumps(entries))
    return {"ct": ct, "mask": msk, "centroids": ctd}


def write_verse2019_case(
    root: Path, case_id: str, *, mask: np.ndarray, affine: np.ndarray, direction: Sequence[str] = ("P", "I", "R")
) -> dict[str, Path]:
    """Write the flat VerSe 2019 files ``<case>.nii.gz``, ``<case>_seg.nii.gz``, ``<case>_ctd.json``."""
    ct = save_nifti(root / f"{case_id}.nii.gz", _ct(mask.shape), affine)
    msk = save_nifti(root / f"{case_id}_seg.nii.gz", mask, affine)
    ctd = root / f"{case_id}_ctd.json"
    ctd.write_text(json.dumps(verse_centroid_entries(mask, affine, direction)))
    return {"ct": ct, "mask": msk, "centroids": ctd}
