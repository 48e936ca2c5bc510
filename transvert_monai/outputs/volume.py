"""The spine label map as handed to the output writers, and its NIfTI file.

A label map is (X, Y, Z) (or channel-first (1, X, Y, Z)) with VerSe indices (0 background) and a
4×4 voxel → world (RAS mm) affine, given explicitly or as the MetaTensor's ``affine``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from transvert_monai.data.atomic import save_nifti_atomic
from transvert_monai.data.labels import is_vertebra_label
from transvert_monai.geometry import as_affine

__all__ = ["as_label_volume", "write_label_volume_nifti"]


def as_label_volume(label_volume: object, affine: object = None) -> tuple[np.ndarray, np.ndarray]:
    """Check a label map and return it as (X, Y, Z) uint8 numpy with a float64 (4, 4) numpy affine.

    Args:
        label_volume: (X, Y, Z) or (1, X, Y, Z) array or tensor of VerSe indices (a MetaTensor carries its affine).
        affine: 4×4 voxel → world map; default the MetaTensor's ``affine``.

    Raises:
        TypeError: no affine given and none carried.
        ValueError: not 3D, non-integer values, values that are not VerSe indices, a bad affine.
    """
    if affine is None:
        affine = getattr(label_volume, "affine", None)
        if affine is None:
            raise TypeError(
                "the label map has no affine; pass `affine` (4×4 voxel → world mm) or a MetaTensor "
                "(e.g. the output of StackVertebrae)."
            )
    aff = as_affine(affine, name="label map affine").numpy()
    data = label_volume.detach().cpu().numpy() if isinstance(label_volume, torch.Tensor) else np.asarray(label_volume)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise ValueError(f"the label map must be 3D (X, Y, Z) or (1, X, Y, Z), got shape {data.shape}.")
    if data.dtype == np.uint8:  # the stacked map's own type: a histogram finds the values in one pass
        values = [int(v) for v in np.flatnonzero(np.bincount(data.reshape(-1), minlength=256)) if v]
    else:
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise ValueError("the label map must hold whole-number VerSe indices (0 for background).")
        values = [int(v) for v in np.unique(data) if v != 0]
    bad = [v for v in values if not is_vertebra_label(v)]
    if bad:
        raise ValueError(f"the label map holds values {bad} that are not VerSe vertebra indices (1–25, 28).")
    return data.astype(np.uint8, copy=False), aff


def write_label_volume_nifti(label_volume: object, affine: object, path: str | os.PathLike) -> Path:
    """Write the spine label map as a uint8 NIfTI (``.nii`` or ``.nii.gz``) with its affine (qform and sform), atomically.

    Raises:
        TypeError, ValueError: see :func:`as_label_volume`; a path that is not ``.nii``/``.nii.gz``.
    """
    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise ValueError(f"the label map goes to a NIfTI file (.nii or .nii.gz), got {path}.")
    data, aff = as_label_volume(label_volume, affine)
    image = nib.Nifti1Image(data, aff)
    image.header.set_xyzt_units("mm")
    image.set_qform(aff, code=1)
    image.set_sform(aff, code=1)
    return save_nifti_atomic(image, path)
