"""Finding the lateral and AP radiographs of each study in a folder of DICOM files.

:func:`find_studies` walks a folder tree (a PACS or DICOMweb export: DICOM Part-10 files with or
without a ``.dcm`` suffix; DICOMDIR index files and non-DICOM files skipped), reads each header with
``pydicom.dcmread(stop_before_pixels=True)``, groups the files by StudyInstanceUID and, per study,
selects one lateral and one AP radiograph among the projection X-ray images (modalities
:data:`transvert_monai.io.RADIOGRAPHIC_MODALITIES`). Objects of other modalities (SR, SEG, KO, PR,
secondary captures, CT, ...) are ignored with a note on the study, never an error.

**The view of a radiograph** comes from :func:`~transvert_monai.dicom.views.radiograph_view` (ViewPosition,
then ViewCodeSequence, PatientOrientation, SeriesDescription/ProtocolName words; see there). An
image no rule decides is ignored with a note.

**A study is refused** (a :class:`StudyError` in :attr:`StudyScan.errors`, the other studies go on)
when its radiographs carry different PatientIDs, when it has no lateral or no AP radiograph, when
it has more than one of either (after dropping copies of one SOP instance), or when a selected
image has no ImagerPixelSpacing (0018,1164) or PixelSpacing (0028,0030).

**Centroids.** The reconstruction needs the 2D centroids (``centroids.json``, read by
:func:`transvert_monai.io.read_centroids_2d`, in the pixels of the DICOM files as stored). A study's
``centroids.json`` is found in the folder of its lateral or AP image or in a folder above them, up
to the scanned folder, as long as that folder holds (at any depth) DICOM files of this study only;
several such files that differ leave it unset with a note. Give it per study instead with
``find_studies(folder, centroids={study_uid: path})``. :attr:`Study.centroids` is None when none is
found: pass it to the reconstruction explicitly then.
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transvert_monai.dicom.views import radiograph_view
from transvert_monai.errors import TransVertInputError

__all__ = [
    "CENTROIDS_FILENAME",
    "SourceImage",
    "Study",
    "StudyError",
    "StudyScan",
    "find_studies",
    "find_study",
]

logger = logging.getLogger(__name__)

#: Name of a study's 2D centroid file next to (or above) its DICOM files.
CENTROIDS_FILENAME = "centroids.json"
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_VIEW_NOTES = {
    "RL": "a right lateral (RL): the patient's right side at the detector, the mirror of the left-lateral geometry "
    "TransVert expects; check its orientation (PatientOrientation, flip_horizontal)",
    "PA": "a postero-anterior (PA) view: the mirror of the AP geometry TransVert expects; check its orientation "
    "(PatientOrientation, flip_horizontal)",
}


class StudyError(TransVertInputError):
    """A study that cannot be reconstructed as found: ambiguous, incomplete or inconsistent.

    Attributes:
        study_uid: the StudyInstanceUID concerned (None for a folder-level problem).
    """

    def __init__(self, message: str, study_uid: str | None = None) -> None:
        super().__init__(message)
        self.study_uid = study_uid


@dataclass(frozen=True)
class SourceImage:
    """One selected radiograph of a study.

    Attributes:
        path: its file.
        sop_instance_uid, sop_class_uid, series_instance_uid: its identifiers (for references).
        modality: DX, CR, RF or XA.
        view: ``"lateral"`` or ``"ap"``.
        view_position: its ViewPosition (e.g. ``"LL"``, ``"PA"``), None when absent.
        selected_by: the rule that gave its view, e.g. ``"ViewPosition 'LL'"``.
    """

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    modality: str
    view: str
    view_position: str | None
    selected_by: str


@dataclass
class Study:
    """A study with one lateral and one AP radiograph, ready for ``transvert-reconstruct``.

    Attributes:
        study_uid: StudyInstanceUID.
        patient_id: PatientID of its radiographs ("" when they carry none).
        lateral, ap: the selected radiographs.
        centroids: its ``centroids.json`` (see the module docstring), None when none was found.
        notes: what was ignored or assumed on the way (ignored objects, fallbacks, mirrored views).
    """

    study_uid: str
    patient_id: str
    lateral: SourceImage
    ap: SourceImage
    centroids: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def lateral_path(self) -> Path:
        """File of the lateral radiograph."""
        return self.lateral.path

    @property
    def ap_path(self) -> Path:
        """File of the AP radiograph."""
        return self.ap.path

    @property
    def lateral_sop_uid(self) -> str:
        """SOPInstanceUID of the lateral radiograph."""
        return self.lateral.sop_instance_uid

    @property
    def ap_sop_uid(self) -> str:
        """SOPInstanceUID of the AP radiograph."""
        return self.ap.sop_instance_uid


@dataclass
class StudyScan:
    """What :func:`find_studies` found: usable studies, refused studies, and files it skipped.

    Iterating over a scan (and ``len``) goes over :attr:`studies`.

    Attributes:
        studies: the usable studies, in the order their first file was found.
        errors: {StudyInstanceUID: :class:`StudyError`} of the refused studies.
        ignored: ``"<path>: <reason>"`` for files belonging to no study (unreadable, no StudyInstanceUID).
    """

    studies: list[Study] = field(default_factory=list)
    errors: dict[str, StudyError] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Study]:
        return iter(self.studies)

    def __len__(self) -> int:
        return len(self.studies)


@dataclass
class _Header:
    path: Path
    ds: Any


def _is_part10(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _spacing_ok(ds: Any) -> bool:
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        value = ds.get(keyword, None)
        if value:
            try:
                pair = [float(v) for v in value]
            except (TypeError, ValueError):
                return False
            return len(pair) == 2 and all(math.isfinite(v) and v > 0 for v in pair)
    return False


def _describe(headers: list[tuple[_Header, str]]) -> str:
    return ", ".join(f"{h.path} ({rule})" for h, rule in headers)


def _select(study_uid: str, headers: list[_Header], notes: list[str]) -> Study:
    """The lateral and AP of one study's radiograph headers; raises StudyError."""
    patients = sorted({str(h.ds.get("PatientID", "") or "").strip() for h in headers})
    if len(patients) > 1:
        raise StudyError(
            f"study {study_uid} holds radiographs of {len(patients)} patients (PatientID "
            + ", ".join(repr(p) for p in patients)
            + "); export the lateral and AP views of one patient's acquisition.",
            study_uid,
        )
    by_view: dict[str, list[tuple[_Header, str]]] = {"lateral": [], "ap": []}
    seen: dict[str, Path] = {}
    for h in headers:
        uid = str(h.ds.get("SOPInstanceUID", ""))
        if uid and uid in seen:
            notes.append(f"{h.path}: a copy of {seen[uid]} (same SOPInstanceUID), ignored")
            continue
        seen[uid] = h.path
        view, rule = radiograph_view(h.ds)
        if view is None:
            notes.append(f"{h.path}: view unknown ({rule}), ignored")
        else:
            by_view[view].append((h, rule))
    for view, label in (("lateral", "lateral"), ("ap", "AP")):
        found = by_view[view]
        if not found:
            other = by_view["ap" if view == "lateral" else "lateral"]
            raise StudyError(
                f"study {study_uid} has no {label} radiograph"
                + (f" (found only {_describe(other)})" if other else "")
                + "; TransVert needs one lateral and one AP/PA image. If an image's view was not recognised "
                "(see the notes), set its ViewPosition (0018,5101) to LL or AP.",
                study_uid,
            )
        if len(found) > 1:
            raise StudyError(
                f"study {study_uid} has {len(found)} {label} radiographs: {_describe(found)}; "
                "export only the pair to reconstruct (one lateral, one AP).",
                study_uid,
            )
    selected = {}
    for view in ("lateral", "ap"):
        h, rule = by_view[view][0]
        if not _spacing_ok(h.ds):
            raise StudyError(
                f"study {study_uid}: the {view} radiograph {h.path} has no valid ImagerPixelSpacing (0018,1164) or "
                "PixelSpacing (0028,0030); TransVert needs the detector pixel size: export the image with it, or "
                "reconstruct from the files with an explicit pixel spacing.",
                study_uid,
            )
        position = str(h.ds.get("ViewPosition", "") or "").strip().upper() or None
        if position in _VIEW_NOTES:
            notes.append(f"{h.path} is {_VIEW_NOTES[position]}")
        if not rule.startswith("ViewPosition"):
            notes.append(f"{h.path}: {view} by {rule} (no usable ViewPosition)")
        selected[view] = SourceImage(
            path=h.path,
            sop_instance_uid=str(h.ds.SOPInstanceUID),
            sop_class_uid=str(h.ds.SOPClassUID),
            series_instance_uid=str(h.ds.get("SeriesInstanceUID", "")),
            modality=str(h.ds.get("Modality", "")).upper(),
            view=view,
            view_position=position,
            selected_by=rule,
        )
    return Study(study_uid, patients[0], selected["lateral"], selected["ap"], notes=notes)


