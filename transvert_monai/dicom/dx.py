"""Writing DX radiographs (Digital X-Ray Image Storage – For Presentation) and example studies.

A written file carries everything :func:`transvert_monai.io.read_radiograph` and
:func:`transvert_monai.dicom.find_studies` read: ImagerPixelSpacing (0018,1164),
DistanceSourceToDetector (0018,1110), DistanceSourceToPatient (0018,1111),
EstimatedRadiographicMagnificationFactor (0018,1114), ViewPosition (0018,5101) with its
ViewCodeSequence (0054,0220), and the PatientOrientation (0020,0020) the geometry expects
(lateral: columns towards A, rows towards F; AP: columns towards L, rows towards F; see
:mod:`transvert_monai.io.formats`). The lateral view is a left lateral (LL): rays run right → left,
the patient's left side at the detector.

Pixels are unsigned 16-bit words. A floating-point image is scaled linearly to the full range of
``bits_stored`` (the DX IOD fixes RescaleSlope 1 and RescaleIntercept 0, so the scale is not kept:
the network z-scores its patches, so it does not need it); an integer image within that range is
stored as is. MONOCHROME2 is stored with PresentationLUTShape IDENTITY, MONOCHROME1 (the inverted
values) with INVERSE, as the DX Image module requires.
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transvert_monai.errors import TransVertInputError

__all__ = ["DX_FOR_PRESENTATION_SOP_CLASS", "dx_dataset", "write_dx", "write_example_study"]

#: SOP Class UID of Digital X-Ray Image Storage – For Presentation.
DX_FOR_PRESENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"
_IMPLEMENTATION_VERSION = "TRANSVERT_MONAI"
# view: (ViewPosition, PatientOrientation (columns, rows), SNOMED view code (value, meaning))
_VIEWS = {
    "lateral": ("LL", ("A", "F"), ("399173006", "left lateral")),
    "ap": ("AP", ("L", "F"), ("399348003", "antero-posterior")),
}


def _code_item(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _stored_values(image: np.ndarray, bits_stored: int) -> np.ndarray:
    """``image`` as uint16 within [0, 2**bits_stored − 1] (floats scaled to the full range)."""
    top = 2**bits_stored - 1
    array = np.asarray(image)
    if array.ndim != 2 or min(array.shape) < 1:
        raise TransVertInputError(f"a DX image must be one 2D array (H, W), got shape {array.shape}.")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        if array.min() < 0 or array.max() > top:
            raise TransVertInputError(
                f"integer pixels must lie in [0, {top}] for {bits_stored} bits stored, got "
                f"[{array.min()}, {array.max()}]; pass a float image to have it scaled."
            )
        return array.astype(np.uint16)
    if not np.all(np.isfinite(array)):
        raise TransVertInputError("the DX image has NaN/Inf pixels; only finite values can be stored.")
    lo, hi = float(array.min()), float(array.max())
    scaled = np.zeros(array.shape) if hi == lo else (array - lo) / (hi - lo) * top
    return np.rint(scaled).astype(np.uint16)


def _positive(value: float, name: str) -> float:
    out = float(value)
    if not np.isfinite(out) or out <= 0:
        raise TransVertInputError(f"`{name}` must be a positive number of mm, got {value!r}.")
    return out


def dx_dataset(
    image: np.ndarray,
    *,
    view: str,
    pixel_spacing_mm: float | Sequence[float],
    source_to_detector_mm: float,
    source_to_patient_mm: float,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    series_number: int = 1,
    instance_number: int = 1,
    photometric_interpretation: str = "MONOCHROME2",
    bits_stored: int = 16,
    series_description: str | None = None,
    manufacturer: str = "transvert_monai",
    acquisition_datetime: datetime.datetime | None = None,
) -> Any:
    """A DX For Presentation dataset (with file meta) of one radiograph; see the module docstring.

    Args:
        image: (H, W) pixels, rows superior → inferior, higher = more attenuation.
        view: ``"lateral"`` or ``"ap"``.
        pixel_spacing_mm: detector pixel spacing, one number or (row, col).
        source_to_detector_mm, source_to_patient_mm: the acquisition distances (mm).
        patient_id, patient_name: PatientID and PatientName.
        study_uid: StudyInstanceUID; ``series_uid`` / ``sop_uid`` are generated when None.
        series_number, instance_number: SeriesNumber and InstanceNumber.
        photometric_interpretation: ``"MONOCHROME2"`` (stored as given, IDENTITY) or ``"MONOCHROME1"``
            (stored inverted, INVERSE).
        bits_stored: 8 to 16.
        series_description: SeriesDescription (default ``"<view> spine"``).
        manufacturer: Manufacturer (0008,0070).
        acquisition_datetime: study, series and content date/time (default now).

    Returns:
        :class:`pydicom.dataset.FileDataset`; save it with ``ds.save_as(path, enforce_file_format=True)``.

    Raises:
        TransVertInputError: an unknown view or photometric interpretation, bad spacing or distances,
            a non-2D or non-finite image.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    if view not in _VIEWS:
        raise TransVertInputError(f"`view` must be 'lateral' or 'ap', got {view!r}.")
    photometric = str(photometric_interpretation).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise TransVertInputError(
            f"`photometric_interpretation` must be 'MONOCHROME1' or 'MONOCHROME2', got {photometric_interpretation!r}."
        )
    if not 8 <= int(bits_stored) <= 16:
        raise TransVertInputError(f"`bits_stored` must be 8 to 16, got {bits_stored!r}.")
    scalar = np.ndim(pixel_spacing_mm) == 0
    spacing = [pixel_spacing_mm] * 2 if scalar else list(pixel_spacing_mm)  # type: ignore[arg-type]
    if len(spacing) != 2:
        raise TransVertInputError(f"`pixel_spacing_mm` must be one number or (row, col) mm, got {pixel_spacing_mm!r}.")
    spacing = [_positive(s, "pixel_spacing_mm") for s in spacing]
    sdd = _positive(source_to_detector_mm, "source_to_detector_mm")
    sid = _positive(source_to_patient_mm, "source_to_patient_mm")
    if sid >= sdd:
        raise TransVertInputError(
            f"`source_to_patient_mm` ({sid}) must be shorter than `source_to_detector_mm` ({sdd})."
        )
    top = 2 ** int(bits_stored) - 1
    stored = _stored_values(image, int(bits_stored))
    if photometric == "MONOCHROME1":
        stored = (top - stored.astype(np.int64)).astype(np.uint16)
    when = acquisition_datetime or datetime.datetime.now()
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    sop_uid = sop_uid or generate_uid()
    view_position, orientation, (view_code, view_meaning) = _VIEWS[view]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = DX_FOR_PRESENTATION_SOP_CLASS, sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    # Patient
    ds.PatientName, ds.PatientID = patient_name, patient_id
    ds.PatientBirthDate, ds.PatientSex = "", ""
    # General Study
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study_uid, date, time
    ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "1", ""
    ds.StudyDescription = "standing spine, lateral and AP"
    # General Series + DX Series
    ds.Modality = "DX"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber, ds.SeriesDate, ds.SeriesTime = int(series_number), date, time
    ds.SeriesDescription = series_description or f"{view} spine"
    ds.PresentationIntentType = "FOR PRESENTATION"
    # General Equipment
    ds.Manufacturer = manufacturer
    # General Acquisition + General Image
    ds.AcquisitionDate, ds.AcquisitionTime = date, time
    ds.InstanceNumber, ds.ContentDate, ds.ContentTime = int(instance_number), date, time
    ds.PatientOrientation = list(orientation)
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    # DX Anatomy Imaged
    ds.ImageLaterality = "U"
    ds.AnatomicRegionSequence = [_code_item("421060004", "SCT", "Spine")]
    ds.BodyPartExamined = "SPINE"
    # Image Pixel + DX Image
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, int(bits_stored), int(bits_stored) - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1 if photometric == "MONOCHROME2" else 1  # -1: higher = less X-ray intensity
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PresentationLUTShape = "IDENTITY" if photometric == "MONOCHROME2" else "INVERSE"
    # VOI LUT: a window over the stored range
    lo, hi = int(stored.min()), int(stored.max())
    ds.WindowCenter, ds.WindowWidth = (lo + hi) / 2, max(hi - lo + 1, 2)
    # DX Detector
    ds.DetectorType = "DIRECT"
    ds.ImagerPixelSpacing = spacing
    # DX Positioning
    ds.ViewPosition = view_position
    ds.ViewCodeSequence = [_code_item(view_code, "SCT", view_meaning)]
    ds.DistanceSourceToDetector = sdd
    ds.DistanceSourceToPatient = sid
    ds.EstimatedRadiographicMagnificationFactor = sdd / sid
    ds.PositionerType = "NONE"
    # Acquisition Context
    ds.AcquisitionContextSequence = []
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    return ds


