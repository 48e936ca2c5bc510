"""Tiny synthetic vertebra volumes with known geometry for the metric tests (values 0 or the index)."""

from __future__ import annotations

import torch


def box(
    lo: tuple[int, int, int], hi: tuple[int, int, int], size: int = 24, value: float = 20.0
) -> torch.Tensor:
    """(1, 1, S, S, S) volume with ``value`` on voxels lo ≤ index < hi (per axis), 0 elsewhere."""
    v = torch.zeros(1, 1, size, size, size)
    v[0, 0, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = value
    return v


def centred_cube(side: int, size: int = 24, value: float = 20.0) -> torch.Tensor:
    """Cube of ``side`` voxels centred in the volume (``size - side`` must be even)."""
    start = (size - side) // 2
    return box((start,) * 3, (start + side,) * 3, size, value)


def ball(radius: float, size: int = 64, value: float = 20.0) -> torch.Tensor:
    """(1, 1, S, S, S) ball of ``radius`` voxels around the volume centre."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    dist = (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2).sqrt()
    return (dist <= radius).float()[None, None] * value
