"""Dice coefficient of a vertebra, on TransVert's regression output binarized at half its index (paper §3.2)."""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import compute_dice
from monai.utils import MetricReduction

from transvert_monai.metrics.base import VertebraMetric
from transvert_monai.metrics.binarize import (
    LabelIndexLike,
    binarize_prediction,
    check_vertebra_pair,
    label_index_from_target,
)

__all__ = ["compute_vertebra_dice", "VertebraDiceMetric"]


def compute_vertebra_dice(
    y_pred: torch.Tensor, y: torch.Tensor, label_index: LabelIndexLike | None = None
) -> torch.Tensor:
    """Dice coefficient between the binarized prediction and target of each vertebra.

    Both volumes are binarized with :func:`binarize_prediction` (foreground where the value exceeds
    ``i / 2``) and compared with :func:`monai.metrics.compute_dice`.

    Args:
        y_pred: (B, 1, H, W, D) regression output.
        y: (B, 1, H, W, D) target, 0 or the VerSe index ``i``.
        label_index: ``i`` per item (int or (B,)); default the maximum of each target.

    Returns:
        (B, 1) float32 Dice in [0, 1]: 0 for an empty prediction, NaN for an empty target (only
        possible with an explicit ``label_index``).

    Raises:
        TypeError, ValueError: inputs that are not (B, 1, H, W, D) tensors of one shape; an empty
            target without ``label_index``.
    """
    check_vertebra_pair(y_pred, y, "compute_vertebra_dice")
    index = label_index_from_target(y) if label_index is None else label_index
    pred_mask = binarize_prediction(y_pred, index).float()
    true_mask = binarize_prediction(y, index).float()
    return compute_dice(pred_mask, true_mask, include_background=True, ignore_empty=True).float()


class VertebraDiceMetric(VertebraMetric):
    """Cumulative Dice of vertebra shapes; the class twin of :func:`compute_vertebra_dice`.

    Args:
        reduction: MONAI reduction of the buffered (N, 1) scores; NaN skipped. Default ``"mean"``.
        get_not_nans: make :meth:`aggregate` return ``(value, not_nans)``.

    Example:
        >>> metric = VertebraDiceMetric()
        >>> metric(y_pred=pred, y=label)  # (B, 1, 64, 64, 64) each → (B, 1) Dice
        >>> metric.aggregate().item()
    """

    def __init__(self, reduction: MetricReduction | str = MetricReduction.MEAN, get_not_nans: bool = False) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)

    def _score(self, y_pred: torch.Tensor, y: torch.Tensor, label_index: LabelIndexLike, **kwargs: Any) -> torch.Tensor:
        return compute_vertebra_dice(y_pred, y, label_index=label_index)
