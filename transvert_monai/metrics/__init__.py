"""Metrics of TransVert (paper §3.2): Dice, Hausdorff (HD, HD95) and Chamfer distance per vertebra.

Each metric is a pure ``compute_<name>(y_pred, y, ...)`` on batch-first (B, 1, H, W, D) tensors
returning (B, 1) scores, paired with a :class:`~monai.metrics.CumulativeIterationMetric` that a
MONAI evaluator can use through :class:`monai.handlers.IgniteMetricHandler`.

Conventions:
    binarization: the network regresses 0 (background) or the VerSe index ``i``; a voxel is
        foreground when the value **exceeds** ``i / 2``. ``i`` defaults to the maximum of each target.
    spacing: distances are in mm; the spacing is an argument (default 1.5 mm) or, for the metric
        classes, the column norms of the target MetaTensor's ``affine[:3, :3]``.
    surface: for HD/HD95, MONAI's surface voxels (foreground voxels with a background face
        neighbour), distances between voxel centres; for the Chamfer distance, 2048 points sampled
        area-weighted on the marching-cubes surface.
    empty prediction: Dice 0; HD, HD95 and Chamfer NaN (undefined) with a warning; the classes'
        reductions skip NaN and ``get_not_nans=True`` reports how many items were scored.
"""

from __future__ import annotations

from transvert_monai.metrics.base import VertebraDistanceMetric, VertebraMetric
from transvert_monai.metrics.baseline import mean_shape_baseline, mean_shape_prediction, score_mean_shape_baseline
from transvert_monai.metrics.binarize import (
    LabelIndexLike,
    binarize_prediction,
    check_vertebra_pair,
    label_index_from_target,
    per_item_label_index,
)
from transvert_monai.metrics.chamfer import ChamferDistanceMetric, chamfer_between_points, compute_chamfer_distance
from transvert_monai.metrics.dice import VertebraDiceMetric, compute_vertebra_dice
from transvert_monai.metrics.hausdorff import EMPTY_MASK_WARNING, VertebraHausdorffMetric, compute_vertebra_hausdorff
from transvert_monai.metrics.scores import METRIC_NAMES, compute_vertebra_metrics
from transvert_monai.metrics.spacing import (
    DEFAULT_SPACING_MM,
    SpacingLike,
    per_item_spacing_mm,
    resolve_spacing_mm,
    spacing_triple,
)
from transvert_monai.metrics.surface import mask_surface_mesh, sample_surface_points

from transvert_monai.metrics.label_volumes import label_volume_dice

__all__ = [
    "label_volume_dice",
    "DEFAULT_SPACING_MM",
    "EMPTY_MASK_WARNING",
    "METRIC_NAMES",
    "ChamferDistanceMetric",
    "LabelIndexLike",
    "SpacingLike",
    "VertebraDiceMetric",
    "VertebraDistanceMetric",
    "VertebraHausdorffMetric",
    "VertebraMetric",
    "binarize_prediction",
    "chamfer_between_points",
    "check_vertebra_pair",
    "compute_chamfer_distance",
    "compute_vertebra_dice",
    "compute_vertebra_hausdorff",
    "compute_vertebra_metrics",
    "label_index_from_target",
    "mask_surface_mesh",
    "mean_shape_baseline",
    "mean_shape_prediction",
    "per_item_label_index",
    "per_item_spacing_mm",
    "resolve_spacing_mm",
    "sample_surface_points",
    "score_mean_shape_baseline",
    "spacing_triple",
]
