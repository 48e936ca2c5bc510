"""Loading the CT and label volumes of a case with nibabel, and checking that they share one grid.

World coordinates are RAS millimetres through the NIfTI affine (nibabel's ``img.affine``: the sform
when set, else the qform), which is also what MONAI's ``LoadImage`` reports as ``MetaTensor.affine``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from transvert_monai.geometry import as_affine

__all__ = ["load_volume", "check_same_grid"]

logger = logging.getLogger(__name__)


def load_volume(path: str | os.PathLike, *, role: str = "image") -> nib.spatialimages.SpatialImage:
    """Load a 3D NIfTI volume lazily (the voxels are read on first access) and check its geometry.

    A 4D image whose trailing dimensions are all 1 is squeezed to 3D.

    Args:
        path: NIfTI file (``.nii`` / ``.nii.gz``).
        role: what the volume is ("CT", "mask", …), used in error messages.

    Returns:
        The nibabel image.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if nibabel cannot read it, it is not 3D, it has no orientation (qform and sform
            codes both 0) or its affine is singular or non-finite.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{role} file {path} does not exist.")
    try:
        loaded = nib.load(str(path))
    except (ImageFileError, OSError, EOFError) as err:
        raise ValueError(f"Cannot read the {role} file {path} with nibabel ({err}); is it a NIfTI file?") from None
    if not isinstance(loaded, nib.spatialimages.SpatialImage):
        raise ValueError(f"The {role} file {path} is not a spatial image ({type(loaded).__name__}).")
    img = loaded
    if len(img.shape) > 3 and all(s == 1 for s in img.shape[3:]):
        img = nib.funcs.squeeze_image(img)
    if len(img.shape) != 3:
        raise ValueError(
            f"The {role} file {path} must be a 3D volume, got shape {img.shape}; "
            "a 2D image or a time series cannot be a CT or a vertebra mask."
        )
    header = img.header
    if isinstance(header, nib.Nifti1Header) and int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise ValueError(
            f"The {role} file {path} has no affine (NIfTI qform_code and sform_code are both 0), so its voxels "
            "have no position or orientation; re-export it with a valid header (e.g. dcm2niix from the DICOM)."
        )
    as_affine(img.affine, name=f"affine of the {role} file {path}")
    return img


def check_same_grid(
    ct: nib.spatialimages.SpatialImage,
    mask: nib.spatialimages.SpatialImage,
    *,
    ct_path: str | os.PathLike = "CT",
    mask_path: str | os.PathLike = "mask",
    atol_mm: float = 1e-2,
) -> None:
    """Check that a mask lies on the CT's voxel grid (same shape, same affine within ``atol_mm``).

    Raises:
        ValueError: if the shapes or the affines differ.
    """
    if tuple(ct.shape) != tuple(mask.shape):
        raise ValueError(
            f"Shape mismatch: CT {ct_path} has shape {tuple(ct.shape)} but mask {mask_path} has "
            f"{tuple(mask.shape)}; resample the mask onto the CT grid (e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    diff = float(np.abs(np.asarray(ct.affine) - np.asarray(mask.affine)).max())
    if diff > atol_mm:
        raise ValueError(
            f"Affine mismatch ({diff:.3g} mm): CT {ct_path} and mask {mask_path} have the same shape but different "
            "voxel → world maps; resample the mask onto the CT grid (e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    if diff > 0:
        logger.debug("Affines of %s and %s differ by %.3g mm; using the CT affine.", ct_path, mask_path, diff)
