"""Loading the CT and label volumes of a case with nibabel, and checking that they share one grid.

World coordinates are RAS millimetres through the NIfTI affine (nibabel's ``img.affine``: the sform
when set, else the qform), which is also what MONAI's ``LoadImage`` reports as ``MetaTensor.affine``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy
from nibabel.openers import ImageOpener

from transvert_monai.errors import TransVertInputError, UnreadableFileError
from transvert_monai.geometry import as_affine

__all__ = ["load_volume", "check_same_grid", "check_voxel_data"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 24  # voxel bytes read at a time by check_voxel_data


def check_voxel_data(img: nib.spatialimages.SpatialImage, *, role: str = "image") -> None:
    """Check that an image file holds all the voxel bytes its header promises, and that float voxels are finite.

    The bytes are streamed in chunks of 16 MiB (decompressed for ``.nii.gz``) without building the
    array, so a truncated or damaged file fails here, before anything is written, instead of deep in
    nibabel (``EOFError``) or not at all (a CT that is only copied). Images whose voxels nibabel
    does not read through an array proxy (already in memory) are not checked.

    Args:
        img: the image as loaded by nibabel (its array proxy gives the file, shape, type and data offset).
        role: what the volume is ("CT", "mask", …), used in error messages.

    Raises:
        UnreadableFileError: the voxel data is cut short or cannot be decompressed.
        TransVertInputError: NaN or infinite voxel values.
    """
    proxy = img.dataobj
    if not isinstance(proxy, ArrayProxy) or not isinstance(proxy.file_like, (str, os.PathLike)):
        return  # already in memory, or a format nibabel does not read through an array proxy
    image_file = os.fspath(proxy.file_like)
    dtype = np.dtype(proxy.dtype)
    shape = tuple(int(s) for s in proxy.shape)
    if any(s < 0 for s in shape):
        raise UnreadableFileError(f"The {role} file {image_file} has a damaged header: it gives the shape {shape}.")
    expected = math.prod(shape) * dtype.itemsize
    offset = int(proxy.offset)
    check_values = dtype.kind in "fc"
    compressed = os.path.splitext(image_file)[1].lower() in ImageOpener.compress_ext_map
    got, bad, carry = 0, 0, b""
    try:
        if not (compressed or check_values):  # a plain file of integers: its size says enough
            got = min(max(os.path.getsize(image_file) - offset, 0), expected)
        else:
            with ImageOpener(image_file, "rb") as f:
                f.seek(offset)
                while got < expected:
                    chunk = f.read(min(_CHUNK_BYTES, expected - got))
                    if not chunk:
                        break
                    got += len(chunk)
                    if check_values:
                        buf = carry + chunk
                        usable = len(buf) - len(buf) % dtype.itemsize
                        values = np.frombuffer(buf, dtype=dtype, count=usable // dtype.itemsize)
                        bad += int(np.count_nonzero(~np.isfinite(values)))
                        carry = buf[usable:]
    except EOFError as err:
        raise UnreadableFileError(
            f"The {role} file {image_file} is truncated: its compressed voxel data ends early ({err}); "
            "download or export it again."
        ) from None
    except Exception as err:  # zlib.error, gzip.BadGzipFile, OSError, ...
        raise UnreadableFileError(
            f"The {role} file {image_file} is damaged: its voxel data cannot be read ({type(err).__name__}: {err}); "
            "download or export it again."
        ) from None
    if got < expected:
        raise UnreadableFileError(
            f"The {role} file {image_file} is truncated: its header promises {expected} bytes of voxel data "
            f"(shape {shape}, {dtype}), the file holds {got}; download or export it again."
        )
    if bad:
        hint = " (air is -1000 HU)" if "CT" in role else " (background is 0)" if "mask" in role else ""
        raise TransVertInputError(
            f"The {role} file {image_file} has {bad} NaN/Inf values; repair or re-export it with finite values "
            f"only{hint}."
        )


def load_volume(
    path: str | os.PathLike, *, role: str = "image", check_data: bool = True
) -> nib.spatialimages.SpatialImage:
    """Load a 3D NIfTI volume lazily (the voxels are read on first access) and check its geometry.

    A 4D image whose trailing dimensions are all 1 is squeezed to 3D.

    Args:
        path: NIfTI file (``.nii`` / ``.nii.gz``).
        role: what the volume is ("CT", "mask", …), used in error messages.
        check_data: also stream the voxel data once to check that it is complete and finite
            (:func:`check_voxel_data`; costs one decompression).

    Returns:
        The nibabel image.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFileError: if nibabel cannot read it, or (``check_data``) its voxel data is truncated or damaged.
        TransVertInputError: if it is not 3D, it has no orientation (qform and sform codes both 0), its
            affine is singular or non-finite, or (``check_data``) it has NaN/Inf voxels.
    """
    path = Path(path)
    from transvert_monai.io.paths import require_file

    require_file(path, f"{role} file")
    try:
        loaded = nib.load(str(path))
    except Exception as err:  # ImageFileError, OSError, EOFError, HeaderDataError, zlib errors, ...
        raise UnreadableFileError(
            f"Cannot read the {role} file {path} with nibabel ({err}); is it a complete NIfTI file?"
        ) from None
    if not isinstance(loaded, nib.spatialimages.SpatialImage):
        raise UnreadableFileError(f"The {role} file {path} is not a spatial image ({type(loaded).__name__}).")
    img = loaded
    if len(img.shape) > 3 and all(s == 1 for s in img.shape[3:]):
        img = nib.funcs.squeeze_image(img)
    if len(img.shape) != 3:
        raise TransVertInputError(
            f"The {role} file {path} must be a 3D volume, got shape {img.shape}; "
            "a 2D image or a time series cannot be a CT or a vertebra mask."
        )
    if min(img.shape) < 1:
        raise TransVertInputError(f"The {role} file {path} holds no voxels (shape {img.shape}).")
    header = img.header
    if isinstance(header, nib.Nifti1Header) and int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise TransVertInputError(
            f"The {role} file {path} has no affine (NIfTI qform_code and sform_code are both 0), so its voxels "
            "have no position or orientation; re-export it with a valid header (e.g. dcm2niix from the DICOM)."
        )
    try:
        as_affine(img.affine, name=f"affine of the {role} file {path}")
    except ValueError as err:
        raise TransVertInputError(str(err)) from None
    if check_data:
        check_voxel_data(loaded, role=role)
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
        raise TransVertInputError(
            f"Shape mismatch: CT {ct_path} has shape {tuple(ct.shape)} but mask {mask_path} has "
            f"{tuple(mask.shape)}; resample the mask onto the CT grid (e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    diff = float(np.abs(np.asarray(ct.affine) - np.asarray(mask.affine)).max())
    if diff > atol_mm:
        raise TransVertInputError(
            f"Affine mismatch ({diff:.3g} mm): CT {ct_path} and mask {mask_path} have the same shape but different "
            "voxel → world maps; resample the mask onto the CT grid (e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    if diff > 0:
        logger.debug("Affines of %s and %s differ by %.3g mm; using the CT affine.", ct_path, mask_path, diff)
