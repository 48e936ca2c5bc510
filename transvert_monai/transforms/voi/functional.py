"""Vertebra-of-interest (VOI) annotations and the 3D target crop of one vertebra.

Annotation types (paper §2.1 and Table 2), all images of the same shape as the view patch, values
0 or 1:

* ``disc`` (C2V, the paper's default) — a disc of ``radius_px`` (default 1) around the projected
  vertebral centroid; a pixel belongs to it when its centre lies within the radius.
* ``body`` (B2V) — the shadow of the vertebral body: pixels whose ray crosses the body mask.
* ``vertebra`` (V2V) — the shadow of the whole vertebra mask.
* ``none`` — an all-zero image (the "no annotation" baseline).

Shadows are rendered with the same ray caster as the DRRs (:func:`..drr.functional.line_integrals`),
so annotation and image cannot disagree about geometry. A pixel is in the shadow when the ray's
path length through the (trilinearly interpolated) mask exceeds ``shadow_threshold_mm`` (0.5 mm).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from transvert_monai.geometry import ProjectionGeometry, VOIMode
from transvert_monai.transforms.drr.functional import line_integrals

__all__ = ["VOIMode", "render_voi_disc", "render_voi_shadow", "crop_vertebra_target", "approximate_body_mask"]


def render_voi_disc(centre_rc: torch.Tensor, pixels_rc: torch.Tensor, radius_px: float = 1.0) -> torch.Tensor:
    """Disc annotation: 1 where a pixel centre lies within ``radius_px`` of ``centre_rc``.

    Args:
        centre_rc: (..., 2) detector (row, col) of the projected centroid, one per image.
        pixels_rc: (..., H, W, 2) detector (row, col) of the image's pixels.
        radius_px: disc radius in pixels (the paper uses 1).

    Returns:
        (..., H, W) float32 image of 0 and 1.

    Raises:
        ValueError: if ``radius_px`` is negative.
    """
    if radius_px < 0:
        raise ValueError(f"`radius_px` must be non-negative, got {radius_px!r}.")
    centre = torch.as_tensor(centre_rc, dtype=torch.float64)[..., None, None, :]
    dist2 = ((torch.as_tensor(pixels_rc, dtype=torch.float64) - centre) ** 2).sum(-1)
    return (dist2 <= radius_px**2 + 1e-9).to(torch.float32)


def render_voi_shadow(
    mask: torch.Tensor,
    affine: torch.Tensor,
    geometry: ProjectionGeometry,
    pixels_rc: torch.Tensor,
    shadow_threshold_mm: float = 0.5,
) -> torch.Tensor:
    """Shadow annotation: 1 where the ray to a pixel passes through ``mask`` for more than ``shadow_threshold_mm``.

    Args:
        mask: (X, Y, Z) binary mask (any dtype) on the grid of ``affine``.
        affine: 4×4 voxel → world map.
        geometry: the view.
        pixels_rc: (..., 2) detector (row, col) to annotate.
        shadow_threshold_mm: minimal path length through the mask.

    Returns:
        (...) float32 image of 0 and 1.
    """
    path = line_integrals(mask.to(torch.float32), affine, geometry.source_mm, geometry.pixel_to_world(pixels_rc))
    return (path > shadow_threshold_mm).to(torch.float32)


def approximate_body_mask(mask: torch.Tensor, affine: torch.Tensor, anterior_axis: torch.Tensor) -> torch.Tensor:
    """The vertebral body approximated from a whole-vertebra mask, for data without a body label.

    Rule: the voxels of ``mask`` anterior to the plane, orthogonal to ``anterior_axis``, that passes
    through the mask's centre of mass. The centre of mass of a whole vertebra lies near the back of
    the body, so this keeps the body and drops the posterior elements (arch and processes).

    Args:
        mask: (X, Y, Z) binary mask of one vertebra.
        affine: 4×4 voxel → world map.
        anterior_axis: (3,) world unit vector pointing anterior (the lateral view's column axis).

    Returns:
        (X, Y, Z) bool tensor.
    """
    inside = mask.bool()
    idx = inside.nonzero().to(torch.float64)
    if idx.numel() == 0:
        return inside
    a = torch.as_tensor(affine, dtype=torch.float64)
    # depth of each voxel along the anterior axis, in mm, relative to the centre of mass
    direction_idx = a[:3, :3].T @ torch.as_tensor(anterior_axis, dtype=torch.float64)
    depth = idx @ direction_idx
    keep = depth >= depth.mean()
    out = torch.zeros_like(inside)
    sel = idx[keep].long()
    out[sel[:, 0], sel[:, 1], sel[:, 2]] = True
    return out


def crop_vertebra_target(
    mask: torch.Tensor,
    affine: torch.Tensor,
    label: int,
    target_affine: torch.Tensor,
    size: Sequence[int] = (64, 64, 64),
) -> torch.Tensor:
    """Resample one vertebra of a label map onto a target grid: values 0 or ``label``.

    The binary mask ``mask == label`` is interpolated trilinearly at the target voxel centres and
    thresholded at 0.5 (a smoother and more faithful boundary than nearest-neighbour on an
    anisotropic CT grid), then multiplied by ``label``.

    Args:
        mask: (X, Y, Z) label map on the grid of ``affine``.
        affine: 4×4 voxel → world map of ``mask``.
        label: the vertebra's VerSe index.
        target_affine: 4×4 voxel → world map of the target grid (see ``view_aligned_frame``).
        size: target grid size.

    Returns:
        ``size`` float32 tensor on the device of ``mask``.
    """
    device = mask.device
    # one map from target voxel indices to mask voxel indices
    to_src = torch.linalg.inv(torch.as_tensor(affine, dtype=torch.float64)) @ torch.as_tensor(
        target_affine, dtype=torch.float64
    )
    # the target grid is a parallelepiped: its corners bound the mask voxels it can reach (+1 voxel margin)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, s - 1.0], dtype=torch.float64) for s in size])
    reach = corners @ to_src[:3, :3].T + to_src[:3, 3]
    shape = torch.tensor(mask.shape)
    lo = (torch.floor(reach.amin(0)).long() - 1).clamp(min=0)
    hi = torch.minimum(torch.ceil(reach.amax(0)).long() + 2, shape)
    if (hi <= lo).any():  # target grid entirely outside the label map
        return torch.zeros(tuple(size), dtype=torch.float32, device=device)
    sub = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] == label
    # target index → grid_sample's normalised coordinates of the cropped mask, ordered (x=ax2, y=ax1, z=ax0)
    scale = 2.0 / (torch.tensor(sub.shape, dtype=torch.float64) - 1).clamp_min(1)
    to_grid = to_src[:3].clone()
    to_grid[:, 3] -= lo.to(torch.float64)
    to_grid = (to_grid * scale[:, None]).flip(0)
    to_grid[:, 3] -= 1.0
    to_grid = to_grid.to(device=device, dtype=torch.float32)
    axes = [torch.arange(s, dtype=torch.float32, device=device) for s in size]
    ijk = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (*size, 3)
    grid = torch.addmm(to_grid[:, 3], ijk.reshape(-1, 3), to_grid[:, :3].T).reshape(*size, 3)
    sampled = F.grid_sample(
        sub[None, None].to(torch.float32), grid[None], mode="bilinear", padding_mode="zeros", align_corners=True
    )[0, 0]
    return (sampled >= 0.5).to(torch.float32) * float(label)
