"""Atomic file writes: write to a temporary name in the target's folder, then ``os.replace``.

An interrupted data preparation therefore leaves either the old file or the complete new one, never a
truncated file that a later run would take for finished work.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib

__all__ = ["atomic_write", "write_json_atomic", "save_nifti_atomic", "copy_file_atomic"]


def _temporary_name(path: Path) -> Path:
    # keep the full suffix (``.nii.gz``) so writers that pick the format from the name still work
    return path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``path`` in one ``os.replace``.

    Args:
        path: final file path; its folder is created if needed.
        write: writes the complete file at the path it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (trailing newline) atomically."""
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_nifti_atomic(image: nib.spatialimages.SpatialImage, path: str | os.PathLike) -> Path:
    """Save a nibabel image atomically; the format (``.nii`` / ``.nii.gz``) follows ``path``."""
    return atomic_write(path, lambda tmp: nib.save(image, str(tmp)))


def copy_file_atomic(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the bytes of ``source`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))
