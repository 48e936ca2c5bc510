"""Sagittal and coronal renderings of the spine label map (maximum-intensity projections coloured by vertebra).

The label map is first brought to RAS voxel order (axes permuted and flipped only, through its
affine, with :mod:`nibabel.orientations`), then projected:

* sagittal — along left–right; anterior on the right, superior at the top (as the lateral radiograph);
* coronal — along anterior–posterior; the patient's right on the left, superior at the top (as the AP radiograph).

A pixel's colour is that of the largest VerSe index on its ray (the maximum-intensity projection of
the labels), its brightness the thickness of bone along the ray, so the shapes read in 3D. Axes are
in mm and each vertebra is named at its centre.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from nibabel import orientations

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import label_to_name
from transvert_monai.outputs.palette import label_colour
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["to_ras", "label_projection", "label_centres", "render_views"]


def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label map in RAS voxel order and its voxel spacing (3,) in mm along R, A, S."""
    ornt = orientations.io_orientation(affine)
    ras = orientations.apply_orientation(data, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = np.linalg.norm(affine[:3, :3], axis=0)
    return np.ascontiguousarray(ras), spacing


def label_projection(ras: np.ndarray, axis: int, spacing: np.ndarray) -> np.ndarray:
    """(A, B, 3) RGB projection of a RAS label map along ``axis`` (remaining axes in RAS order)."""
    labels = ras.max(axis=axis)
    thickness = (ras > 0).sum(axis=axis) * spacing[axis]
    shade = 0.35 + 0.65 * thickness / max(float(thickness.max()), 1e-12)
    rgb = np.zeros((*labels.shape, 3))
    for label in (int(v) for v in np.flatnonzero(np.bincount(labels.reshape(-1), minlength=256)) if v):
        m = labels == label
        rgb[m] = label_colour(label) * shade[m, None]
    return rgb


def label_centres(data: np.ndarray) -> dict[int, np.ndarray]:
    """Centre of mass (voxel indices, (3,)) of every label present in a uint8 label map."""
    flat = np.flatnonzero(data)
    labels = data.reshape(-1)[flat]
    counts = np.bincount(labels, minlength=256).astype(np.float64)
    present = [int(v) for v in np.flatnonzero(counts) if v]
    sums = [np.bincount(labels, weights=idx, minlength=256) for idx in np.unravel_index(flat, data.shape)]
    return {v: np.array([s[v] / counts[v] for s in sums]) for v in present}


def render_views(label_volume: object, affine: object, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a PNG with the sagittal and coronal renderings side by side.

    Args:
        label_volume: (X, Y, Z) or (1, X, Y, Z) VerSe indices.
        affine: 4×4 voxel → world map (None: the MetaTensor's).
        path: the PNG file (written atomically).
        dpi: resolution.

    Returns:
        ``path``.

    Raises:
        TypeError, ValueError: see :func:`~transvert_monai.outputs.volume.as_label_volume`; an empty label map.
    """
    data, aff = as_label_volume(label_volume, affine)
    if not data.any():
        raise ValueError("the label map is empty (no vertebra), so there is nothing to render.")
    ras, spacing = to_ras(data, aff)
    n = np.asarray(ras.shape) * spacing  # extent in mm along R, A, S
    # images: rows superior → inferior; sagittal columns posterior → anterior, coronal columns right → left
    sagittal = label_projection(ras, 0, spacing).transpose(1, 0, 2)[::-1]
    coronal = label_projection(ras, 1, spacing).transpose(1, 0, 2)[::-1, ::-1]
    centres = {v: c * spacing for v, c in label_centres(ras).items()}
    fig = Figure(figsize=(8, 8 * n[2] / (n[0] + n[1]) + 0.6), dpi=dpi)
    FigureCanvasAgg(fig)
    for k, (title, img, width, axis) in enumerate(
        (
            ("sagittal (anterior on the right)", sagittal, n[1], 1),
            ("coronal (patient's right on the left)", coronal, n[0], 0),
        )
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.imshow(img, extent=(0, width, 0, n[2]), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("mm", fontsize=8)
        ax.tick_params(labelsize=7)
        for label, idx in centres.items():  # idx: mm along R, A, S from the first voxel
            x = idx[1] if axis == 1 else n[0] - idx[0]
            ax.text(x, idx[2], label_to_name(label), color="white", fontsize=6, ha="center", va="center")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.06, top=0.94, wspace=0.25)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
