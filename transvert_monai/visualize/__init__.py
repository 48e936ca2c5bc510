"""Figures of TransVert samples and predictions (matplotlib, Agg canvas, PNG)."""

from __future__ import annotations

from transvert_monai.visualize.figures import PANEL_TITLES, save_case_figure, save_vertebra_figure

__all__ = ["PANEL_TITLES", "save_case_figure", "save_vertebra_figure"]
