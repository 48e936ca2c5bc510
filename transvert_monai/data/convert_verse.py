"""Read VerSe cases (Sekuboyina et al., Med. Image Anal. 73, 2021): CT, vertebra mask and body centroids.

Two layouts are found anywhere under the input folder:

- VerSe 2020 (BIDS-like): ``rawdata/sub-<id>/<prefix>_ct.nii.gz`` with
  ``derivatives/sub-<id>/<prefix>_seg-vert_msk.nii.gz`` and ``<prefix>_seg-subreg_ctd.json``.
  The case is ``<prefix>`` (e.g. ``sub-gl003_dir-ax``), the patient ``sub-<id>``, so several scans of
  one patient stay in one data list.
- VerSe 2019 (flat): ``verse004.nii.gz``, ``verse004_seg.nii.gz``, ``verse004_ctd.json``; case and
  patient are ``verse004``.

Centroids are the VerSe vertebral-body centroids (source ``verse_body_centroid``); a complete
vertebra present in the mask but missing from the centroid file gets a body centroid estimated by
the canal rule of :mod:`transvert_monai.data.body_centroid` (source ``body_rule_estimate``, logged).
Field-of-view rule (see :mod:`transvert_monai.data.field_of_view`): a vertebra whose mask touches
the first or last voxel plane along any axis, or has fewer than ``min_voxels`` voxels, is excluded
as incomplete.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transvert_monai.data.body_centroid import body_rule_centroids
from transvert_monai.data.case import ConvertedCase
from transvert_monai.data.centroids import CentroidSource, as_label_array, read_verse_centroids
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS, check_vertebra_labels, select_complete_vertebrae
from transvert_monai.data.labels import label_to_name
from transvert_monai.data.volume import check_same_grid, load_volume

__all__ = ["VerseCase", "find_verse_cases", "convert_verse_case"]

logger = logging.getLogger(__name__)

_CT_2020 = "_ct.nii.gz"
_MASK_2020 = "_seg-vert_msk.nii.gz"
_CTD_2020 = "_seg-subreg_ctd.json"
_MASK_2019 = "_seg.nii.gz"
_CTD_2019 = "_ctd.json"


@dataclass(frozen=True)
class VerseCase:
    """Paths of one VerSe case (nothing is loaded).

    Attributes:
        case_id: case identifier (file prefix).
        patient_id: patient identifier (``sub-<id>`` folder, or the case for VerSe 2019).
        ct: CT NIfTI.
        mask: vertebra mask NIfTI (VerSe indices).
        centroids: VerSe centroid JSON, or ``None`` when the case has none.
    """

    case_id: str
    patient_id: str
    ct: Path
    mask: Path
    centroids: Path | None


def _find_2020(root: Path) -> list[VerseCase]:
    cases = []
    for ct in sorted(root.rglob(f"*{_CT_2020}")):
        parts = ct.relative_to(root).parts
        if "rawdata" not in parts:
            continue
        # the derivatives tree mirrors rawdata: swap the last 'rawdata' folder for 'derivatives'
        i = len(parts) - 1 - parts[::-1].index("rawdata")
        deriv_dir = root.joinpath(*parts[:i], "derivatives", *parts[i + 1 : -1])
        prefix = ct.name[: -len(_CT_2020)]
        mask = deriv_dir / f"{prefix}{_MASK_2020}"
        ctd = deriv_dir / f"{prefix}{_CTD_2020}"
        if not mask.is_file():
            logger.warning("Skipping VerSe CT %s: no vertebra mask at %s.", ct, mask)
            continue
        patient = ct.parent.name if ct.parent.name.startswith("sub-") else prefix.split("_")[0]
        cases.append(VerseCase(prefix, patient, ct, mask, ctd if ctd.is_file() else None))
    return cases


def _find_2019(root: Path) -> list[VerseCase]:
    cases = []
    for mask in sorted(root.rglob(f"*{_MASK_2019}")):
        if "derivatives" in mask.relative_to(root).parts:
            continue
        case_id = mask.name[: -len(_MASK_2019)]
        ct = mask.with_name(f"{case_id}.nii.gz")
        if not ct.is_file():
            logger.warning("Skipping VerSe mask %s: no CT at %s.", mask, ct)
            continue
        ctd = mask.with_name(f"{case_id}{_CTD_2019}")
        cases.append(VerseCase(case_id, case_id, ct, mask, ctd if ctd.is_file() else None))
    return cases


def find_verse_cases(input_dir: str | os.PathLike) -> list[VerseCase]:
    """Find the VerSe 2020 and VerSe 2019 cases under ``input_dir`` (see the module docstring).

    Returns:
        Cases sorted by case id.

    Raises:
        FileNotFoundError: if ``input_dir`` is not a folder.
        ValueError: if two cases share an id.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"VerSe input folder {root} does not exist.")
    cases = _find_2020(root) + _find_2019(root)
    seen: dict[str, VerseCase] = {}
    for case in cases:
        if case.case_id in seen:
            raise ValueError(
                f"Two VerSe cases have the id {case.case_id!r} ({seen[case.case_id].ct} and {case.ct}); "
                "prepare the folders separately."
            )
        seen[case.case_id] = case
    return sorted(cases, key=lambda c: c.case_id)


