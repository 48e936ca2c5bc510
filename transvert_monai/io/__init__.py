"""Readers of deployment inputs: radiographs (DICOM, PNG/TIFF, NIfTI with a geometry side-car) and 2D centroids."""

from __future__ import annotations

from transvert_monai.io.centroids2d import Centroids2D, parse_centroids_2d, read_centroids_2d
from transvert_monai.io.formats import RADIOGRAPHIC_MODALITIES, read_sidecar
from transvert_monai.io.radiograph import (
    DEFAULT_WORKING_SPACING_MM,
    Radiograph,
    check_pair,
    read_radiograph,
    resample_area,
)

__all__ = [
    "DEFAULT_WORKING_SPACING_MM",
    "RADIOGRAPHIC_MODALITIES",
    "Centroids2D",
    "Radiograph",
    "check_pair",
    "parse_centroids_2d",
    "read_centroids_2d",
    "read_radiograph",
    "read_sidecar",
    "resample_area",
]
