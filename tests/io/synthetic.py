"""Synthetic radiograph files for the reader tests: DICOM (pydicom), PNG with a side-car, NIfTI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def write_dicom(path: Path, pixels: np.ndarray, **tags) -> Path:
    """A little-endian uncompressed DICOM file of ``pixels`` (uint16) with the given tags (Modality DX by default)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DX_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientID = "P001"
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    array = np.asarray(pixels, dtype=np.uint16)
    ds.Rows, ds.Columns = array.shape[-2:]
    for key, value in tags.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.PixelData = array.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def write_png(path: Path, pixels: np.ndarray, sidecar: dict | None = None) -> Path:
    """A 16-bit greyscale PNG, with ``sidecar`` written next to it as ``<stem>.json``."""
    from PIL import Image

    Image.fromarray(np.asarray(pixels, dtype=np.uint16)).save(path)
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def write_nifti(path: Path, pixels: np.ndarray) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.asarray(pixels, dtype=np.float32), np.eye(4)), str(path))
    return path


def gradient_image(shape=(500, 400)) -> np.ndarray:
    """An image whose every pixel differs (rows ×100 + cols), to see flips and inversions."""
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (r * 100 + c + 10).astype(np.uint16)
