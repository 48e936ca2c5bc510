"""The bundle's files kept out of git in the model zoo (``large_files.yml``): fetch and verify them.

The model zoo keeps weights out of its git repository: a bundle lists them in ``large_files.yml``,
one entry per file with its ``path`` inside the bundle, the ``url`` it is downloaded from and its
``hash_val`` / ``hash_type``::

    large_files:
      - path: "models/model.pt"
        url: "https://.../transvert_model_v0.3.0.pt"
        hash_val: "ac5d9c94..."
        hash_type: "sha256"

:func:`fetch_bundle_weights` reads that file the way the zoo's CI does (MONAI's ``ConfigParser``) and
downloads every missing file with :func:`monai.apps.utils.download_url`, which checks the hash before
the file is moved into place: a download with another hash is refused and leaves nothing behind. A
file already present is checked, never replaced. This repository and the wheel ship the weights
themselves (``models/model.pt``, under 25 MB, its SHA-256 in the bundle README); the helper is for a
bundle copy without them, such as the model zoo's.

    python -m transvert_monai.apps.bundle_files bundles/transvert
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from monai.apps.utils import download_url
from monai.bundle import ConfigParser

from transvert_monai.errors import TransVertInputError

__all__ = ["LARGE_FILES_NAME", "read_large_files", "fetch_bundle_weights", "main", "entry_point"]

logger = logging.getLogger(__name__)

#: The zoo's list of files kept out of git, at the bundle's root.
LARGE_FILES_NAME = "large_files.yml"
_KEYS = ("path", "url", "hash_val", "hash_type")


def read_large_files(bundle_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The entries of ``<bundle_dir>/large_files.yml``, each with ``path``, ``url``, ``hash_val``, ``hash_type``.

    Raises:
        FileNotFoundError: the bundle has no ``large_files.yml``.
        ImportError: PyYAML is not installed.
        TransVertInputError: not a list under ``large_files``, an entry without one of the four keys, or a
            ``path`` that leaves the bundle (absolute, or with ``..``).
    """
    path = Path(bundle_dir) / LARGE_FILES_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a TransVert bundle folder (it holds {LARGE_FILES_NAME}).")
    try:
        content: Any = ConfigParser.load_config_file(path)
    except ImportError as err:  # MONAI imports yaml optionally (OptionalImportError on first use)
        raise ImportError(f"reading {path} needs PyYAML: pip install pyyaml.") from err
    entries = content.get("large_files") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise TransVertInputError(f"{path} must hold a list under `large_files`, got {type(entries).__name__}.")
    checked = []
    for i, entry in enumerate(entries):
        missing = [k for k in _KEYS if not isinstance(entry, dict) or not str(entry.get(k) or "")]
        if missing:
            raise TransVertInputError(
                f"entry {i} of {path} has no {', '.join(missing)}; each entry needs {list(_KEYS)}."
            )
        relative = PurePosixPath(str(entry["path"]))
        if relative.is_absolute() or ".." in relative.parts:
            raise TransVertInputError(
                f"entry {i} of {path}: `path` must be relative to the bundle, without '..', got {entry['path']!r}."
            )
        checked.append({k: str(entry[k]) for k in _KEYS})
    return checked


def fetch_bundle_weights(bundle_dir: str | os.PathLike, progress: bool = False) -> list[Path]:
    """Download every file of the bundle's ``large_files.yml`` that is missing, and check every hash.

    Args:
        bundle_dir: the bundle folder (``configs/``, ``large_files.yml``).
        progress: show a download progress bar.

    Returns:
        The paths of the listed files, all present and verified.

    Raises:
        FileNotFoundError, ImportError, TransVertInputError: see :func:`read_large_files`.
        monai.apps.utils.HashCheckError: a downloaded file, or one already present, whose hash differs from
            ``hash_val`` (a download is then not kept; a present file is left as it is).
        urllib.error.URLError: the URL cannot be reached.

    Example:
        >>> fetch_bundle_weights("transvert")  # transvert/models/model.pt, downloaded if missing
    """
    bundle = Path(bundle_dir)
    paths = []
    for entry in read_large_files(bundle):
        target = bundle / entry["path"]
        present = target.is_file()
        download_url(entry["url"], target, hash_val=entry["hash_val"], hash_type=entry["hash_type"], progress=progress)
        logger.info("%s %s (%s verified)", "checked" if present else "downloaded", target, entry["hash_type"])
        paths.append(target)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m transvert_monai.apps.bundle_files BUNDLE``: fetch the bundle's missing large files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="bundle folder holding large_files.yml")
    parser.add_argument("--progress", action="store_true", help="show download progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fetch_bundle_weights(args.bundle, progress=args.progress)
    return 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
