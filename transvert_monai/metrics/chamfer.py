"""Symmetric Chamfer distance (mm) between point clouds sampled on two vertebra surfaces (paper Fig. 3).

For clouds ``P`` (prediction) and ``Q`` (target) of ``n_points`` each, sampled with
:func:`sample_surface_points`::

    CD = ½ · ( mean_{p∈P} min_{q∈Q} ‖p − q‖ + mean_{q∈Q} min_{p∈P} ‖q − p‖ )

in millimetres (not squared), so a shape and a copy shifted by ``t`` mm along its normal score
about ``t``. The two clouds of an item are drawn from independent streams seeded with
``(seed, 0)`` and ``(seed, 1)``; every item uses the same seeds, so a score does not depend on the
batch it came in.

Sampling floor: even a shape against itself scores about ``½·sqrt(area / n_points)`` (the mean
gap between random points), e.g. ≈ 0.4 mm for a 15 mm cube with 2048 points; compare models at the
same ``n_points``.

Empty masks: as for the Hausdorff distance, an empty prediction or target gives NaN (with a
warning), which metric reductions skip.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from monai.utils import MetricReduction
from scipy.spatial import cKDTree

from transvert_monai.metrics.base import VertebraDistanceMetric
from transvert_monai.metrics.binarize import (
    LabelIndexLike,
    binarize_prediction,
    check_vertebra_pair,
    label_index_from_target,
)
from transvert_monai.metrics.hausdorff import EMPTY_MASK_WARNING
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, SpacingLike, per_item_spacing_mm
from transvert_monai.metrics.surface import sample_surface_points

__all__ = ["chamfer_between_points", "compute_chamfer_distance", "ChamferDistanceMetric"]


def chamfer_between_points(points_a: np.ndarray, points_b: np.ndarray) -> float:
    """Symmetric mean Chamfer distance between two point clouds (same unit as the points).

    Args:
        points_a: (N, 3) points.
        points_b: (M, 3) points.

    Returns:
        ``½ (mean nearest distance a→b + mean nearest distance b→a)``.
    """
    a_to_b = cKDTree(points_b).query(points_a, k=1)[0]
    b_to_a = cKDTree(points_a).query(points_b, k=1)[0]
    return 0.5 * (float(np.mean(a_to_b)) + float(np.mean(b_to_a)))


def _check_sampling(n_points: int, seed: int) -> tuple[int, int]:
    if int(n_points) < 1 or int(n_points) != n_points:
        raise ValueError(f"`n_points` must be a positive integer (the paper uses 2048), got {n_points!r}.")
    if int(seed) < 0 or int(seed) != seed:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}.")
    return int(n_points), int(seed)


def compute_chamfer_distance(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
    n_points: int = 2048,
    seed: int = 0,
    label_index: LabelIndexLike | None = None,
) -> torch.Tensor:
    """Symmetric Chamfer distance (mm) between ``n_points`` sampled on each binarized surface.

    Args:
        y_pred: (B, 1, H, W, D) regression output.
        y: (B, 1, H, W, D) target, 0 or the VerSe index ``i``.
        spacing_mm: voxel size (mm): one number, three (axes 0, 1, 2), or one row per item.
        n_points: points per cloud (paper: 2048).
        seed: seed of the point sampling (see the module docstring).
        label_index: ``i`` per item (int or (B,)); default the maximum of each target.

    Returns:
        (B, 1) float32 distances in mm; NaN where the prediction or target is empty (with a warning).

    Raises:
        TypeError, ValueError: inputs that are not (B, 1, H, W, D) tensors of one shape; a bad
            ``spacing_mm``, ``n_points`` or ``seed``; an empty target without ``label_index``.
    """
    check_vertebra_pair(y_pred, y, "compute_chamfer_distance")
    n_points, seed = _check_sampling(n_points, seed)
    spacings = per_item_spacing_mm(spacing_mm, int(y.shape[0]))
    index = label_index_from_target(y) if label_index is None else label_index
    pred_mask = binarize_prediction(y_pred, index)[:, 0].cpu().numpy()
    true_mask = binarize_prediction(y, index)[:, 0].cpu().numpy()

    out = torch.full((y.shape[0], 1), float("nan"), dtype=torch.float32)
    filled = [bool(p.any()) and bool(t.any()) for p, t in zip(pred_mask, true_mask)]
    if not all(filled):
        warnings.warn(EMPTY_MASK_WARNING, UserWarning, stacklevel=2)
    for b in (b for b, ok in enumerate(filled) if ok):
        points_pred = sample_surface_points(pred_mask[b], n_points, spacings[b], np.random.default_rng([seed, 0]))
        points_true = sample_surface_points(true_mask[b], n_points, spacings[b], np.random.default_rng([seed, 1]))
        out[b, 0] = chamfer_between_points(points_pred, points_true)
    return out.to(y_pred.device)


class ChamferDistanceMetric(VertebraDistanceMetric):
    """Cumulative symmetric Chamfer distance (mm); the class twin of :func:`compute_chamfer_distance`.

    Args:
        n_points: points per cloud (paper: 2048).
        seed: seed of the point sampling.
        spacing_mm: voxel size (mm) for targets without an affine (one or three numbers); 1.5 mm.
        spacing_from_affine: take the spacing of a MetaTensor target from its affine.
        reduction: MONAI reduction of the buffered (N, 1) distances; NaN (empty masks) skipped.
        get_not_nans: make :meth:`aggregate` return ``(value, not_nans)``.

    Raises:
        ValueError: a bad ``n_points``, ``seed``, ``spacing_mm`` or ``reduction``.

    Example:
        >>> chamfer = ChamferDistanceMetric()
        >>> chamfer(y_pred=pred, y=label)  # (B, 1, 64, 64, 64) each → (B, 1) mm
        >>> chamfer.aggregate().item()
    """

    def __init__(
        self,
        n_points: int = 2048,
        seed: int = 0,
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
        self.n_points, self.seed = _check_sampling(n_points, seed)

    def _score(self, y_pred: torch.Tensor, y: torch.Tensor, label_index: LabelIndexLike, **kwargs: Any) -> torch.Tensor:
        spacing = self._spacing(y, kwargs)
        return compute_chamfer_distance(
            y_pred, y, spacing_mm=spacing, n_points=self.n_points, seed=self.seed, label_index=label_index
        )
