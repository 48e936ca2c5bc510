"""Input paths checked before they are opened: a missing file, a folder, a FIFO or a device each get their own message."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from transvert_monai.errors import TransVertInputError

__all__ = ["require_file", "require_folder"]


def require_file(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """Return ``Path(path)`` if it is a regular file (links followed) that can be read.

    Raises:
        FileNotFoundError: nothing at ``path`` (or a broken link).
        TransVertInputError: a folder, a FIFO, a socket or a device instead of a file.
        PermissionError: a file this user may not read.
    """
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        broken = " (a broken symbolic link)" if path.is_symlink() else ""
        raise FileNotFoundError(f"the {what} {path} does not exist{broken}{hint}.") from None
    except NotADirectoryError:
        raise FileNotFoundError(f"the {what} {path} does not exist (a part of the path is a file){hint}.") from None
    if stat.S_ISDIR(mode):
        raise TransVertInputError(f"the {what} {path} is a folder, not a file{hint}.")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise TransVertInputError(f"the {what} {path} is {kind}, not a regular file{hint}.")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"the {what} {path} cannot be read (permission denied){hint}.")
    return path


def require_folder(path: str | os.PathLike, what: str, fix: str = "") -> Path:
    """Return ``Path(path)`` if it is a folder.

    Raises:
        FileNotFoundError: nothing at ``path``.
        TransVertInputError: a file or anything else instead of a folder.
    """
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    if not path.exists():
        raise FileNotFoundError(f"the {what} {path} does not exist{hint}.")
    if not path.is_dir():
        raise TransVertInputError(f"the {what} {path} is a file, not a folder{hint}.")
    return path
