"""Small synthetic DX radiographs and studies for the DICOM tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")

GEOMETRY = {"pixel_spacing_mm": (0.6, 0.5), "source_to_detector_mm": 1800.0, "source_to_patient_mm": 1500.0}


def phantom_image(rows: int = 128, cols: int = 128) -> np.ndarray:
    """A float image with a gradient and a bright block (higher = more attenuation)."""
    r, c = np.mgrid[0:rows, 0:cols]
    image = 0.5 + 0.02 * r + 0.01 * c
    image[30:90, 40:70] += 3.0
    return image.astype(np.float32)


def write_view(
    folder: Path, name: str, view: str, *, study_uid: str, patient_id: str = "P1", edit=None, **kwargs
) -> Path:
    """Write one DX into ``folder/name``; ``edit(ds)`` may change the dataset before saving."""
    from transvert_monai.dicom import dx_dataset

    options = {**GEOMETRY, "patient_name": "Doe^Jane", **kwargs}
    ds = dx_dataset(phantom_image(), view=view, patient_id=patient_id, study_uid=study_uid, **options)
    if edit is not None:
        edit(ds)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def write_pair(folder: Path, study_uid: str, **kwargs) -> tuple[Path, Path]:
    """A lateral and an AP DX of one study in ``folder``."""
    return (
        write_view(folder, "lat.dcm", "lateral", study_uid=study_uid, series_number=1, **kwargs),
        write_view(folder, "ap.dcm", "ap", study_uid=study_uid, series_number=2, **kwargs),
    )


def dciodvfy_errors(path: Path) -> list[str]:
    """The lines of dciodvfy's report on ``path`` that start with "Error"."""
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


requires_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None,
    reason="dciodvfy (Debian package dicom3tools: apt-get install dicom3tools) is not installed",
)
