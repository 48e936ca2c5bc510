"""DICOM in and out: radiograph studies as input, the reconstruction as DICOM objects linked to them.

* :mod:`~transvert_monai.dicom.study`: :func:`find_studies` / :func:`find_study` select the lateral
  and AP radiograph of each study in a folder (PACS or DICOMweb export), with the study's
  ``centroids.json`` (see the rule there); :mod:`~transvert_monai.dicom.views`:
  :func:`radiograph_view`, the rules that tell a lateral from an AP image.
* :mod:`~transvert_monai.dicom.pixels`: :func:`dicom_pixels`, a radiograph's pixels through
  pydicom's modality, VOI and presentation LUTs (MONOCHROME1 and INVERSE honoured).
* :mod:`~transvert_monai.dicom.dx`: :func:`write_dx` (DX For Presentation files with their real
  geometry tags) and :func:`write_example_study` (the example NIfTI pair as a DICOM study).
* :mod:`~transvert_monai.dicom.results`: :func:`write_dicom_results`, the reconstruction as a
  Comprehensive 3D SR measurement report (TID 1500, :mod:`~transvert_monai.dicom.sr`), Encapsulated
  STL meshes (:mod:`~transvert_monai.dicom.stl`) and Secondary Capture overlays
  (:mod:`~transvert_monai.dicom.sc`) in the source study; :func:`read_vertebra_measurements` reads
  the report back.

Coordinates: the reconstruction works in RAS millimetres; DICOM patient coordinates are LPS, so the
SR's points and the STL meshes are written with x and y negated, in a new Frame of Reference (the
reconstruction's patient frame: origin at the views' isocentre), not the radiographs' own.

Needs pydicom (``transvert_monai[dicom]``); the results need highdicom too.
"""

from __future__ import annotations

from transvert_monai.dicom.dx import DX_FOR_PRESENTATION_SOP_CLASS, dx_dataset, write_dx, write_example_study
from transvert_monai.dicom.pixels import dicom_pixels
from transvert_monai.dicom.results import (
    ENCAPSULATED_STL_SOP_CLASS,
    provenance_from_summary,
    read_vertebra_measurements,
    ras_to_lps,
    write_dicom_results,
)
from transvert_monai.dicom.study import (
    CENTROIDS_FILENAME,
    SourceImage,
    Study,
    StudyError,
    StudyScan,
    find_studies,
    find_study,
)
from transvert_monai.dicom.views import radiograph_view

__all__ = [
    "CENTROIDS_FILENAME",
    "DX_FOR_PRESENTATION_SOP_CLASS",
    "ENCAPSULATED_STL_SOP_CLASS",
    "SourceImage",
    "Study",
    "StudyError",
    "StudyScan",
    "dicom_pixels",
    "dx_dataset",
    "find_studies",
    "find_study",
    "provenance_from_summary",
    "radiograph_view",
    "ras_to_lps",
    "read_vertebra_measurements",
    "write_dicom_results",
    "write_dx",
    "write_example_study",
]
