"""Surface meshes as Encapsulated STL objects (SOP Class 1.2.840.10008.5.1.4.1.1.104.3).

The mesh files the reconstruction writes (``meshes/<name>.stl``) are in LPS millimetres and say so
(``SPACE=LPS``, :mod:`transvert_monai.outputs.meshes`; a file that declares no space is RAS); the STL
encapsulated here is the same mesh in the DICOM patient coordinates (LPS: x and y of RAS negated, a
rotation by 180° about the superior axis, so the faces keep their outward winding) of the
reconstruction's Frame of Reference, binary STL, units UCUM ``mm`` (Manufacturing 3D Model module).

Modules written (PS3.3 A.85.1): Patient, General Study, Encapsulated Document Series (Modality
M3D), Frame of Reference, Enhanced General Equipment, Manufacturing 3D Model, Encapsulated Document
(with the source radiographs in SourceInstanceSequence), Common Instance Reference (the
sources by series) and SOP Common.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transvert_monai.outputs.meshes import load_mesh_ras, mesh_bytes

__all__ = ["ENCAPSULATED_STL_SOP_CLASS", "lps_stl_bytes", "stl_dataset"]

#: SOP Class UID of Encapsulated STL Storage.
ENCAPSULATED_STL_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.104.3"
_PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)


def lps_stl_bytes(mesh_path: str | os.PathLike) -> tuple[bytes, int]:
    """A mesh file (STL/PLY/OBJ in its declared space, see ``load_mesh_ras``) as binary STL bytes in LPS, and its
    vertex count.

    Raises:
        ImportError: trimesh is not installed.
        ValueError: the file holds no triangles.
    """
    mesh = load_mesh_ras(mesh_path)  # RAS whatever the file declares, so it is flipped exactly once below
    if len(mesh.faces) == 0:
        raise ValueError(f"mesh file {mesh_path} holds no triangles.")
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS → LPS, a proper rotation: winding and normals stay outward
    mesh.apply_transform(flip)
    return mesh_bytes(mesh, "stl", "LPS"), int(len(mesh.vertices))  # SPACE=LPS in the STL header


def _code(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def stl_dataset(
    stl: bytes,
    reference: Any,
    sources: Sequence[Any],
    *,
    title: str,
    frame_of_reference_uid: str,
    series_uid: str,
    series_number: int,
    instance_number: int,
    manufacturer: str,
    provenance: Mapping[str, str],
    sop_uid: str | None = None,
) -> Any:
    """An Encapsulated STL dataset (with file meta) in the study of ``reference``.

    Args:
        stl: binary STL bytes (LPS mm, see :func:`lps_stl_bytes`).
        reference: a source dataset whose patient and study attributes are copied.
        sources: the source radiographs, listed in SourceInstanceSequence.
        title: DocumentTitle, e.g. ``"TransVert mesh T1"``.
        frame_of_reference_uid: the reconstruction's Frame of Reference.
        series_uid, series_number, instance_number: the object's series and number.
        manufacturer: Manufacturer.
        provenance: ``model_name``, ``model_version``, ``software_version``, ``weights_sha256``.
        sop_uid: SOPInstanceUID (generated when None).
    """
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    sop_uid = sop_uid or generate_uid()
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ENCAPSULATED_STL_SOP_CLASS, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = ENCAPSULATED_STL_SOP_CLASS, sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    for keyword in _PATIENT_STUDY_KEYWORDS:  # Patient, General Study: the source study's
        if keyword in reference:
            setattr(ds, keyword, reference.data_element(keyword).value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    for keyword in ("ReferringPhysicianName", "StudyID", "AccessionNumber"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    # Encapsulated Document Series
    ds.Modality = "M3D"
    ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, int(series_number)
    ds.SeriesDescription = "TransVert 3D spine meshes (LPS)"
    ds.SeriesDate, ds.SeriesTime = date, time
    # Frame of Reference
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # Enhanced General Equipment
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = f"{provenance['model_name']} {provenance['model_version']}"[:64]
    ds.DeviceSerialNumber = provenance.get("weights_sha256", "")[:16] or "unknown"
    ds.SoftwareVersions = provenance["software_version"][:64]
    # Manufacturing 3D Model
    ds.MeasurementUnitsCodeSequence = [_code("mm", "UCUM", "millimeter")]
    # Encapsulated Document
    ds.InstanceNumber = int(instance_number)
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "NO"
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    source_items = []
    for source in sources:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
        source_items.append(item)
    ds.SourceInstanceSequence = source_items
    # Common Instance Reference: the sources by series (all in this study)
    series: dict[str, list[Any]] = {}
    for source in sources:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
        series.setdefault(str(source.SeriesInstanceUID), []).append(item)
    referenced = []
    for uid, items in series.items():
        entry = Dataset()
        entry.SeriesInstanceUID, entry.ReferencedInstanceSequence = uid, items
        referenced.append(entry)
    ds.ReferencedSeriesSequence = referenced
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    data = stl + b"\0" if len(stl) % 2 else stl
    ds.EncapsulatedDocument = data
    ds.EncapsulatedDocumentLength = len(stl)
    return ds
