"""The pixels of a DICOM radiograph as TransVert reads them: float32, higher = more attenuation.

The grey-scale pipeline of DICOM PS3.4 (modality LUT, optional VOI LUT, presentation LUT) is applied
with pydicom's own functions (:func:`pydicom.pixels.apply_modality_lut`,
:func:`~pydicom.pixels.apply_voi_lut`, :func:`~pydicom.pixels.apply_presentation_lut`), so that the
result is in *P-values*: higher is displayed brighter, and in a radiograph brighter is more
attenuation (bone bright), the convention of :class:`transvert_monai.io.Radiograph` and of the DRRs
the network was trained on.

An image is inverted **once** when its PhotometricInterpretation is MONOCHROME1 or its
PresentationLUTShape (2050,0020) is INVERSE: the DX and MG IODs pair MONOCHROME1 with INVERSE, both
saying "low values are bright", so the pair means one inversion, not two. The inversion is
pydicom's INVERSE presentation LUT (``max − value`` over the image) shifted by the image's minimum,
so that the inverted image keeps its range (``max + min − value``, as ``transvert_monai.io`` has
always inverted MONOCHROME1: a MONOCHROME1 file of the same picture reads equal to the MONOCHROME2
one). A PresentationLUTSequence is
applied as pydicom applies it (rescaled to the LUT's input range) and its output taken as P-values.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from transvert_monai.errors import TransVertInputError, UnreadableFileError

__all__ = ["dicom_pixels"]

logger = logging.getLogger(__name__)

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


def _where(ds: Any) -> str:
    name = getattr(ds, "filename", None)
    return f"DICOM file {name}" if isinstance(name, str) and name else "the DICOM dataset"


def dicom_pixels(ds: Any, *, apply_voi: bool = False) -> np.ndarray:
    """The radiograph in ``ds`` as a float32 (H, W) array of P-values: higher = more attenuation.

    Steps: decode ``ds.pixel_array``; apply the modality LUT (RescaleSlope/Intercept or
    ModalityLUTSequence); with ``apply_voi``, the first VOI LUT or window; then the presentation LUT:
    the PresentationLUTSequence if present, else one inversion when the image is MONOCHROME1 or its
    PresentationLUTShape is INVERSE (see the module docstring).

    The VOI LUT is off by default: a window clips what lies outside it, and the network was trained
    on unclipped projections; the result is then what ``transvert_monai.io`` has always read
    (modality LUT, MONOCHROME1 inverted within the image's range).

    Args:
        ds: a :class:`pydicom.dataset.Dataset` with pixel data (not read with ``stop_before_pixels``).
        apply_voi: apply the dataset's VOI LUT / window (WindowCenter/WindowWidth) too.

    Returns:
        (H, W) float32 numpy array.

    Raises:
        UnreadableFileError: no pixel data, or pixel data that cannot be decoded (truncated, no decoder).
        TransVertInputError: several frames or samples per pixel, not 2D, not MONOCHROME1/2.
    """
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_modality_lut, apply_presentation_lut, apply_voi_lut

    where = _where(ds)
    if "PixelData" not in ds:
        raise UnreadableFileError(
            f"{where} holds no pixel data (7FE0,0010): it is truncated, or it is not an image "
            "(a report or presentation state); use the complete lateral and AP X-ray image files."
        )
    frames, samples = int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("SamplesPerPixel", 1) or 1)
    if frames > 1 or samples != 1:
        raise TransVertInputError(
            f"{where} holds {frames} frames of {samples} samples per pixel; a radiograph is one greyscale 2D image."
        )
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in _MONOCHROME:
        raise TransVertInputError(
            f"{where} has PhotometricInterpretation {photometric!r}; a greyscale MONOCHROME1/2 image is expected."
        )
    try:
        stored = ds.pixel_array
    except Exception as err:  # truncated pixel data, missing decoders, ... (pydicom raises many types)
        raise UnreadableFileError(
            f"cannot decode the pixels of {where}: {err}. The file may be truncated; if it is compressed, "
            "install a decoder (pip install pylibjpeg pylibjpeg-libjpeg) or decompress it (dcmdjpeg)."
        ) from None
    if stored.ndim != 2:
        raise TransVertInputError(
            f"{where} holds an image of shape {stored.shape}; a radiograph is one 2D image (3D files are not read)."
        )
    values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    if apply_voi:
        values = np.asarray(apply_voi_lut(values, ds), dtype=np.float64)
    if "PresentationLUTSequence" in ds:  # P-values straight from the LUT
        return np.asarray(apply_presentation_lut(values, ds), dtype=np.float32)
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    if photometric == "MONOCHROME1" and shape == "IDENTITY":
        logger.warning(
            "%s is MONOCHROME1 with PresentationLUTShape IDENTITY, which contradict each other; "
            "following MONOCHROME1 (low values bright).",
            where,
        )
    if photometric != "MONOCHROME1" and shape != "INVERSE":
        return values.astype(np.float32)
    presentation = Dataset()
    presentation.PresentationLUTShape = "INVERSE"
    # pydicom's INVERSE gives max − value, in [0, max − min]: shift by min so the image keeps its range
    return np.asarray(apply_presentation_lut(values, presentation) + values.min(), dtype=np.float32)
