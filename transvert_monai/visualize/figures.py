"""PNG figures of TransVert samples: input patches, and projections of the true and predicted shapes.

One row per vertebra, ten panels (in the spirit of paper Fig. 3):

``LAT``, ``LAT+VOI``, ``AP``, ``AP+VOI`` — the four input channels ``[lat, lat_voi, ap, ap_voi]``,
the VOI annotation drawn in colour over its image; then for the ground truth (``GT``) and the prediction
(``pred``), three maximum-intensity projections of the binarized volume: along axis 2 (``sag``, the
lateral look), axis 1 (``cor``, the AP look) and axis 0 (``ax``, axial). Axis 0 of the view-aligned
target grid runs along the lateral rows, so the ``sag`` and ``cor`` panels are upright like the
patches. Volumes are binarized at half the vertebra's index (see
:func:`transvert_monai.metrics.binarize_prediction`).

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global
backend switch) and written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import label_to_name
from transvert_monai.metrics import binarize_prediction, compute_vertebra_dice

__all__ = ["PANEL_TITLES", "save_vertebra_figure", "save_case_figure"]

#: Titles of the ten panels of a row, left to right.
PANEL_TITLES: tuple[str, ...] = (
    "LAT",
    "LAT+VOI",
    "AP",
    "AP+VOI",
    "GT sag",
    "GT cor",
    "GT ax",
    "pred sag",
    "pred cor",
    "pred ax",
)
_PANEL_INCH = 1.3
_DPI = 80


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def _check_sample(
    image: torch.Tensor, label: torch.Tensor | None, pred: torch.Tensor, label_index: int | None
) -> int:
    if image.ndim != 3 or image.shape[0] != 4:
        raise ValueError(
            f"`image` must be the packed input (4, P, P) = [lat, lat_voi, ap, ap_voi], got {tuple(image.shape)}."
        )
    if pred.ndim != 4 or pred.shape[0] != 1:
        raise ValueError(f"`pred` must be one vertebra volume (1, S, S, S), got {tuple(pred.shape)}.")
    if label is not None and tuple(label.shape) != tuple(pred.shape):
        raise ValueError(f"`label` must have the shape of `pred` {tuple(pred.shape)}, got {tuple(label.shape)}.")
    if label_index is not None:
        return int(label_index)
    if label is None:
        raise ValueError("without `label`, pass `label_index` (the vertebra's VerSe index) to binarize `pred`.")
    index = int(round(float(torch.as_tensor(label).max())))
    if index <= 0:
        raise ValueError("`label` is empty, so it gives no vertebra index; pass `label_index` explicitly.")
    return index


def _projections(volume: torch.Tensor, label_index: int) -> list[np.ndarray]:
    mask = binarize_prediction(torch.as_tensor(volume)[None], label_index)[0, 0].cpu().numpy()
    # axis 2 → lateral look, axis 1 → AP look, axis 0 → axial
    return [mask.any(axis=axis).astype(np.float32) for axis in (2, 1, 0)]


def _draw_row(
    axes: Sequence[Axes],
    image: torch.Tensor,
    label: torch.Tensor | None,
    pred: torch.Tensor,
    label_index: int,
    row_title: str | None,
    with_titles: bool,
) -> None:
    img = _numpy(image)
    for k, (channel, voi) in enumerate(((0, None), (0, 1), (2, None), (2, 3))):
        axes[k].imshow(img[channel], cmap="gray", interpolation="nearest")
        if voi is not None:
            overlay = np.ma.masked_where(img[voi] <= 0, img[voi])
            axes[k].imshow(overlay, cmap="autumn", alpha=0.6, vmin=0, vmax=1, interpolation="nearest")
    gt = _projections(label, label_index) if label is not None else [None] * 3
    for k, mip in enumerate([*gt, *_projections(pred, label_index)]):
        ax = axes[4 + k]
        if mip is None:
            ax.text(0.5, 0.5, "no GT", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        else:
            ax.imshow(mip, cmap="bone", vmin=0, vmax=1, interpolation="nearest")
    for ax, title in zip(axes, PANEL_TITLES):
        if with_titles:
            ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    if row_title:
        axes[0].set_ylabel(row_title, fontsize=7)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(figure)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=_DPI))


def _row_title(label: torch.Tensor | None, pred: torch.Tensor, label_index: int) -> str:
    try:
        title = label_to_name(label_index)
    except ValueError:
        title = f"label {label_index}"
    if label is not None:
        dice = compute_vertebra_dice(torch.as_tensor(pred)[None], torch.as_tensor(label)[None], label_index)
        title += f"\nDice {float(dice):.3f}"
    return title


def save_vertebra_figure(
    image: torch.Tensor,
    label: torch.Tensor | None,
    pred: torch.Tensor,
    path: str | os.PathLike,
    title: str | None = None,
    label_index: int | None = None,
) -> Path:
    """Write a one-row PNG of a vertebra: its four input panels and the projections of GT and prediction.

    Args:
        image: (4, P, P) packed input ``[lat, lat_voi, ap, ap_voi]``.
        label: (1, S, S, S) target (0 or the VerSe index), or None (e.g. a clinical radiograph).
        pred: (1, S, S, S) regression output.
        path: PNG file to write (folders created); written atomically.
        title: figure title.
        label_index: the vertebra's VerSe index; default the maximum of ``label`` (needed without it).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: wrong shapes, or neither ``label`` nor ``label_index``.
    """
    return save_case_figure([(image, label, pred, label_index)], path, title=title)


def save_case_figure(
    samples: Sequence[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, int | None]],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Write a PNG with one row per vertebra of a case (see the module docstring for the panels).

    Args:
        samples: ``(image (4, P, P), label (1, S, S, S) or None, pred (1, S, S, S), vertebra)`` per
            row; ``vertebra`` is the VerSe index (None: the maximum of ``label``). Each row is
            labelled with the level name and, when ``label`` is given, the Dice; panel titles are
            on the first row.
        path: PNG file to write (folders created); written atomically.
        title: figure title, e.g. the case identifier.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no samples, wrong shapes, or a row with neither label nor vertebra index.
    """
    if len(samples) == 0:
        raise ValueError("save_case_figure needs at least one (image, label, pred, vertebra) sample, got none.")
    rows = []
    for image, label, pred, vertebra in samples:
        image, pred = torch.as_tensor(image), torch.as_tensor(pred)
        label = torch.as_tensor(label) if label is not None else None
        rows.append((image, label, pred, _check_sample(image, label, pred, vertebra)))

    n_cols = len(PANEL_TITLES)
    figure = Figure(figsize=(n_cols * _PANEL_INCH, len(rows) * _PANEL_INCH + (0.3 if title else 0.0)), dpi=_DPI)
    grid = figure.subplots(len(rows), n_cols, squeeze=False)
    for r, (axes, (image, label, pred, index)) in enumerate(zip(grid, rows)):
        _draw_row(list(axes), image, label, pred, index, _row_title(label, pred, index), with_titles=r == 0)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)
