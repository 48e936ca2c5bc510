"""Symmetric Hausdorff distance (HD) and its 95th percentile (HD95) of a vertebra, in millimetres.

Surface voxels follow MONAI (:func:`monai.metrics.utils.get_mask_edges`): the foreground voxels that
the binary erosion with a 6-connected cross removes, i.e. those with at least one face neighbour in
the background (a voxel on the volume border counts as touching the background). Distances run
between the centres of surface voxels, in mm (voxel index × spacing, per axis).

HD is ``max(max_p d(p, Q), max_q d(q, P))`` over surface voxels ``p`` of the prediction and ``q``
of the target; HD95 replaces each ``max`` by the 95th percentile (linear interpolation, as in
:func:`torch.quantile`) before taking the larger of the two directions, MONAI's definition.

Empty masks: a prediction (or target) with no foreground has no surface, so both distances are
undefined and this module returns NaN for that item (MONAI itself returns ``inf`` for HD and NaN
for HD95 there). Metric reductions skip NaN and count the rest in ``not_nans``; the Dice of such a
prediction is 0, so the failure still shows.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from monai.metrics import compute_hausdorff_distance
from monai.utils import MetricReduction

from transvert_monai.metrics.base import VertebraDistanceMetric
from transvert_monai.metrics.binarize import (
    LabelIndexLike,
    binarize_prediction,
    check_vertebra_pair,
    label_index_from_target,
)
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, SpacingLike, per_item_spacing_mm

__all__ = ["EMPTY_MASK_WARNING", "compute_vertebra_hausdorff", "VertebraHausdorffMetric"]

#: Warning text for an item whose prediction or target is empty (constant, so Python shows it once).
EMPTY_MASK_WARNING = (
    "an empty prediction or target (no voxel above half the vertebra index) has no surface; its distance is NaN "
    "and metric reductions skip it (count them with `get_not_nans=True`); its Dice is 0."
)


def _check_percentile(percentile: float | None) -> float | None:
    if percentile is None:
        return None
    if not 0 < float(percentile) <= 100:
        raise ValueError(f"`percentile` must be in (0, 100] (e.g. 95 for HD95) or None for HD, got {percentile!r}.")
    return float(percentile)


def compute_vertebra_hausdorff(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
    percentile: float | None = None,
    label_index: LabelIndexLike | None = None,
) -> torch.Tensor:
    """Symmetric Hausdorff distance (mm) between the surfaces of binarized prediction and target.

    Binarizes both with :func:`binarize_prediction` and calls
    :func:`monai.metrics.compute_hausdorff_distance` with the spacing, item by item.

    Args:
        y_pred: (B, 1, H, W, D) regression output.
        y: (B, 1, H, W, D) target, 0 or the VerSe index ``i``.
        spacing_mm: voxel size (mm): one number, three (axes 0, 1, 2), or one row per item.
        percentile: None for HD (the maximum), 95 for HD95; any value in (0, 100].
        label_index: ``i`` per item (int or (B,)); default the maximum of each target.

    Returns:
        (B, 1) float32 distances in mm; NaN where the prediction or the target is empty (with a
        :class:`UserWarning`, see :data:`EMPTY_MASK_WARNING`).

    Raises:
        TypeError, ValueError: inputs that are not (B, 1, H, W, D) tensors of one shape; a bad
            ``spacing_mm`` or ``percentile``; an empty target without ``label_index``.
    """
    check_vertebra_pair(y_pred, y, "compute_vertebra_hausdorff")
    percentile = _check_percentile(percentile)
    spacings = per_item_spacing_mm(spacing_mm, int(y.shape[0]))
    index = label_index_from_target(y) if label_index is None else label_index
    pred_mask = binarize_prediction(y_pred, index)
    true_mask = binarize_prediction(y, index)

    out = torch.full((y.shape[0], 1), float("nan"), dtype=torch.float32)
    filled = [bool(p.any()) and bool(t.any()) for p, t in zip(pred_mask, true_mask)]
    if not all(filled):
        warnings.warn(EMPTY_MASK_WARNING, UserWarning, stacklevel=2)
    for b in (b for b, ok in enumerate(filled) if ok):
        with warnings.catch_warnings():
            # MONAI 1.5–1.6 passes its own deprecated `always_return_as_numpy` internally; nothing to fix here
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
            hd = compute_hausdorff_distance(
                pred_mask[b : b + 1].cpu(),
                true_mask[b : b + 1].cpu(),
                include_background=True,
                percentile=percentile,
                spacing=list(spacings[b]),
            )
        out[b] = hd.reshape(1).float()
    return out.to(y_pred.device)


class VertebraHausdorffMetric(VertebraDistanceMetric):
    """Cumulative symmetric Hausdorff distance (mm); the class twin of :func:`compute_vertebra_hausdorff`.

    Args:
        percentile: None for HD, 95 for HD95.
        spacing_mm: voxel size (mm) for targets without an affine (one or three numbers); 1.5 mm.
        spacing_from_affine: take the spacing of a MetaTensor target from its affine.
        reduction: MONAI reduction of the buffered (N, 1) distances; NaN (empty masks) skipped.
        get_not_nans: make :meth:`aggregate` return ``(value, not_nans)``.

    Raises:
        ValueError: a bad ``percentile``, ``spacing_mm`` or ``reduction``.

    Example:
        >>> hd95 = VertebraHausdorffMetric(percentile=95)
        >>> hd95(y_pred=pred, y=label)  # (B, 1, 64, 64, 64) each → (B, 1) mm
        >>> hd95.aggregate().item()
    """

    def __init__(
        self,
        percentile: float | None = None,
        spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
        spacing_from_affine: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(
            spacing_mm=spacing_mm,
            spacing_from_affine=spacing_from_affine,
            reduction=reduction,
            get_not_nans=get_not_nans,
        )
        self.percentile = _check_percentile(percentile)

    def _score(self, y_pred: torch.Tensor, y: torch.Tensor, label_index: LabelIndexLike, **kwargs: Any) -> torch.Tensor:
        spacing = self._spacing(y, kwargs)
        return compute_vertebra_hausdorff(
            y_pred, y, spacing_mm=spacing, percentile=self.percentile, label_index=label_index
        )
