"""Voxel spacing of the volumes a metric compares: an argument, or the affine of a MetaTensor target.

Every distance metric works in millimetres. The spacing of one batch item is three positive numbers
(one per index axis, so anisotropic grids work too); it comes from ``spacing_mm`` (one number, three
numbers, or one entry per batch item) or, when the target is a :class:`~monai.data.MetaTensor`, from
the column norms of ``affine[:3, :3]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.data import MetaTensor

from transvert_monai.geometry.affine import spacing_mm as affine_spacing_mm

__all__ = ["DEFAULT_SPACING_MM", "SpacingLike", "spacing_triple", "per_item_spacing_mm", "resolve_spacing_mm"]

#: Isotropic spacing (mm) of the TransVert targets and outputs (64³ voxels of 1.5 mm, paper §3.1).
DEFAULT_SPACING_MM = 1.5

#: One number (isotropic), three numbers (per axis), or one of those per batch item.
SpacingLike = float | Sequence[float] | Sequence[Sequence[float]] | torch.Tensor


def spacing_triple(
    value: float | Sequence[float] | torch.Tensor, what: str = "`spacing_mm`"
) -> tuple[float, float, float]:
    """One item's spacing as three positive floats (mm) from one number (isotropic) or three.

    Raises:
        ValueError: neither one nor three values, or a value that is not positive and finite.
    """
    vals = [float(v) for v in torch.as_tensor(value, dtype=torch.float64).reshape(-1)]
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise ValueError(f"{what} must be one number or three (one per spatial axis), got {len(vals)} values.")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"{what} must be positive and finite (mm), got {vals}.")
    return vals[0], vals[1], vals[2]


def per_item_spacing_mm(spacing_mm: SpacingLike, batch_size: int) -> list[tuple[float, float, float]]:
    """Spacing of each batch item from a spacing argument.

    Args:
        spacing_mm: voxel size in mm: one number, three numbers (axes 0, 1, 2), or one row per
            batch item, shaped (B, 1) or (B, 3). A flat sequence of three is always read as per axis.
        batch_size: number of batch items B.

    Returns:
        B tuples of three positive floats (mm).

    Raises:
        ValueError: a non-positive or non-finite value, or a per-item list of the wrong length.
    """
    t = torch.as_tensor(spacing_mm, dtype=torch.float64) if not isinstance(spacing_mm, torch.Tensor) else spacing_mm
    if t.ndim <= 1:
        triple = spacing_triple(t, "`spacing_mm`")
        return [triple] * batch_size
    if t.shape[0] != batch_size:
        raise ValueError(
            f"`spacing_mm` has one entry per batch item, so it needs {batch_size} entries; got {t.shape[0]}."
        )
    return [spacing_triple(row, f"`spacing_mm[{b}]`") for b, row in enumerate(t)]


def resolve_spacing_mm(
    y: torch.Tensor, spacing_mm: SpacingLike = DEFAULT_SPACING_MM, from_affine: bool = True
) -> list[tuple[float, float, float]]:
    """Spacing of each item of a batch-first target: its affine when it has one, else ``spacing_mm``.

    Args:
        y: (B, C, H, W, D) target. When it is a MetaTensor and ``from_affine`` is True, its affine
            ((4, 4), or (B, 4, 4) for a collated batch) gives the spacing: the column norms of
            ``affine[:3, :3]``.
        spacing_mm: spacing (mm) used for a plain tensor or when ``from_affine`` is False; see
            :func:`per_item_spacing_mm`.
        from_affine: read the spacing from the MetaTensor affine.

    Returns:
        B tuples of three positive floats (mm).

    Raises:
        ValueError: bad ``spacing_mm``, or an affine whose batch size differs from ``y``'s.
    """
    batch_size = int(y.shape[0])
    if not (from_affine and isinstance(y, MetaTensor)):
        return per_item_spacing_mm(spacing_mm, batch_size)
    affine = torch.as_tensor(y.affine, dtype=torch.float64).detach().cpu()
    if affine.ndim == 2:
        return [spacing_triple(affine_spacing_mm(affine), "the spacing of the target's affine")] * batch_size
    if affine.shape[0] != batch_size:
        raise ValueError(
            f"the target has {batch_size} batch items but its affine has {affine.shape[0]}; "
            "collate the items with `monai.data.list_data_collate` or pass `spacing_mm` with `from_affine=False`."
        )
    return [spacing_triple(affine_spacing_mm(a), f"the spacing of item {b}'s affine") for b, a in enumerate(affine)]
