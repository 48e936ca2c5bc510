"""What the machine must offer before a job starts: optional packages, the device, the memory.

Each check runs before the work it protects and raises
:class:`~transvert_monai.errors.EnvironmentProblemError` with the fix, so a job never fails after
minutes of work on an ``ImportError``, an ``AssertionError`` from an absent GPU or "can't allocate
memory".
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
from types import ModuleType

import torch

from transvert_monai.errors import EnvironmentProblemError, TransVertInputError

__all__ = ["require_module", "resolve_device", "available_memory_bytes", "check_memory", "format_bytes"]

#: Share of the available memory one allocation plan may take (the rest: Python, PyTorch, the OS, other jobs).
MEMORY_SHARE = 0.8


def require_module(name: str, needed_for: str, install: str | None = None) -> ModuleType:
    """Import ``name`` or raise :class:`EnvironmentProblemError` naming what needs it and how to install it.

    Args:
        name: the module (``"trimesh"``).
        needed_for: what the caller is about to do (``"writing meshes"``).
        install: the pip requirement to suggest (default ``name``).
    """
    if importlib.util.find_spec(name) is None:
        raise EnvironmentProblemError(
            f"{needed_for} needs the Python package {name!r}, which is not installed: pip install {install or name!r}."
        )
    return importlib.import_module(name)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The :class:`torch.device` for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None``: CUDA if present).

    Raises:
        TransVertInputError: a string that is not a device name.
        EnvironmentProblemError: a CUDA/MPS device this machine does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise TransVertInputError(
            f"{device!r} is not a device name ({str(err).splitlines()[0]}); use 'cpu', 'cuda' or 'cuda:<index>'."
        ) from None
    if out.type == "cuda":
        if not torch.cuda.is_available():
            raise EnvironmentProblemError(
                f"device {device!r} was asked for, but this machine has no usable CUDA GPU (or this PyTorch is a "
                "CPU build); use --device cpu."
            )
        count = torch.cuda.device_count()
        if out.index is not None and out.index >= count:
            raise EnvironmentProblemError(
                f"device {device!r} does not exist: this machine has {count} CUDA device(s), cuda:0 … cuda:{count - 1}."
            )
    elif out.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise EnvironmentProblemError(f"device {device!r} was asked for, but MPS is not available here; use --device cpu.")
    elif out.type not in ("cpu", "cuda", "mps"):
        raise EnvironmentProblemError(f"device type {out.type!r} is not supported; use 'cpu' or 'cuda'.")
    return out


def available_memory_bytes() -> int:
    """Memory the system can give a new allocation now: ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the
    physical memory; a cgroup (container) limit lowers it."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            available = 2**62
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit_file).read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < available:
            available = int(text)
    return int(available)


def format_bytes(n: float) -> str:
    """``1.5 GB``-style text (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0
    return f"{n:.1f} PB"  # pragma: no cover


def check_memory(needed_bytes: float, what: str, fix: str) -> None:
    """Refuse a job whose plan needs more than :data:`MEMORY_SHARE` of :func:`available_memory_bytes`.

    Args:
        needed_bytes: the estimate (the largest arrays the job holds at once).
        what: what the memory is for (``"the 40000 × 40000 detector"``).
        fix: the option to change (``"use a smaller --size or a larger --spacing"``).
    """
    if not math.isfinite(needed_bytes):
        needed_bytes = float("inf")
    available = available_memory_bytes()
    if needed_bytes > MEMORY_SHARE * available:
        needed = "more than any machine has" if needed_bytes > 2**60 else f"about {format_bytes(needed_bytes)}"
        raise EnvironmentProblemError(
            f"{what} needs {needed} of memory, and {format_bytes(available)} is available; {fix}."
        )