def _study_centroids(study: Study, root: Path, uids_below: Mapping[Path, set[str]]) -> Path | None:
    """The study's centroids.json by the folder rule of the module docstring (notes ambiguity)."""
    candidates: dict[Path, bytes] = {}
    for image in (study.lateral.path, study.ap.path):
        folder = image.parent
        while True:
            if uids_below.get(folder, set()) - {study.study_uid}:
                break  # this folder (and every one above) also holds other studies
            path = folder / CENTROIDS_FILENAME
            if path.is_file():
                candidates.setdefault(path, path.read_bytes())
            if folder == root or root not in folder.parents:
                break
            folder = folder.parent
    if len(set(candidates.values())) > 1:
        study.notes.append(
            f"several different {CENTROIDS_FILENAME} apply ({', '.join(str(p) for p in sorted(candidates))}); "
            "none used: give the study's centroids explicitly"
        )
        return None
    return min(candidates, key=lambda p: (-len(p.parts), str(p))) if candidates else None


def find_studies(
    folder: str | os.PathLike, *, centroids: Mapping[str, str | os.PathLike] | None = None
) -> StudyScan:
    """Scan ``folder`` (recursively) for studies with a lateral and an AP radiograph.

    See the module docstring for the files read, the view rules, the refusals and the centroid rule.
    A refused study does not stop the others: its error is in :attr:`StudyScan.errors`.

    Args:
        folder: the folder to scan.
        centroids: ``{StudyInstanceUID: centroids.json}`` overriding the folder rule per study.

    Returns:
        :class:`StudyScan` (iterates over the usable studies).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        FileNotFoundError: a file given in ``centroids`` does not exist.
        ImportError: pydicom is not installed.
    """
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as err:
        raise ImportError("reading DICOM studies needs pydicom: pip install 'transvert_monai[dicom]'.") from err
    from transvert_monai.io.formats import RADIOGRAPHIC_MODALITIES

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"DICOM folder {root} does not exist or is not a folder.")
    given = {str(uid): Path(p) for uid, p in (centroids or {}).items()}
    for uid, path in given.items():
        if not path.is_file():
            raise FileNotFoundError(f"centroid file {path} given for study {uid} does not exist.")
    scan = StudyScan()
    radiographs: dict[str, list[_Header]] = defaultdict(list)
    notes: dict[str, list[str]] = defaultdict(list)
    uids_below: dict[Path, set[str]] = defaultdict(set)
    for path in _walk(root):
        if path.name.upper() == "DICOMDIR":
            continue
        if not _is_part10(path):
            if path.suffix.lower() in (".dcm", ".dicom"):
                scan.ignored.append(f"{path}: no DICOM preamble ('DICM' at byte 128), not a DICOM Part-10 file")
            continue
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
            sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
            study_uid = str(ds.get("StudyInstanceUID", "") or "").strip()
            modality = str(ds.get("Modality", "") or "").strip().upper()
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, KeyError) as err:
            scan.ignored.append(f"{path}: unreadable DICOM header ({type(err).__name__}: {err})")
            continue
        if sop_class == _DICOMDIR_SOP_CLASS:
            continue
        if not study_uid:
            scan.ignored.append(f"{path}: no StudyInstanceUID")
            continue
        for parent in path.parents:
            uids_below[parent].add(study_uid)
            if parent == root:
                break
        notes.setdefault(study_uid, [])
        if modality not in RADIOGRAPHIC_MODALITIES:
            notes[study_uid].append(f"{path}: a {modality or 'modality-less'} object, not a radiograph; ignored")
        elif "Rows" not in ds or "Columns" not in ds:
            notes[study_uid].append(f"{path}: a {modality} object without an image (no Rows/Columns); ignored")
        else:
            radiographs[study_uid].append(_Header(path, ds))
    for study_uid, study_notes in notes.items():
        try:
            study = _select(study_uid, radiographs.get(study_uid, []), study_notes)
        except StudyError as err:
            scan.errors[study_uid] = err
            logger.warning("%s", err)
            continue
        study.centroids = given.get(study_uid) or _study_centroids(study, root, uids_below)
        if study.centroids is None:
            study.notes.append(f"no {CENTROIDS_FILENAME} found for the study; give the 2D centroids explicitly")
        scan.studies.append(study)
    return scan


