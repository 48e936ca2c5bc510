"""Per-label Dice between two label maps on different grids (e.g. a stacked spine and the CT mask)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from transvert_monai.geometry import voxel_to_world, world_to_voxel

__all__ = ["label_volume_dice"]


def label_volume_dice(
    reference: torch.Tensor,
    reference_affine: torch.Tensor,
    other: torch.Tensor,
    other_affine: torch.Tensor,
    labels: Sequence[int],
) -> dict[int, float]:
    """Dice of each label between ``reference`` and ``other``, measured in millimetres³.

    Each reference voxel of a label counts as overlapping when the ``other`` voxel nearest to its
    centre (through both affines) has the same label; volumes are voxel counts times voxel volumes,
    so grids of different spacing and orientation compare fairly.

    Args:
        reference: (X, Y, Z) label map; reference_affine its 4×4 voxel → world map.
        other: (X', Y', Z') label map; other_affine its affine.
        labels: the labels to score.

    Returns:
        {label: Dice in [0, 1]} (0 when the label is absent from both).
    """
    ref_affine = torch.as_tensor(reference_affine, dtype=torch.float64)
    oth_affine = torch.as_tensor(other_affine, dtype=torch.float64)
    ref_voxel = float(torch.linalg.det(ref_affine[:3, :3]).abs())
    oth_voxel = float(torch.linalg.det(oth_affine[:3, :3]).abs())
    shape = torch.tensor(other.shape)
    out = {}
    for label in labels:
        idx = (reference == label).nonzero().to(torch.float64)
        ijk = world_to_voxel(oth_affine, voxel_to_world(ref_affine, idx)).round().long()
        inside = ((ijk >= 0) & (ijk < shape)).all(-1)
        hits = int((other[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]] == label).sum())
        a, b = len(idx) * ref_voxel, int((other == label).sum()) * oth_voxel
        out[int(label)] = 2.0 * hits * ref_voxel / (a + b) if a + b > 0 else 0.0
    return out
