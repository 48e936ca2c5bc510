"""One prepared case on disk: ``cases/<case>/{ct.nii.gz, mask.nii.gz, centroids.json, case.json}``.

``mask.nii.gz`` holds every vertebra found, in VerSe indices (uint8) on the CT grid, incomplete ones
included so that crops show true neighbours; ``body.nii.gz`` (only when the data has a
vertebral-body mask, then listed under ``files`` in ``case.json``) holds the vertebral bodies in
VerSe indices on the same grid; ``centroids.json`` and the data lists hold only the
complete vertebrae (see :mod:`transvert_monai.data.field_of_view`). The manifest ``case.json`` is
written last, after the other files are complete, so its presence marks a finished case.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from transvert_monai.data.atomic import copy_file_atomic, save_nifti_atomic, write_json_atomic
from transvert_monai.data.centroids import CentroidSource, write_centroids
from transvert_monai.data.labels import label_to_name
from transvert_monai.data.volume import load_volume

__all__ = [
    "CT_FILE",
    "MASK_FILE",
    "CENTROIDS_FILE",
    "BODY_FILE",
    "MANIFEST_FILE",
    "ConvertedCase",
    "write_case",
    "read_case_manifest",
]

logger = logging.getLogger(__name__)

CT_FILE = "ct.nii.gz"
MASK_FILE = "mask.nii.gz"
CENTROIDS_FILE = "centroids.json"
MANIFEST_FILE = "case.json"
BODY_FILE = "body.nii.gz"
_MANIFEST_VERSION = 2
_SOURCE_PRIORITY = (
    CentroidSource.VERSE_BODY_CENTROID,
    CentroidSource.BODY_MASK_CENTRE_OF_MASS,
    CentroidSource.BODY_RULE_ESTIMATE,
    CentroidSource.MASK_CENTRE_OF_MASS,
)


@dataclass
class ConvertedCase:
    """A case read from a source dataset, ready to be written in our layout.

    Attributes:
        case_id: identifier of the case (a folder name).
        patient_id: identifier of the patient; data lists never split one patient across lists.
        ct_path: the input CT file (copied when it is a ``.nii.gz``, else re-saved).
        affine: 4×4 voxel → world (RAS mm) affine of the CT grid.
        mask: (X, Y, Z) uint8 label map in VerSe indices on the CT grid.
        vertebrae: complete vertebrae (VerSe indices), cranial → caudal.
        excluded: ``{VerSe index: reason}`` of the incomplete vertebrae.
        centroids: ``{VerSe index: float64 (3,)}`` world mm, for the complete vertebrae.
        centroid_sources: where each centroid comes from.
        inputs: input file paths by role, recorded in the manifest.
        body: (X, Y, Z) uint8 vertebral bodies in VerSe indices on the CT grid, when the data has a
            body mask (written as ``body.nii.gz``); ``None`` otherwise.
    """

    case_id: str
    patient_id: str
    ct_path: Path
    affine: np.ndarray
    mask: np.ndarray
    vertebrae: list[int]
    excluded: dict[int, str]
    centroids: dict[int, torch.Tensor]
    centroid_sources: dict[int, CentroidSource]
    inputs: dict[str, str] = field(default_factory=dict)
    body: np.ndarray | None = None

    @property
    def centroid_source(self) -> CentroidSource:
        """The main centroid source: the first of VerSe, body mask, body rule, centre of mass that any vertebra has.

        ``case.json`` lists the source of each vertebra (``centroid_sources``).
        """
        present = set(self.centroid_sources.values())
        return next((s for s in _SOURCE_PRIORITY if s in present), CentroidSource.BODY_RULE_ESTIMATE)


def _write_ct(source: Path, path: Path) -> None:
    if source.name.endswith(".nii.gz"):
        copy_file_atomic(source, path)  # already our format: keep the bytes and header untouched
    else:
        save_nifti_atomic(load_volume(source, role="CT"), path)


def _mask_image(mask: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def write_case(case: ConvertedCase, case_dir: str | os.PathLike, *, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write a converted case into ``case_dir``: CT, mask, centroids, then the manifest last.

    Every file is written atomically (temporary name in the same folder, then ``os.replace``).

    Args:
        case: the converted case.
        case_dir: ``<output_dir>/cases/<case_id>``.
        settings: preparation settings recorded in the manifest (source dataset, ``min_voxels``);
            a later run with other settings redoes the case.

    Returns:
        The manifest that was written.
    """
    case_dir = Path(case_dir)
    case_dir.mkdir(parents=True, exist_ok=True)
    # an old manifest must not vouch for files while they are being replaced
    (case_dir / MANIFEST_FILE).unlink(missing_ok=True)
    _write_ct(case.ct_path, case_dir / CT_FILE)
    save_nifti_atomic(_mask_image(case.mask, case.affine), case_dir / MASK_FILE)
    write_centroids(case_dir / CENTROIDS_FILE, case.centroids, case.centroid_source)
    files = {"ct": CT_FILE, "mask": MASK_FILE, "centroids": CENTROIDS_FILE}
    if case.body is not None:
        save_nifti_atomic(_mask_image(case.body, case.affine), case_dir / BODY_FILE)
        files["body"] = BODY_FILE
    else:
        (case_dir / BODY_FILE).unlink(missing_ok=True)
    manifest = {
        "format_version": _MANIFEST_VERSION,
        "case": case.case_id,
        "patient": case.patient_id,
        "settings": dict(settings),
        "files": files,
        "vertebrae": list(case.vertebrae),
        "vertebra_names": [label_to_name(v) for v in case.vertebrae],
        "excluded": {str(k): v for k, v in sorted(case.excluded.items())},
        "centroid_source": str(case.centroid_source),
        "centroid_sources": {str(k): str(v) for k, v in sorted(case.centroid_sources.items())},
        "inputs": dict(case.inputs),
    }
    write_json_atomic(case_dir / MANIFEST_FILE, manifest)
    return manifest


def read_case_manifest(
    case_dir: str | os.PathLike, settings: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The manifest of a finished case, or ``None`` if the case must be (re)done.

    A case is finished when ``case.json`` exists, parses, lists its files and they all exist, and
    (when ``settings`` is given) it was prepared with the same settings.
    """
    path = Path(case_dir) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        with open(path) as f:
            manifest: dict[str, Any] = json.load(f)
        files = manifest["files"]
        missing = [name for name in files.values() if not (Path(case_dir) / name).is_file()]
        vertebrae = [int(v) for v in manifest["vertebrae"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        logger.warning("Manifest %s is unreadable (%s); redoing the case.", path, err)
        return None
    if missing:
        logger.warning("Case %s lacks %s; redoing it.", case_dir, missing)
        return None
    if settings is not None and manifest.get("settings") != dict(settings):
        logger.info(
            "Case %s was prepared with %s, now %s; redoing it.", case_dir, manifest.get("settings"), dict(settings)
        )
        return None
    manifest["vertebrae"] = vertebrae
    return manifest
