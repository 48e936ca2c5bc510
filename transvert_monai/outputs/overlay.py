"""The 3D spine projected back onto a radiograph (paper Fig. 4, bottom row).

Every foreground voxel centre of the label map (sub-sampled inside the voxel when a voxel would
cover more than one detector pixel) is projected with the view's cone-beam geometry
(:meth:`transvert_monai.geometry.ProjectionGeometry.project`); each detector pixel takes the colour
of the vertebra nearest to the source along its ray, blended over the radiograph. Give the working
image with ``radiograph.geometry()``, or the image as read with ``radiograph.geometry(None)``.

:func:`overlay_radiograph` draws on the radiograph at its own resolution (the pixels as read, in the
file's orientation), so the PNG matches the source image pixel for pixel; a radiograph whose longer
side exceeds ``max_side_px`` (:data:`MAX_OVERLAY_SIDE_PX`, 2048) is area-averaged down to it, same
physical extent, which bounds the memory of a 4800 × 2000 long-cassette image. The model is projected
with the reconstruction's own view resampled to that grid (the detector centre and pose kept); where
a voxel would cover more detector pixels than it is sub-sampled, the projection is made on a grid
coarser by a whole factor and enlarged (nearest), so a fine radiograph shows no gaps between samples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from transvert_monai.data.atomic import atomic_write
from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.io.radiograph import Radiograph, resample_area
from transvert_monai.outputs.palette import label_colour
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["MAX_OVERLAY_SIDE_PX", "project_label_volume", "overlay_projection", "overlay_radiograph"]

#: Longest side (pixels) of an overlay drawn by :func:`overlay_radiograph`; larger radiographs are reduced to it.
MAX_OVERLAY_SIDE_PX = 2048
# at most this many sub-samples per voxel axis when voxels are larger than detector pixels
_MAX_SUBSAMPLES = 4
_POINT_CHUNK = 2_000_000


def _footprint_px(geometry: ProjectionGeometry, idx: torch.Tensor, a: torch.Tensor) -> float:
    """Detector pixels one voxel spans at the foreground's nearest depth (the largest footprint)."""
    voxel_mm = float(torch.linalg.norm(a[:3, :3], dim=0).max())
    sample = idx[:: max(1, len(idx) // 1000)] @ a[:3, :3].T + a[:3, 3]
    nearest = float(((sample - geometry.source_mm) @ geometry.beam_direction).min())
    return voxel_mm * geometry.source_to_detector_mm / max(nearest, 1e-6) / min(geometry.detector_spacing_mm)


def _surface_voxels(data: np.ndarray) -> np.ndarray:
    """Foreground voxels with a face neighbour of another value (background or another label)."""
    padded = np.pad(data, 1)
    core = padded[1:-1, 1:-1, 1:-1]
    surface = np.zeros(data.shape, dtype=bool)
    for axis in range(3):
        for shift in (-1, 1):
            surface |= np.roll(padded, shift, axis)[1:-1, 1:-1, 1:-1] != core
    return surface & (data > 0)


def project_label_volume(geometry: ProjectionGeometry, label_volume: object, affine: object = None) -> np.ndarray:
    """(H, W) uint8 image of the label seen first from the source at each detector pixel (0: none).

    Raises:
        TypeError, ValueError: see :func:`~transvert_monai.outputs.volume.as_label_volume`; a voxel behind the source.
    """
    data, aff = as_label_volume(label_volume, affine)
    h, w = geometry.detector_size_px
    surface = _surface_voxels(data)  # a ray meets a label first on its surface: the interior never shows
    idx = torch.from_numpy(np.argwhere(surface)).to(torch.float64)
    out = torch.full((h * w,), torch.iinfo(torch.int64).max, dtype=torch.int64)
    if idx.numel():
        a = torch.from_numpy(aff)
        # sub-samples per axis so that a voxel's footprint on the detector is at most one pixel per sample
        k = min(_MAX_SUBSAMPLES, max(1, math.ceil(_footprint_px(geometry, idx, a))))
        steps = (torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5
        offsets = torch.cartesian_prod(steps, steps, steps).reshape(-1, 3)
        labels = torch.from_numpy(data[surface].astype(np.int64))
        step = max(1, _POINT_CHUNK // len(offsets))
        for start in range(0, len(idx), step):
            sub = idx[start : start + step]
            pts = (sub[:, None, :] + offsets[None]).reshape(-1, 3)
            rc, depth = geometry.project(pts @ a[:3, :3].T + a[:3, 3], return_depth=True)
            lab = labels[start : start + len(sub)].repeat_interleave(len(offsets))
            px = torch.round(rc).long()
            ok = (px[:, 0] >= 0) & (px[:, 0] < h) & (px[:, 1] >= 0) & (px[:, 1] < w)
            # nearest to the source wins: encode (depth in 0.01 mm, label) in one integer and keep the minimum
            key = torch.round(depth[ok] * 100).long() * 64 + lab[ok]
            out.scatter_reduce_(0, px[ok, 0] * w + px[ok, 1], key, reduce="amin")
    seen = out != torch.iinfo(torch.int64).max
    return torch.where(seen, out % 64, torch.zeros_like(out)).reshape(h, w).numpy().astype(np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1, 99))
    return np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)


def overlay_projection(
    image: object,
    geometry: ProjectionGeometry,
    label_volume: object,
    affine: object,
    path: str | os.PathLike,
    alpha: float = 0.45,
    points_px: Sequence[Sequence[float]] | torch.Tensor | None = None,
) -> Path:
    """Save a PNG of the radiograph with the projected 3D model coloured by vertebra.

    Args:
        image: (H, W) radiograph in the pixels of ``geometry`` (e.g. ``RadiographSamples.lateral_image``).
        geometry: its view.
        label_volume: (X, Y, Z) or (1, X, Y, Z) VerSe indices.
        affine: the label map's 4×4 voxel → world map (None: the MetaTensor's).
        path: the PNG file (written atomically).
        alpha: opacity of the colours.
        points_px: optional (N, 2) (row, col) marks, e.g. the 2D centroids.

    Returns:
        ``path``.

    Raises:
        ValueError: an image that does not match the geometry's detector, ``alpha`` outside [0, 1],
            a bad label map.
    """
    _check_alpha(alpha)
    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if img.shape != tuple(geometry.detector_size_px):
        raise ValueError(
            f"the image ({img.shape}) must be the detector of the geometry ({geometry.detector_size_px}); "
            "pass the radiograph resampled to the geometry's spacing (radiograph.resampled(s).pixels with radiograph.geometry(s))."
        )
    seen = project_label_volume(geometry, label_volume, affine)
    return _save_png(_overlay_rgb(img, seen, alpha, points_px), path)


def _overlay_rgb(
    image: object, seen: np.ndarray, alpha: float, points_px: Sequence[Sequence[float]] | torch.Tensor | None
) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the grey image with the labels of ``seen`` blended in and white 3×3 marks."""
    _check_alpha(alpha)
    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    rgb = np.repeat(_grey(img.astype(np.float64))[..., None], 3, axis=-1)
    for label in (int(v) for v in np.unique(seen) if v):
        m = seen == label
        rgb[m] = (1 - alpha) * rgb[m] + alpha * label_colour(label)
    if points_px is not None:
        h, w = img.shape
        for r, c in torch.as_tensor(points_px, dtype=torch.float64).reshape(-1, 2).round().long().tolist():
            rgb[max(r - 1, 0) : min(r + 2, h), max(c - 1, 0) : min(c + 2, w)] = (1.0, 1.0, 1.0)
    return rgb


def _check_alpha(alpha: float) -> None:
    if not 0 <= alpha <= 1:
        raise ValueError(f"`alpha` must be within [0, 1], got {alpha!r}.")


def _save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    png = Image.fromarray(np.ascontiguousarray((rgb * 255).round().astype(np.uint8)))
    return atomic_write(path, lambda tmp: png.save(tmp, format="PNG"))


def _grid_index(n_out: int, n_in: int, factor: float) -> np.ndarray:
    """For each of ``n_out`` pixels, the nearest of ``n_in`` pixels ``factor`` times larger, centres aligned."""
    centred = (np.arange(n_out) - (n_out - 1) / 2) / factor + (n_in - 1) / 2
    return np.clip(np.round(centred), 0, n_in - 1).astype(np.int64)


def _projection_without_gaps(geometry: ProjectionGeometry, label_volume: object, affine: object) -> np.ndarray:
    """:func:`project_label_volume` on ``geometry``'s detector; on a coarser grid where voxels would leave gaps."""
    data, aff = as_label_volume(label_volume, affine)
    idx = torch.from_numpy(np.argwhere(data > 0)).to(torch.float64)
    factor = 1
    if idx.numel():
        factor = max(1, math.ceil(_footprint_px(geometry, idx, torch.from_numpy(aff)) / _MAX_SUBSAMPLES))
    if factor == 1:
        return project_label_volume(geometry, data, aff)
    h, w = geometry.detector_size_px
    size = (math.ceil(h / factor), math.ceil(w / factor))
    spacing = tuple(s * factor for s in geometry.detector_spacing_mm)
    coarse = project_label_volume(geometry.with_detector(size, spacing), data, aff)
    return coarse[np.ix_(_grid_index(h, size[0], factor), _grid_index(w, size[1], factor))]


def overlay_radiograph(
    radiograph: Radiograph,
    path: str | os.PathLike,
    label_volume: object,
    affine: object,
    geometry: ProjectionGeometry | None = None,
    points_px: Sequence[Sequence[float]] | torch.Tensor | None = None,
    alpha: float = 0.45,
    max_side_px: int = MAX_OVERLAY_SIDE_PX,
) -> Path:
    """Save a PNG of the radiograph at its own resolution, in the file's orientation, with the projected model.

    Args:
        radiograph: the radiograph as read (:func:`~transvert_monai.io.read_radiograph`).
        path: the PNG file (written atomically).
        label_volume: (X, Y, Z) or (1, X, Y, Z) VerSe indices.
        affine: the label map's 4×4 voxel → world map (None: the MetaTensor's).
        geometry: the view the reconstruction used, at any pixel spacing (e.g. ``RadiographSamples.lateral_geometry``,
            at the working spacing); its pose is kept and its detector resampled to the output grid. None:
            ``radiograph.geometry(None)``.
        points_px: optional (N, 2) (row, col) marks in ``geometry``'s pixels, e.g.
            ``RadiographSamples.centroid_px[:, 0]``.
        alpha: opacity of the colours.
        max_side_px: the longest side of the PNG; a larger radiograph is area-averaged down to it (same extent).

    Returns:
        ``path``. The PNG is (H, W) of the radiograph, or reduced to ``max_side_px`` on its longer side.

    Raises:
        ValueError: a ``geometry`` whose detector is not the radiograph's (another physical size), ``alpha``
            outside [0, 1], ``max_side_px`` < 1, a bad label map.

    Example:
        >>> overlay_radiograph(lateral, "overlay_lateral.png", spine, affine, samples.lateral_geometry)
    """
    _check_alpha(alpha)
    if int(max_side_px) < 1:
        raise ValueError(f"`max_side_px` must be a positive number of pixels, got {max_side_px!r}.")
    geometry = radiograph.geometry(None) if geometry is None else geometry
    given_mm = np.multiply(geometry.detector_size_px, geometry.detector_spacing_mm)
    own_mm = np.asarray(radiograph.size_mm)
    if not np.allclose(given_mm, own_mm, atol=max(geometry.detector_spacing_mm) + 1e-6):
        raise ValueError(
            f"the geometry's detector ({given_mm[0]:.1f} × {given_mm[1]:.1f} mm) is not the radiograph's "
            f"({own_mm[0]:.1f} × {own_mm[1]:.1f} mm); pass the view made from this radiograph "
            "(radiograph.geometry(s))."
        )
    h, w = radiograph.shape
    scale = max(1.0, max(h, w) / int(max_side_px))
    size = (h, w) if scale == 1.0 else (max(1, round(h / scale)), max(1, round(w / scale)))
    spacing = tuple(n * s / m for n, s, m in zip(radiograph.shape, radiograph.pixel_spacing_mm, size))
    image = radiograph.pixels
    if size != (h, w):
        image = resample_area(radiograph.pixels, radiograph.pixel_spacing_mm, spacing, size)
    view = geometry.with_detector(size, spacing)
    marks = None
    if points_px is not None:  # the same detector points: mm from the detector centre are kept
        rc = torch.as_tensor(points_px, dtype=torch.float64).reshape(-1, 2)
        old_centre = (torch.tensor(geometry.detector_size_px, dtype=torch.float64) - 1) / 2
        offset_mm = (rc - old_centre) * torch.tensor(geometry.detector_spacing_mm, dtype=torch.float64)
        new_centre = (torch.tensor(size, dtype=torch.float64) - 1) / 2
        marks = offset_mm / torch.tensor(spacing, dtype=torch.float64) + new_centre
    rgb = _overlay_rgb(image, _projection_without_gaps(view, label_volume, affine), alpha, marks)
    if radiograph.flipped_horizontal:  # back to the file's orientation, pixel for pixel
        rgb = rgb[:, ::-1]
    return _save_png(rgb, path)
