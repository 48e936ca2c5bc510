"""Common base of the vertebra metric classes: shape check, label index, reduction like MONAI's metrics."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction, look_up_option

from transvert_monai.metrics.binarize import LabelIndexLike, check_vertebra_pair, label_index_from_target
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM, SpacingLike, resolve_spacing_mm, spacing_triple

__all__ = ["VertebraMetric", "VertebraDistanceMetric"]


class VertebraMetric(CumulativeIterationMetric):
    """Base of the per-vertebra metrics on TransVert's regression outputs.

    ``y_pred`` and ``y`` are batch-first (B, 1, H, W, D) tensors or lists of channel-first
    (1, H, W, D) tensors (MONAI's decollated format). Each call buffers a (B, 1) tensor of scores;
    :meth:`aggregate` reduces the buffer over its not-NaN values, like MONAI's metrics.

    The index ``i`` that sets the threshold ``i / 2`` (see :func:`binarize_prediction`) is the
    maximum of each target unless ``label_index`` is passed to the call.

    Args:
        reduction: MONAI :class:`~monai.utils.MetricReduction` applied by :meth:`aggregate`
            (``"mean"``, ``"none"``, ``"mean_batch"`` …); NaN scores are skipped.
        get_not_nans: make :meth:`aggregate` return ``(value, not_nans)``, where ``not_nans``
            counts the scores that entered the reduction.

    Raises:
        ValueError: an unknown ``reduction``.
    """

    def __init__(self, reduction: MetricReduction | str = MetricReduction.MEAN, get_not_nans: bool = False) -> None:
        super().__init__()
        self.reduction = look_up_option(reduction, MetricReduction)
        self.get_not_nans = bool(get_not_nans)

    def _check_shape(self, y_pred: torch.Tensor, y: torch.Tensor) -> None:
        """Raise a clear error unless ``y_pred`` and ``y`` are (B, 1, H, W, D) tensors of one shape."""
        check_vertebra_pair(y_pred, y, type(self).__name__)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """Scores of one batch.

        Args:
            y_pred: (B, 1, H, W, D) regression output.
            y: (B, 1, H, W, D) target, 0 or the VerSe index.
            kwargs: ``label_index`` (int or (B,) VerSe indices) overrides the maximum of ``y``;
                distance metrics also take ``spacing_mm``.

        Returns:
            (B, 1) float32 scores.

        Raises:
            ValueError: missing ``y`` or bad shapes.
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} needs the target `y`; call it as metric(y_pred, y).")
        self._check_shape(y_pred, y)
        label_index = kwargs.pop("label_index", None)
        if label_index is None:
            label_index = label_index_from_target(y)
        return self._score(y_pred, y, label_index, **kwargs)

    @abstractmethod
    def _score(self, y_pred: torch.Tensor, y: torch.Tensor, label_index: LabelIndexLike, **kwargs: Any) -> torch.Tensor:
        """Scores (B, 1) of a checked batch."""

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the buffered (N, 1) scores, skipping NaN.

        Args:
            reduction: overrides the ``reduction`` given at construction.

        Returns:
            The reduced scores, and the count of not-NaN scores when ``get_not_nans`` is True. A reduction over
            NaN scores only (e.g. a validation batch of empty shapes, which have no surface) is NaN, not MONAI's 0.

        Raises:
            RuntimeError: if nothing was buffered yet.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise RuntimeError(f"{type(self).__name__} has no scores to aggregate; call it on a batch first.")
        value, not_nans = do_metric_reduction(data, reduction or self.reduction)
        # MONAI reduces a group of only-NaN scores to 0, a perfect distance: keep it NaN (nothing was measured)
        # (the mean reduces the scores to shape (1,) and their count to (), so compare them by broadcasting)
        if (
            isinstance(value, torch.Tensor)
            and isinstance(not_nans, torch.Tensor)
            and torch.broadcast_shapes(value.shape, not_nans.shape) == value.shape
        ):
            value = torch.where(not_nans > 0, value, torch.full_like(value, float("nan")))
        return (value, not_nans) if self.get_not_nans else value


class VertebraDistanceMetric(VertebraMetric):
    """Base of the surface-distance metrics (mm): adds the voxel spacing.

    Args:
        spacing_mm: voxel size (mm) for targets without an affine: one number or three (axes 0, 1,
            2); default 1.5 mm. A call may pass per-item ``spacing_mm`` instead.
        spacing_from_affine: when the target is a MetaTensor, take its spacing from the column norms
            of ``affine[:3, :3]`` instead of ``spacing_mm``.
        reduction: see :class:`VertebraMetric`.
        get_not_nans: see :class:`VertebraMetric`.

    Raises:
        ValueError: a bad ``spacing_mm`` or ``reduction``.
    """

    def __init__(
        self,
        spacing_mm: SpacingLike = DEFAULT_SPACING_MM,
        spacing_from_affine: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        self.spacing_mm = spacing_triple(spacing_mm)
        self.spacing_from_affine = bool(spacing_from_affine)

    def _spacing(self, y: torch.Tensor, kwargs: dict[str, Any]) -> list[tuple[float, float, float]]:
        # an explicit `spacing_mm` in the call wins over the affine and the constructor's value
        if "spacing_mm" in kwargs:
            return resolve_spacing_mm(y, kwargs.pop("spacing_mm"), from_affine=False)
        return resolve_spacing_mm(y, self.spacing_mm, from_affine=self.spacing_from_affine)
