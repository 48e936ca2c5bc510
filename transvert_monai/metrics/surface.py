"""Surface of a binary vertebra mask as a triangle mesh, and point clouds sampled on it (paper Fig. 3).

The mesh is the marching-cubes iso-surface at 0.5 of the mask padded with one background voxel
(:func:`skimage.measure.marching_cubes`), so a mask touching the volume border still gives a closed
surface. Coordinates are millimetres in the voxel frame: voxel ``(i, j, k)`` sits at
``(i·s0, j·s1, k·s2)``, the convention of the Hausdorff distance in this package.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage.measure import marching_cubes

from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, spacing_triple

__all__ = ["mask_surface_mesh", "sample_surface_points"]


def _as_mask(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"the mask must be a 3D volume (H, W, D), got shape {mask.shape}.")
    return mask.astype(bool)


def mask_surface_mesh(
    mask: np.ndarray | torch.Tensor, spacing_mm: float | Sequence[float] = DEFAULT_SPACING_MM
) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the boundary of a binary mask.

    Args:
        mask: (H, W, D) binary mask (non-zero is foreground).
        spacing_mm: voxel size (mm), one number or three.

    Returns:
        ``(vertices, faces)``: (V, 3) float64 vertex positions in mm and (F, 3) int vertex indices.

    Raises:
        ValueError: a mask that is not 3D or has no foreground; a bad spacing.
    """
    spacing = np.asarray(spacing_triple(spacing_mm), dtype=np.float64)
    volume = _as_mask(mask)
    if not volume.any():
        raise ValueError("the mask is empty, so it has no surface; check the binarization threshold.")
    padded = np.pad(volume.astype(np.float32), 1)
    verts, faces, _, _ = marching_cubes(padded, level=0.5, spacing=tuple(spacing), allow_degenerate=False)
    # undo the one-voxel padding so that vertices sit in the mask's own voxel frame
    return verts.astype(np.float64) - spacing, faces


def sample_surface_points(
    mask: np.ndarray | torch.Tensor,
    n_points: int = 2048,
    spacing_mm: float | Sequence[float] = DEFAULT_SPACING_MM,
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """Points drawn uniformly (area-weighted) on the marching-cubes surface of a mask.

    A triangle is chosen with probability proportional to its area, then a point uniformly inside
    it with the square-root barycentric formula of Osada et al., "Shape distributions", ACM TOG 21(4),
    2002, §4.2.

    Args:
        mask: (H, W, D) binary mask.
        n_points: number of points (the paper uses 2048).
        spacing_mm: voxel size (mm), one number or three.
        rng: a NumPy generator, or a seed for :func:`numpy.random.default_rng`.

    Returns:
        (n_points, 3) float64 positions in mm (voxel frame, see the module docstring).

    Raises:
        ValueError: ``n_points`` < 1, an empty or non-3D mask, a bad spacing.
    """
    if int(n_points) < 1:
        raise ValueError(f"`n_points` must be at least 1, got {n_points!r}.")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    verts, faces = mask_surface_mesh(mask, spacing_mm)
    a, b, c = (verts[faces[:, k]] for k in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    chosen = generator.choice(len(faces), size=int(n_points), p=areas / areas.sum())
    r1, r2 = generator.random((2, int(n_points)))
    s = np.sqrt(r1)[:, None]
    r2 = r2[:, None]
    return (1.0 - s) * a[chosen] + s * (1.0 - r2) * b[chosen] + s * r2 * c[chosen]
