"""The overlay pictures (PNG) as Secondary Capture images (highdicom :class:`~highdicom.sc.SCImage`).

Each overlay is an RGB picture of one radiograph (resampled to the working spacing) with the
reconstructed spine projected on it; it is stored as an 8-bit RGB SC image in the source study, in
the patient coordinate system with the source radiograph's PatientOrientation, referencing it in
SourceImageSequence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["png_rgb", "overlay_sc_image"]


def png_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of a picture file (alpha dropped, greyscale repeated)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def overlay_sc_image(
    rgb: np.ndarray,
    source: Any,
    *,
    view: str,
    series_uid: str,
    series_number: int,
    instance_number: int,
    manufacturer: str,
    provenance: Mapping[str, str],
    sop_uid: str | None = None,
) -> Any:
    """An SC image of ``rgb`` (H, W, 3 uint8) in the study of ``source`` (the overlaid radiograph).

    Returns:
        :class:`highdicom.sc.SCImage`.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    orientation = source.get("PatientOrientation", None)
    if not orientation or len(orientation) != 2:
        orientation = ("A", "F") if view == "lateral" else ("L", "F")
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid or generate_uid(),
        instance_number=instance_number,
        manufacturer=manufacturer,
        patient_orientation=tuple(str(v) for v in orientation),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description="TransVert overlays",
        manufacturer_model_name=f"{provenance['model_name']} {provenance['model_version']}"[:64],
        software_versions=provenance["software_version"][:64],
    )
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    image.SourceImageSequence = [item]
    image.BodyPartExamined = "SPINE"  # unpaired: no Laterality (General Series, type 2C)
    image.ImageType = ["DERIVED", "SECONDARY"]
    image.DerivationDescription = f"TransVert 3D spine projected on the {view} radiograph"
    image.BurnedInAnnotation = "NO"  # vertebra marks only, nothing that identifies the patient
    return image