def write_dx(image: np.ndarray, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write one radiograph as a DX For Presentation file; the arguments are those of :func:`dx_dataset`.

    Example:
        >>> write_dx(drr, "study/lat.dcm", view="lateral", pixel_spacing_mm=0.6, source_to_detector_mm=1800,
        ...          source_to_patient_mm=1500, patient_id="P1", patient_name="Doe^Jane", study_uid=uid)

    Returns:
        the path written (parent folders are created).
    """
    path = Path(path)
    ds = dx_dataset(image, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def write_example_study(
    folder: str | os.PathLike,
    radiographs_dir: str | os.PathLike,
    *,
    patient_name: str = "Example^TransVert",
    study_uid: str | None = None,
) -> Any:
    """Turn a lateral + AP pair of NIfTI radiographs with side-cars into a DICOM study folder.

    ``radiographs_dir`` holds ``lateral.nii.gz`` and ``ap.nii.gz`` (with their ``.json`` side-cars)
    and ``centroids.json``, as ``transvert-example`` writes them under ``outputs/example/radiographs``.
    ``folder`` receives ``lateral.dcm``, ``ap.dcm`` (one series each, one study) and a copy of
    ``centroids.json`` (file pixels are the same in both formats).

    Returns:
        the :class:`transvert_monai.dicom.Study` found in ``folder``.

    Raises:
        FileNotFoundError: a missing radiograph or centroid file.
        FileExistsError: ``folder`` exists and is not empty.
    """
    from pydicom.uid import generate_uid

    from transvert_monai.dicom.study import find_study
    from transvert_monai.io import read_radiograph

    source, folder = Path(radiographs_dir), Path(folder)
    for name in ("lateral.nii.gz", "ap.nii.gz", "centroids.json"):
        if not (source / name).is_file():
            raise FileNotFoundError(
                f"{source / name} does not exist; {source} must hold lateral.nii.gz, ap.nii.gz (with their .json "
                "side-cars) and centroids.json, as `transvert-example` writes them under outputs/example/radiographs."
            )
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"study folder {folder} is not empty; choose another folder.")
    study_uid = study_uid or generate_uid()
    when = datetime.datetime.now()
    for number, view in enumerate(("lateral", "ap"), start=1):
        radiograph = read_radiograph(source / f"{view}.nii.gz", view)
        write_dx(
            radiograph.pixels.numpy(),
            folder / f"{view}.dcm",
            view=view,
            pixel_spacing_mm=radiograph.pixel_spacing_mm,
            source_to_detector_mm=radiograph.source_to_detector_mm,
            source_to_patient_mm=radiograph.source_to_patient_mm,
            patient_id=radiograph.patient_id or "example",
            patient_name=patient_name,
            study_uid=study_uid,
            series_number=number,
            acquisition_datetime=when,
        )
    shutil.copyfile(source / "centroids.json", folder / "centroids.json")
    return find_study(folder)
