"""From TransVert's regression output to a vertebra mask, and the input checks shared by the metrics.

TransVert regresses, per vertebra, a volume whose target is 0 in the background and the vertebra's
VerSe index ``i`` inside it (paper §2, "Loss"). The stated rule turns a prediction into a mask: a
voxel is foreground when the prediction **exceeds** ``i / 2``, the midpoint between the two target
values. The same rule applied to a ``{0, i}`` target returns its mask exactly, and applied to a target
resampled with linear interpolation it is the 50 % partial-volume iso-surface.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "LabelIndexLike",
    "label_index_from_target",
    "per_item_label_index",
    "binarize_prediction",
    "check_vertebra_pair",
]

#: One VerSe index for the whole batch, or one per batch item.
LabelIndexLike = int | float | Sequence[int | float] | torch.Tensor


def label_index_from_target(y: torch.Tensor) -> torch.Tensor:
    """The VerSe index of each target: its maximum value.

    Args:
        y: (B, ...) batch-first targets with values 0 or the vertebra's index.

    Returns:
        (B,) float32 tensor on ``y``'s device.

    Raises:
        ValueError: if ``y`` has no batch dimension, or a target is empty (maximum ≤ 0); an empty
            target carries no index, so pass ``label_index`` explicitly for it.
    """
    if y.ndim < 2:
        raise ValueError(f"`y` must be batch-first (B, ...), got shape {tuple(y.shape)}.")
    index = torch.as_tensor(y).detach().as_subclass(torch.Tensor).reshape(y.shape[0], -1).amax(dim=1).float()
    empty = (index <= 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"the targets of batch items {empty} are empty (maximum ≤ 0), so they give no vertebra index; "
            "pass `label_index` (the VerSe index, 1–25) explicitly."
        )
    return index


def per_item_label_index(
    label_index: LabelIndexLike, batch_size: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """The VerSe index of each of ``batch_size`` items as a (B,) float32 tensor.

    Raises:
        ValueError: neither 1 nor ``batch_size`` values, or a value that is not positive.
    """
    index = torch.as_tensor(label_index, dtype=torch.float32, device=device).detach().reshape(-1)
    if index.numel() == 1:
        index = index.expand(batch_size)
    if index.numel() != batch_size:
        raise ValueError(
            f"`label_index` needs one value or one per batch item ({batch_size}), got {index.numel()} values."
        )
    if not bool((index > 0).all()):
        raise ValueError(f"`label_index` must be a positive VerSe index (1–25), got {index.tolist()}.")
    return index


def binarize_prediction(pred: torch.Tensor, label_index: LabelIndexLike) -> torch.Tensor:
    """Vertebra mask of a regression output: foreground where ``pred > label_index / 2``.

    Args:
        pred: (B, ...) batch-first regression output (or a ``{0, i}`` target).
        label_index: the VerSe index ``i`` of each item: an int for the whole batch, or (B,) values.

    Returns:
        bool tensor shaped like ``pred`` (a plain tensor, MetaTensor meta-data dropped).

    Raises:
        ValueError: if ``label_index`` is not positive or has neither 1 nor B values.

    Example:
        >>> binarize_prediction(torch.tensor([[0.49 * 8, 0.51 * 8]]), 8)
        tensor([[False,  True]])
    """
    pred = torch.as_tensor(pred).detach().as_subclass(torch.Tensor)
    if pred.ndim < 1:
        raise ValueError("`pred` must be batch-first (B, ...), got a scalar.")
    index = per_item_label_index(label_index, int(pred.shape[0]), pred.device)
    threshold = (index / 2).reshape(-1, *([1] * (pred.ndim - 1)))
    return pred > threshold


def check_vertebra_pair(y_pred: object, y: object, owner: str) -> None:
    """Check a prediction/target pair once: two tensors of the same (B, 1, H, W, D) shape.

    Args:
        y_pred: regression output, expected (B, 1, H, W, D).
        y: target, expected the same shape.
        owner: name of the caller, put at the start of the message.

    Raises:
        TypeError: if either is not a tensor.
        ValueError: if the shapes differ or are not (B, 1, H, W, D).
    """
    if not isinstance(y_pred, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"{owner} expects y_pred and y as torch tensors, got {type(y_pred).__name__} and {type(y).__name__}."
        )
    if y_pred.ndim != 5 or y_pred.shape[1] != 1:
        raise ValueError(
            f"{owner} expects y_pred of shape (B, 1, H, W, D), one vertebra volume per item, "
            f"got {tuple(y_pred.shape)}; add the batch and channel dimensions (e.g. `pred[None]`)."
        )
    if y_pred.shape != y.shape:
        raise ValueError(
            f"{owner} expects y_pred and y of the same shape (B, 1, H, W, D), "
            f"got {tuple(y_pred.shape)} and {tuple(y.shape)}."
        )
