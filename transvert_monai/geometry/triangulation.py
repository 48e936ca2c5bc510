"""Where the two views meet: least-squares triangulation and the view-aligned 3D frame of the targets.

The view-aligned frame (see :mod:`transvert_monai.geometry.projection`) is the grid on which a
vertebra's target and the network output live: axis 0 along the lateral rows (superior →
inferior), axis 1 along the lateral columns (posterior → anterior), axis 2 along the AP columns
(right → left).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from transvert_monai.geometry.affine import frame_affine
from transvert_monai.geometry.projection import ProjectionGeometry

__all__ = ["triangulate", "view_aligned_axes", "view_aligned_frame"]


def triangulate(
    geometries: Sequence[ProjectionGeometry], points_rc: Sequence[torch.Tensor] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares 3D point closest to the rays through one pixel in each view.

    Minimises the sum of squared distances from the point to the rays (the classic mid-point method
    generalised to any number of views).

    Args:
        geometries: the views (at least two, not parallel).
        points_rc: per view, (row, col) pixels ``(N, 2)`` or ``(2,)``; or one tensor ``(V, N, 2)``.

    Returns:
        ``(points_mm, residual_mm)``: world positions ``(N, 3)`` and the root-mean-square distance
        from each point to its rays ``(N,)`` — zero when the rays meet, large when the two views
        disagree (a pose error or a mislabelled centroid).

    Raises:
        ValueError: fewer than two views, mismatched point counts, or (near-)parallel rays.
    """
    if len(geometries) < 2:
        raise ValueError(f"triangulation needs at least two views, got {len(geometries)}.")
    pts = [torch.as_tensor(p, dtype=torch.float64).reshape(-1, 2) for p in points_rc]
    if len(pts) != len(geometries) or len({p.shape[0] for p in pts}) != 1:
        raise ValueError("`points_rc` must hold the same number of (row, col) points for every view.")
    eye = torch.eye(3, dtype=torch.float64)
    lhs = torch.zeros(pts[0].shape[0], 3, 3, dtype=torch.float64)
    rhs = torch.zeros(pts[0].shape[0], 3, dtype=torch.float64)
    projectors, sources = [], []
    for geometry, rc in zip(geometries, pts):
        source, direction = geometry.rays(rc)
        proj = eye - direction[:, :, None] * direction[:, None, :]  # projector orthogonal to each ray
        lhs += proj
        rhs += proj @ source
        projectors.append(proj)
        sources.append(source)
    if (torch.linalg.det(lhs).abs() < 1e-9).any():
        raise ValueError("the rays are (nearly) parallel: triangulation needs views from different directions.")
    x = torch.linalg.solve(lhs, rhs)
    sq = sum(((proj @ (x - src)[..., None])[..., 0] ** 2).sum(-1) for proj, src in zip(projectors, sources))
    return x, torch.sqrt(sq / len(geometries))


def view_aligned_axes(lateral: ProjectionGeometry, ap: ProjectionGeometry) -> torch.Tensor:
    """Unit axes (3, 3), one per column, of the view-aligned frame (see the module docstring).

    Axis 0 is the lateral row direction, axis 1 the lateral column direction, axis 2 the direction
    orthogonal to both that points along the AP column direction (exactly the AP columns when the
    views are orthogonal).
    """
    e0, e1 = lateral.rotation[:, 1], lateral.rotation[:, 0]
    e2 = torch.linalg.cross(e0, e1)
    if float(e2 @ ap.rotation[:, 0]) < 0:
        e2 = -e2
    return torch.stack((e0, e1, e2), dim=1)


def view_aligned_frame(
    lateral: ProjectionGeometry,
    ap: ProjectionGeometry,
    centre_mm: Sequence[float] | torch.Tensor,
    size: int | Sequence[int] = 64,
    spacing_mm: float = 1.5,
) -> torch.Tensor:
    """Voxel → world affine (4, 4) of a ``size``³ view-aligned grid centred on ``centre_mm``.

    Raises:
        ValueError: non-positive ``spacing_mm`` or ``size``.
    """
    shape = (size,) * 3 if isinstance(size, int) else tuple(size)
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"`size` must be a positive number of voxels (or three of them), got {size!r}.")
    if not spacing_mm > 0:
        raise ValueError(f"`spacing_mm` must be positive, got {spacing_mm!r}.")
    return frame_affine(view_aligned_axes(lateral, ap), spacing_mm, torch.as_tensor(centre_mm), shape)
