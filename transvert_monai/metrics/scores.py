"""All per-vertebra scores of one batch at once: Dice, HD, HD95 and Chamfer distance."""

from __future__ import annotations

import torch

from transvert_monai.metrics.binarize import LabelIndexLike, check_vertebra_pair, label_index_from_target
from transvert_monai.metrics.chamfer import compute_chamfer_distance
from transvert_monai.metrics.dice import compute_vertebra_dice
from transvert_monai.metrics.hausdorff import compute_vertebra_hausdorff
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, SpacingLike

__all__ = ["METRIC_NAMES", "compute_vertebra_metrics"]

#: Names of the scores of :func:`compute_vertebra_metrics`, also the CSV columns of the metrics writer.
METRIC_NAMES: tuple[str, ...] = ("dice", "hd_mm", "hd95_mm", "chamfer_mm")


def compute_vertebra_metrics(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
    label_index: LabelIndexLike | None = None,
    n_points: int = 2048,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Dice, HD, HD95 and Chamfer distance of each item (see the ``compute_*`` functions).

    Args:
        y_pred: (B, 1, H, W, D) regression output.
        y: (B, 1, H, W, D) target, 0 or the VerSe index ``i``.
        spacing_mm: voxel size (mm): one number, three, or one row per item.
        label_index: ``i`` per item (int or (B,)); default the maximum of each target.
        n_points: points per cloud of the Chamfer distance.
        seed: seed of the Chamfer point sampling.

    Returns:
        ``{name: (B, 1) float32}`` for the names in :data:`METRIC_NAMES`; distances in mm, NaN for
        an empty prediction.

    Raises:
        TypeError, ValueError: as the ``compute_*`` functions.
    """
    check_vertebra_pair(y_pred, y, "compute_vertebra_metrics")
    index = label_index_from_target(y) if label_index is None else label_index
    return {
        "dice": compute_vertebra_dice(y_pred, y, label_index=index),
        "hd_mm": compute_vertebra_hausdorff(y_pred, y, spacing_mm, percentile=None, label_index=index),
        "hd95_mm": compute_vertebra_hausdorff(y_pred, y, spacing_mm, percentile=95, label_index=index),
        "chamfer_mm": compute_chamfer_distance(y_pred, y, spacing_mm, n_points=n_points, seed=seed, label_index=index),
    }
