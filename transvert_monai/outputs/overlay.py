"""The 3D spine projected back onto a radiograph (paper Fig. 4, bottom row).

Every foreground voxel centre of the label map (sub-sampled inside the voxel when a voxel would
cover more than one detector pixel) is projected with the view's cone-beam geometry
(:meth:`transvert_monai.geometry.ProjectionGeometry.project`); each detector pixel takes the colour
of the vertebra nearest to the source along its ray, blended over the radiograph. Give the working
image with ``radiograph.geometry()``, or the image as read with ``radiograph.geometry(None)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from transvert_monai.data.atomic import atomic_write
from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.outputs.palette import label_colour
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["project_label_volume", "overlay_projection"]

# at most this many sub-samples per voxel axis when voxels are larger than detector pixels
_MAX_SUBSAMPLES = 4
_POINT_CHUNK = 2_000_000


def project_label_volume(geometry: ProjectionGeometry, label_volume: object, affine: object = None) -> np.ndarray:
    """(H, W) uint8 image of the label seen first from the source at each detector pixel (0: none).

    Raises:
        TypeError, ValueError: see :func:`~transvert_monai.outputs.volume.as_label_volume`; a voxel behind the source.
    """
    data, aff = as_label_volume(label_volume, affine)
    h, w = geometry.detector_size_px
    idx = torch.from_numpy(np.argwhere(data > 0)).to(torch.float64)
    out = torch.full((h * w,), torch.iinfo(torch.int64).max, dtype=torch.int64)
    if idx.numel():
        a = torch.from_numpy(aff)
        # sub-samples per axis so that a voxel's footprint on the detector is at most one pixel per sample
        voxel_mm = float(torch.linalg.norm(a[:3, :3], dim=0).max())
        nearest = float(
            (
                (idx[:: max(1, len(idx) // 1000)] @ a[:3, :3].T + a[:3, 3] - geometry.source_mm)
                @ geometry.beam_direction
            ).min()
        )
        footprint_px = (
            voxel_mm * geometry.source_to_detector_mm / max(nearest, 1e-6) / min(geometry.detector_spacing_mm)
        )
        k = min(_MAX_SUBSAMPLES, max(1, math.ceil(footprint_px)))
        steps = (torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5
        offsets = torch.cartesian_prod(steps, steps, steps).reshape(-1, 3)
        labels = torch.from_numpy(data[data > 0].astype(np.int64))
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
    from PIL import Image

    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if img.shape != tuple(geometry.detector_size_px):
        raise ValueError(
            f"the image ({img.shape}) must be the detector of the geometry ({geometry.detector_size_px}); "
            "pass the radiograph resampled to the geometry's spacing (radiograph.resampled(s).pixels with radiograph.geometry(s))."
        )
    if not 0 <= alpha <= 1:
        raise ValueError(f"`alpha` must be within [0, 1], got {alpha!r}.")
    seen = project_label_volume(geometry, label_volume, affine)
    rgb = np.repeat(_grey(img.astype(np.float64))[..., None], 3, axis=-1)
    for label in (int(v) for v in np.unique(seen) if v):
        m = seen == label
        rgb[m] = (1 - alpha) * rgb[m] + alpha * label_colour(label)
    if points_px is not None:
        h, w = img.shape
        for r, c in torch.as_tensor(points_px, dtype=torch.float64).reshape(-1, 2).round().long().tolist():
            rgb[max(r - 1, 0) : min(r + 2, h), max(c - 1, 0) : min(c + 2, w)] = (1.0, 1.0, 1.0)
    png = Image.fromarray((rgb * 255).round().astype(np.uint8))
    return atomic_write(path, lambda tmp: png.save(tmp, format="PNG"))