def convert_verse_case(case: VerseCase, min_voxels: int = DEFAULT_MIN_VOXELS) -> ConvertedCase:
    """Load one VerSe case and select its complete vertebrae and their centroids.

    Args:
        case: paths from :func:`find_verse_cases`.
        min_voxels: smallest voxel count of a complete vertebra (field-of-view rule).

    Returns:
        The converted case (mask as uint8 VerSe indices on the CT grid).

    Raises:
        FileNotFoundError: if a file is missing.
        ValueError: if a volume is not 3D or has no usable affine, the mask is not on the CT grid,
            the mask holds labels outside 1–25/28, or the centroid file is malformed.
    """
    ct = load_volume(case.ct, role="CT")
    mask_img = load_volume(case.mask, role="mask")
    check_same_grid(ct, mask_img, ct_path=case.ct, mask_path=case.mask)
    mask = as_label_array(np.asanyarray(mask_img.dataobj), name=f"mask {case.mask}")
    check_vertebra_labels(mask, where=f"VerSe mask {case.mask}")
    kept, excluded = select_complete_vertebrae(mask, min_voxels)
    for label, reason in excluded.items():
        logger.info("%s: excluding %s (%d) as incomplete: %s.", case.case_id, label_to_name(label), label, reason)
    body = read_verse_centroids(case.centroids, ct.affine, ct.shape) if case.centroids is not None else {}
    fallback = [v for v in kept if v not in body]
    if fallback:
        logger.info(
            "%s: no VerSe body centroid for %s in %s; estimating it by the canal rule.",
            case.case_id,
            [label_to_name(v) for v in fallback],
            case.centroids,
        )
    centres = body_rule_centroids(mask, ct.affine, fallback)[0] if fallback else {}
    centroids = {v: body[v] if v in body else centres[v] for v in kept}
    sources = {
        v: CentroidSource.VERSE_BODY_CENTROID if v in body else CentroidSource.BODY_RULE_ESTIMATE for v in kept
    }
    inputs = {"ct": str(case.ct), "mask": str(case.mask)}
    if case.centroids is not None:
        inputs["centroids"] = str(case.centroids)
    return ConvertedCase(
        case_id=case.case_id,
        patient_id=case.patient_id,
        ct_path=case.ct,
        affine=np.asarray(ct.affine, dtype=np.float64),
        mask=mask.astype(np.uint8),
        vertebrae=kept,
        excluded=excluded,
        centroids=centroids,
        centroid_sources=sources,
        inputs=inputs,
    )