def find_study(
    folder: str | os.PathLike, *, study_uid: str | None = None, centroids: str | os.PathLike | None = None
) -> Study:
    """The one usable study in ``folder`` (or the one with ``study_uid``), for a single reconstruction.

    Args:
        folder: the folder to scan (see :func:`find_studies`).
        study_uid: pick this study when the folder holds several.
        centroids: the study's centroid file, overriding the folder rule.

    Raises:
        StudyError: no usable study, the chosen one refused, or several studies and no ``study_uid``.
        FileNotFoundError: see :func:`find_studies`.
    """
    scan = find_studies(folder)
    if study_uid is not None:
        if study_uid in scan.errors:
            raise scan.errors[study_uid]
        chosen = [s for s in scan.studies if s.study_uid == study_uid]
        if not chosen:
            known = [s.study_uid for s in scan.studies] + list(scan.errors)
            raise StudyError(f"no study {study_uid} in {folder}; found {known or 'none'}.", study_uid)
    else:
        chosen = scan.studies
        if not chosen:
            if len(scan.errors) == 1:
                raise next(iter(scan.errors.values()))
            details = "; ".join(str(e) for e in scan.errors.values())
            raise StudyError(
                f"no usable study with a lateral and an AP radiograph in {folder}"
                + (f": {details}" if details else " (no DICOM radiographs found)")
            )
        if len(chosen) > 1:
            raise StudyError(
                f"{folder} holds {len(chosen)} usable studies ({', '.join(s.study_uid for s in chosen)}); "
                "choose one with study_uid."
            )
    study = chosen[0]
    if centroids is not None:
        if not Path(centroids).is_file():
            raise FileNotFoundError(f"centroid file {centroids} does not exist.")
        study.centroids = Path(centroids)
    return study
