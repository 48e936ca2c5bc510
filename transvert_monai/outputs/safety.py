"""Writing outputs without ever losing data: overlap checks, marked output folders, staging and a no-replace move.

The rule every command follows (``transvert-reconstruct``, ``transvert-drr``, ``transvert-prepare``):

* **Never an input.** An output path that is an input, contains one, or (for a single file) is the
  same file under another name is refused before any work.
* **Only its own outputs are replaced.** A finished output folder carries a marker,
  :data:`MARKER_NAME`, naming the command, the version and every file it wrote. ``--overwrite``
  replaces a folder only if its marker names the same command and the folder holds nothing the
  marker does not list; anything else (a user's folder, the working directory, a folder with files
  added since) is refused, with the files that are in the way. An existing single-file output is
  replaced only with ``--overwrite``.
* **Checked before the work.** A symbolic link, a file where a folder is needed, a read-only parent
  are refused first; the staging folder is created at the start, so writability is proven before
  any computation.
* **Atomic, refusing move.** Results are written into a hidden staging folder beside the output and
  moved into place by one ``rename`` that does not replace (Linux ``renameat2(RENAME_NOREPLACE)``;
  a hard link for files elsewhere). If something appeared at the output path during the run, the
  finished result is kept under a stated visible name and the command fails with that name.
* **No leftovers.** A staging folder records its process; the next run in the same folder removes
  staging folders whose process is gone (a killed run).
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from transvert_monai.data.atomic import _temporary_name
from transvert_monai.errors import OutputRefusedError

__all__ = [
    "MARKER_NAME",
    "OutputFolder",
    "check_no_overlap",
    "check_writable_parent",
    "clean_stale_staging",
    "rename_no_replace",
    "write_file_safely",
]

logger = logging.getLogger(__name__)

#: The file that marks a folder as a finished output of a TransVert command.
MARKER_NAME = ".transvert-output.json"
_STAGING_TAG = ".transvert-staging-"
_LOCK_NAME = ".transvert-staging.json"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _real(path: str | os.PathLike) -> Path:
    # realpath alone: it resolves each link before the `..` that follows it, as the OS does when it opens the
    # path (abspath first would drop `link/..` lexically and name another file than the one read)
    return Path(os.path.realpath(path))


def check_no_overlap(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], what: str = "output") -> None:
    """Refuse an ``output`` that is one of ``inputs``, or a folder containing one (symbolic links resolved).

    Raises:
        OutputRefusedError: naming the input and the fix.
    """
    out = _real(output)
    for item in inputs:
        if item is None:
            continue
        source = _real(item)
        if out == source or (os.path.lexists(output) and os.path.lexists(item) and _same_file(output, item)):
            raise OutputRefusedError(
                f"the {what} {output} is the input {item}; writing it would destroy the input: choose another {what}."
            )
        if out in source.parents:
            raise OutputRefusedError(
                f"the {what} {output} contains the input {item}; writing there could replace or delete it: choose an "
                f"{what} that holds none of the inputs."
            )


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable_parent(path: str | os.PathLike, what: str = "output") -> Path:
    """Check that ``path`` can be created: no symbolic link at it, every existing ancestor a writable folder.

    Returns:
        the nearest existing ancestor folder.

    Raises:
        OutputRefusedError: a symbolic link at ``path``, a file where a folder is needed, or a read-only folder.
    """
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        raise OutputRefusedError(
            f"the {what} {path} is a symbolic link (to {os.readlink(path)}); TransVert does not write through links: "
            f"give the real path or another {what}."
        )
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.is_symlink():  # a dangling link
            raise OutputRefusedError(f"the {what}'s parent {ancestor} is a broken symbolic link; choose another {what}.")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputRefusedError(
            f"cannot create the {what} {path}: {ancestor} is a file, not a folder; choose another {what}."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputRefusedError(
            f"cannot create the {what} {path}: the folder {ancestor} is not writable; choose a writable {what}."
        )
    return ancestor


def _libc_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _libc_renameat2()


def rename_no_replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move ``source`` to ``target`` in one step that never replaces an existing ``target``.

    Linux: ``renameat2(RENAME_NOREPLACE)``, atomic. Elsewhere (or on a file system without it): a hard
    link for a file (atomic, then the source name is removed); for a folder an existence check right
    before ``os.rename`` (the only case with a window, microseconds wide).

    Raises:
        FileExistsError: ``target`` exists.
    """
    src, dst = os.fsencode(os.fspath(source)), os.fsencode(os.fspath(target))
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(_AT_FDCWD, src, _AT_FDCWD, dst, _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST or code == errno.ENOTEMPTY:
            raise FileExistsError(code, os.strerror(code), os.fspath(target))
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fspath(source), None, os.fspath(target))
    if os.path.isdir(source) and not os.path.islink(source):
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(target))
        os.rename(source, target)
        return
    os.link(source, target)  # FileExistsError if it exists
    os.unlink(source)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_staging(folder: str | os.PathLike) -> list[Path]:
    """Remove the staging folders of killed runs in ``folder``: those whose recorded process (on this host) is gone.

    Returns:
        the removed folders.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    host = socket.gethostname()
    for entry in entries:
        if _STAGING_TAG not in entry.name or not entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            lock = json.loads((entry / _LOCK_NAME).read_text())
            stale = lock.get("host") == host and not _process_alive(int(lock["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            stale = time.time() - entry.stat().st_mtime > 24 * 3600  # no readable lock: only when a day old
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            logger.info("removed %s, the staging folder of an interrupted run.", entry)
    return removed


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


class OutputFolder:
    """One output folder of ``command``, written safely (see the module docstring).

    Usage::

        out = OutputFolder(path, "transvert-reconstruct", overwrite=args.overwrite, inputs=[lat, ap, centroids])
        staging = out.start()          # before the work: checks done, staging folder made
        try:
            ...write into staging...
            out.commit(staging)        # marker, then the no-replace move
        finally:
            out.discard(staging)       # removes the staging folder if it is still there

    Args:
        path: the output folder.
        command: the command that writes it (kept in the marker; ``--overwrite`` needs the same).
        overwrite: replace a previous output of ``command`` at ``path``.
        inputs: files and folders the job reads; ``path`` must neither be nor contain one.

    Raises:
        OutputRefusedError: see :meth:`check`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        command: str,
        overwrite: bool = False,
        inputs: Sequence[str | os.PathLike | None] = (),
    ) -> None:
        self.path = Path(os.path.abspath(path))
        self.command = command
        self.overwrite = bool(overwrite)
        self.inputs = [i for i in inputs if i is not None]
        self._previous: tuple[int, int] | None = None  # (inode, marker mtime_ns) of the output to replace
        self._empty_at_start: int | None = None  # inode of the empty folder found at the output path
        self.check()

    def check(self) -> None:
        """Refuse, before any work, an output that overlaps an input, a link, a file, a foreign or unwritable folder."""
        check_no_overlap(self.path, self.inputs, "output folder")
        if self._is_cwd_or_above():
            raise OutputRefusedError(
                f"the output folder {self.path} is the working directory or contains it; give a new folder for the "
                "results (e.g. --output results)."
            )
        check_writable_parent(self.path, "output folder")
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise OutputRefusedError(
                f"the output {self.path} is a file, not a folder; choose another output folder (nothing was changed)."
            )
        if not any(self.path.iterdir()):
            self._empty_at_start = self.path.stat().st_ino
            return
        if not self.overwrite:
            raise OutputRefusedError(
                f"the output folder {self.path} is not empty; choose another folder, or pass --overwrite to replace a "
                f"previous output of {self.command}."
            )
        marker = _read_marker(self.path)
        if marker is None or marker.get("command") != self.command:
            raise OutputRefusedError(
                f"the output folder {self.path} holds files that are not a previous output of {self.command} (it has no "
                f"{MARKER_NAME} marker of {self.command}), so --overwrite will not delete them; choose another folder."
            )
        written = set(marker.get("files", ()))
        foreign = [f for f in _listing(self.path) if f not in written and f != MARKER_NAME]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputRefusedError(
                f"the output folder {self.path} is a previous output of {self.command} but also holds files it did not "
                f"write ({shown}); --overwrite will not delete them: move them away or choose another folder."
            )
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise OutputRefusedError(f"cannot replace {self.path}: its folder {self.path.parent} is not writable.")
        self._previous = (self.path.stat().st_ino, (self.path / MARKER_NAME).stat().st_mtime_ns)

    def _is_cwd_or_above(self) -> bool:
        cwd = _real(os.getcwd())
        out = _real(self.path)
        return out == cwd or out in cwd.parents

    def start(self) -> Path:
        """Create the staging folder beside the output (removing those of killed runs there); return it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(self.path.parent)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}{_STAGING_TAG}", dir=self.path.parent))
        except OSError as err:
            raise OutputRefusedError(f"cannot write beside the output folder {self.path}: {err.strerror}.") from None
        lock = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "output": str(self.path)}
        (staging / _LOCK_NAME).write_text(json.dumps(lock))
        return staging

    def commit(self, staging: Path, **marker: Any) -> Path:
        """Mark ``staging`` as a finished output and move it to the output path without replacing anything new.

        Args:
            staging: the folder from :meth:`start`, holding the complete result.
            marker: extra JSON-ready entries for the marker (e.g. inputs).

        Raises:
            OutputRefusedError: something appeared at (or replaced) the output path during the run; the result is
                then kept as ``<output>.transvert-<time>`` and the message names it.
        """
        from transvert_monai import __version__

        (staging / _LOCK_NAME).unlink(missing_ok=True)
        info = {
            "command": self.command,
            "version": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **marker,
            "files": _listing(staging),
        }
        (staging / MARKER_NAME).write_text(json.dumps(info, indent=2) + "\n")
        changed = None
        if self._previous is not None:
            try:
                now = (self.path.stat().st_ino, (self.path / MARKER_NAME).stat().st_mtime_ns)
            except OSError:
                now = None
            if now != self._previous:
                changed = "was replaced or removed"
            else:
                trash = self.path.with_name(f".{self.path.name}.transvert-old-{uuid.uuid4().hex[:8]}")
                os.rename(self.path, trash)
                # checked again once moved aside (nothing can be added to it now): files added during the run stay
                written = set((_read_marker(trash) or {}).get("files", ()))
                added = [f for f in _listing(trash) if f not in written and f != MARKER_NAME]
                try:
                    if added:
                        raise FileExistsError
                    rename_no_replace(staging, self.path)
                except FileExistsError:
                    os.rename(trash, self.path) if not os.path.lexists(self.path) else None
                    changed = (
                        f"gained files during the run ({', '.join(added[:5])})" if added else "was replaced during the run"
                    )
                else:
                    shutil.rmtree(trash, ignore_errors=True)
                    return self.path
        if changed is None:
            if self.path.is_dir() and not self.path.is_symlink():
                if self.path.stat().st_ino != self._empty_at_start:
                    changed = "appeared during the run"  # a folder, even an empty one, that is not ours to remove
                else:
                    try:
                        self.path.rmdir()  # the empty folder found at the start; fails if anything appeared in it
                    except OSError:
                        changed = "is no longer empty"
            if changed is None:
                try:
                    rename_no_replace(staging, self.path)
                    return self.path
                except FileExistsError:
                    changed = "appeared during the run"
        kept = self.path.with_name(f"{self.path.name}.transvert-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}")
        os.rename(staging, kept)
        raise OutputRefusedError(
            f"the output {self.path} {changed} (another job or a user wrote there), so it was left as it is; the "
            f"finished result is kept as {kept}."
        )

    @staticmethod
    def discard(staging: Path | None) -> None:
        """Remove a staging folder that was not committed (a failed run)."""
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_file_safely(
    path: str | os.PathLike,
    write: Callable[[Path], object],
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike | None] = (),
    what: str = "output file",
) -> Path:
    """Write one output file: never an input, an existing file only with ``overwrite``, atomically.

    ``write(temporary_path)`` writes the complete file beside ``path``; it is then linked into place
    without replacing (or, with ``overwrite``, replaces the previous file in one ``os.replace``).

    Raises:
        OutputRefusedError: ``path`` is an input, a folder, a link, exists without ``overwrite``, appeared during
            the write, or its folder is not writable.
    """
    path = Path(os.path.abspath(path))
    check_no_overlap(path, inputs, what)
    check_writable_parent(path, what)
    if path.exists() and path.is_dir():
        raise OutputRefusedError(f"the {what} {path} is a folder; give a file name.")
    if path.exists() and not overwrite:
        raise OutputRefusedError(f"the {what} {path} exists; choose another name or pass --overwrite to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        write(tmp)
        if overwrite:
            check_no_overlap(path, inputs, what)
            os.replace(tmp, path)
        else:
            try:
                rename_no_replace(tmp, path)
            except FileExistsError:
                raise OutputRefusedError(
                    f"the {what} {path} appeared while it was being written (another job?); it was left as it is."
                ) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
