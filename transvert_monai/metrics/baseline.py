"""The trivial "mean shape" baseline that a trained TransVert has to beat.

The paper notes that a pure regression loss drifts towards predicting a mean shape (§2, "Loss").
This baseline makes that concrete: average the binary training targets voxel by voxel (all targets
share the view-aligned 64³ grid centred on the vertebra's centroid) and predict that same volume,
scaled by the vertebra's index, for every test vertebra. Binarized at ``i / 2``, it is the voxel-wise
majority shape of the training set.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from transvert_monai.metrics.binarize import (
    LabelIndexLike,
    binarize_prediction,
    label_index_from_target,
    per_item_label_index,
)
from transvert_monai.metrics.scores import compute_vertebra_metrics
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, SpacingLike

__all__ = ["mean_shape_baseline", "mean_shape_prediction", "score_mean_shape_baseline"]


def mean_shape_baseline(train_targets: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """Voxel-wise frequency of the foreground over training targets.

    Args:
        train_targets: a (N, 1, H, W, D) tensor or an iterable of (1, H, W, D) / (B, 1, H, W, D)
            targets with values 0 or their VerSe index; each is binarized at half its own index.

    Returns:
        (1, H, W, D) float32 probability volume in [0, 1].

    Raises:
        ValueError: no targets, targets of different shapes, or an empty target.
    """
    batches = [train_targets] if isinstance(train_targets, torch.Tensor) else train_targets
    total: torch.Tensor | None = None
    count = 0
    for batch in batches:
        batch = torch.as_tensor(batch).detach().as_subclass(torch.Tensor)
        if batch.ndim == 4:
            batch = batch[None]
        if batch.ndim != 5 or batch.shape[1] != 1:
            raise ValueError(
                f"mean_shape_baseline expects targets (1, H, W, D) or (N, 1, H, W, D), got {tuple(batch.shape)}."
            )
        masks = binarize_prediction(batch, label_index_from_target(batch)).float().sum(dim=0)
        if total is not None and total.shape != masks.shape:
            raise ValueError(
                f"all training targets must share one grid; got {tuple(total.shape[1:])} and {tuple(masks.shape[1:])}."
            )
        total = masks.cpu() if total is None else total + masks.cpu()
        count += int(batch.shape[0])
    if total is None:
        raise ValueError("mean_shape_baseline needs at least one training target, got none.")
    return total / count


def mean_shape_prediction(mean_shape: torch.Tensor, label_index: LabelIndexLike) -> torch.Tensor:
    """The baseline's "regression output" for vertebrae of index ``i``: ``mean_shape · i``.

    Args:
        mean_shape: (1, H, W, D) output of :func:`mean_shape_baseline`.
        label_index: VerSe index of each item: an int (B = 1) or (B,) values.

    Returns:
        (B, 1, H, W, D) float32 prediction; binarized at ``i / 2`` it is ``mean_shape > 0.5``.

    Raises:
        ValueError: a ``mean_shape`` that is not (1, H, W, D), or a bad ``label_index``.
    """
    if mean_shape.ndim != 4 or mean_shape.shape[0] != 1:
        raise ValueError(
            f"`mean_shape` must be (1, H, W, D) as made by mean_shape_baseline, got {tuple(mean_shape.shape)}."
        )
    batch_size = torch.as_tensor(label_index).numel()
    index = per_item_label_index(label_index, batch_size, mean_shape.device)
    return mean_shape.float()[None] * index.reshape(-1, 1, 1, 1, 1)


def score_mean_shape_baseline(
    mean_shape: torch.Tensor,
    y: torch.Tensor,
    spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
    n_points: int = 2048,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Score the mean-shape baseline against targets, each with its own index.

    Args:
        mean_shape: (1, H, W, D) output of :func:`mean_shape_baseline`.
        y: (B, 1, H, W, D) targets, 0 or their VerSe index.
        spacing_mm: voxel size (mm), one number, three, or one row per item.
        n_points: points per cloud of the Chamfer distance.
        seed: seed of the Chamfer point sampling.

    Returns:
        ``{"dice", "hd_mm", "hd95_mm", "chamfer_mm"}`` → (B, 1) float32, as
        :func:`compute_vertebra_metrics`.

    Raises:
        ValueError: an empty target, or grids that differ.
    """
    index = label_index_from_target(y)
    pred = mean_shape_prediction(mean_shape.to(y.device), index)
    return compute_vertebra_metrics(pred, y, spacing_mm=spacing_mm, label_index=index, n_points=n_points, seed=seed)
