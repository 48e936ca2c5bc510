"""A bilaterally symmetric, vertebra-like phantom with a known pose (analytic, no real data)."""

from __future__ import annotations

import numpy as np


def vertebra_phantom_inside(local: np.ndarray) -> np.ndarray:
    """Occupancy of the phantom at local RAS points (N, 3) mm, origin at the body centroid.

    Body: a cylinder (radius 16 mm, height 24 mm) along +S; arch: a half ring behind it; spinous
    process pointing posteriorly and inferiorly; transverse processes to both sides. Symmetric about
    the local x = 0 plane, asymmetric front to back and top to bottom.
    """
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    body = (x**2 + y**2 <= 16.0**2) & (np.abs(z) <= 12.0)
    cy = -24.0  # canal centre
    r = np.sqrt(x**2 + (y - cy) ** 2)
    arch = (r >= 8.0) & (r <= 13.0) & (y <= cy + 4.0) & (np.abs(z) <= 7.0)
    pedicles = (np.abs(np.abs(x) - 10.5) <= 2.5) & (y <= -12.0) & (y >= cy) & (np.abs(z) <= 6.0)
    # spinous process: a bar from the arch's back, going posteriorly and 35° down
    d = np.array([0.0, -np.cos(np.radians(35.0)), -np.sin(np.radians(35.0))])
    rel = local - np.array([0.0, cy - 11.0, 0.0])
    t = rel @ d
    perp = rel - t[:, None] * d
    spinous = (t >= 0.0) & (t <= 28.0) & (np.abs(perp[:, 0]) <= 3.0) & (np.linalg.norm(perp[:, 1:], axis=1) <= 4.0)
    transverse = (np.abs(x) >= 10.0) & (np.abs(x) <= 34.0) & (np.abs(y - (cy + 2.0)) <= 3.5) & (np.abs(z - 2.0) <= 3.5)
    return body | arch | pedicles | spinous | transverse


def phantom_volume(rotation: np.ndarray, origin_mm, spacing=(1.0, 1.0, 1.0), size=(96, 96, 96)):
    """The phantom posed by ``rotation`` (local RAS → world) at ``origin_mm``, voxelised on a RAS grid around it.

    Returns ``(occupancy float32 (X, Y, Z), affine (4, 4))``; occupancy is a 2×2×2 supersampled fraction.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    size = np.asarray(size)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = np.asarray(origin_mm, dtype=np.float64) - spacing * (size - 1) / 2.0
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    occ = np.zeros(len(ijk), dtype=np.float32)
    offsets = [(a, b, c) for a in (-0.25, 0.25) for b in (-0.25, 0.25) for c in (-0.25, 0.25)]
    for off in offsets:
        world = (ijk + off) @ affine[:3, :3].T + affine[:3, 3]
        local = (world - np.asarray(origin_mm)) @ rotation  # R^T (p - o)
        occ += vertebra_phantom_inside(local)
    return (occ / len(offsets)).reshape(tuple(size)), affine
