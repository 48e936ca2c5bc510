"""Voxel ↔ world maps for channel-first volumes whose geometry is a 4×4 affine.

World coordinates are millimetres in the image's physical space as MONAI holds it: RAS
(``MetaTensor.affine``, the default of ``LoadImage``). Every function here works for any
orientation and anisotropic spacing; nothing assumes an axis order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "as_affine",
    "voxel_to_world",
    "world_to_voxel",
    "grid_centre_mm",
    "box_corners_mm",
    "frame_affine",
    "spacing_mm",
]


def as_affine(affine: torch.Tensor | Sequence, *, name: str = "affine") -> torch.Tensor:
    """Return ``affine`` as a float64 4×4 tensor after checking that it is a usable spatial map.

    Raises:
        ValueError: if it is not 4×4, not finite, or its 3×3 part is singular.
    """
    a = torch.as_tensor(affine, dtype=torch.float64).detach().cpu()
    if a.shape != (4, 4):
        raise ValueError(f"`{name}` must be a 4×4 matrix, got shape {tuple(a.shape)}.")
    if not torch.isfinite(a).all():
        raise ValueError(f"`{name}` has non-finite entries: {a.tolist()}.")
    if abs(float(torch.linalg.det(a[:3, :3]))) < 1e-9:
        raise ValueError(
            f"`{name}` is singular (its 3×3 part has determinant 0), so voxels have no physical position; "
            "fix the image header (qform/sform or DICOM orientation) before using it."
        )
    return a


def voxel_to_world(affine: torch.Tensor, ijk: torch.Tensor) -> torch.Tensor:
    """Map continuous voxel indices ``(..., 3)`` to world millimetres ``(..., 3)``."""
    a = torch.as_tensor(affine, dtype=torch.float64, device=ijk.device)
    return ijk.to(torch.float64) @ a[:3, :3].T + a[:3, 3]


def world_to_voxel(affine: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
    """Map world millimetres ``(..., 3)`` to continuous voxel indices ``(..., 3)``."""
    a = torch.as_tensor(affine, dtype=torch.float64, device=xyz.device)
    inv = torch.linalg.inv(a)
    return xyz.to(torch.float64) @ inv[:3, :3].T + inv[:3, 3]


def grid_centre_mm(affine: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """World position (mm) of the centre of a voxel grid of ``spatial_shape`` (the default isocentre)."""
    centre = (torch.as_tensor(spatial_shape, dtype=torch.float64) - 1.0) / 2.0
    return voxel_to_world(affine, centre)


def spacing_mm(affine: torch.Tensor) -> torch.Tensor:
    """Voxel spacing (mm) along each index axis: the lengths of the affine's first three columns."""
    a = torch.as_tensor(affine, dtype=torch.float64)
    return torch.linalg.norm(a[:3, :3], dim=0)


def frame_affine(axes: torch.Tensor, spacing: float, centre_mm: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Affine of a grid of ``size`` voxels, spacing ``spacing`` mm, index axes along the columns of ``axes``.

    Args:
        axes: (3, 3) unit vectors in world coordinates, one per column (index axis 0, 1, 2).
        spacing: isotropic voxel spacing in mm.
        centre_mm: (3,) world position of the grid centre ((size - 1) / 2 in index units).
        size: number of voxels per axis.

    Returns:
        float64 (4, 4) voxel → world affine.
    """
    axes = torch.as_tensor(axes, dtype=torch.float64)
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = axes * float(spacing)
    half = (torch.as_tensor(size, dtype=torch.float64) - 1.0) / 2.0
    out[:3, 3] = torch.as_tensor(centre_mm, dtype=torch.float64) - out[:3, :3] @ half
    return out


def box_corners_mm(affine: torch.Tensor | Sequence, lo: Sequence[float], hi: Sequence[float]) -> torch.Tensor:
    """World positions (8, 3) float64 of the corners of the voxel-index box ``[lo, hi]`` (e.g. ``-0.5``, ``n - 0.5``
    for a whole grid's outer faces) under ``affine``."""
    a = torch.as_tensor(affine, dtype=torch.float64)
    box = torch.cartesian_prod(*[torch.tensor([float(x), float(y)], dtype=torch.float64) for x, y in zip(lo, hi)])
    return box @ a[:3, :3].T + a[:3, 3]
