"""Ignite/MONAI event handlers of TransVert evaluations."""

from __future__ import annotations

from transvert_monai.handlers.vertebra_metrics_writer import SUMMARY_ALL, VERTEBRA_COLUMNS, VertebraMetricsWriter

__all__ = ["SUMMARY_ALL", "VERTEBRA_COLUMNS", "VertebraMetricsWriter"]
