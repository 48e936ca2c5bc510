"""Ignite/MONAI event handlers of TransVert: evaluation writers, training curves, resumable state."""

from __future__ import annotations

from transvert_monai.handlers.loss_curve import LossCurveWriter, read_loss_curve
from transvert_monai.handlers.training_state import TrainingState, checkpoint_epoch, resolve_checkpoint
from transvert_monai.handlers.vertebra_metrics_writer import SUMMARY_ALL, VERTEBRA_COLUMNS, VertebraMetricsWriter

__all__ = [
    "SUMMARY_ALL",
    "VERTEBRA_COLUMNS",
    "VertebraMetricsWriter",
    "LossCurveWriter",
    "read_loss_curve",
    "TrainingState",
    "checkpoint_epoch",
    "resolve_checkpoint",
]
