"""The network input at deployment: per vertebra, the packed patches of a lateral and an AP radiograph.

Same layout as the training samples (:mod:`transvert_monai.transforms.sample.functional`):
``image`` (B, 4, P, P) = ``[lat, lat_voi, ap, ap_voi]``, image channels z-scored per patch, VOI
channels a disc of ``voi_radius_px`` (default 1) around the centroid. Steps per view:

1. resample the radiograph to square pixels of the working spacing (1.8 mm by default), keeping
   the detector centre fixed (:meth:`transvert_monai.io.Radiograph.resampled`);
2. map each 2D centroid from the file's pixels to the working pixels (undoing a left–right flip);
3. cut a ``P × P`` patch aligned to the working pixel grid around it, exactly as the training DRR
   patches (:func:`~transvert_monai.transforms.drr.functional.patch_origin`,
   :func:`~transvert_monai.transforms.drr.functional.patch_pixels`); pixels outside the image are 0
   (before the z-score);
4. render the VOI disc at the centroid and z-score the patch.

The geometry of each view is the nominal preset with the isocentre at the world origin
(:meth:`transvert_monai.io.Radiograph.geometry`); the patch pixels are detector pixels of that geometry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from transvert_monai.data.labels import label_to_name
from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.io.centroids2d import Centroids2D, parse_centroids_2d, read_centroids_2d
from transvert_monai.io.radiograph import DEFAULT_WORKING_SPACING_MM, Radiograph, check_pair
from transvert_monai.transforms.drr.functional import patch_origin, patch_pixels
from transvert_monai.transforms.sample.functional import zscore
from transvert_monai.transforms.voi.functional import render_voi_disc

__all__ = ["RadiographSamples", "as_centroids_2d", "cut_patches", "extract_radiograph_samples"]

logger = logging.getLogger(__name__)


@dataclass
class RadiographSamples:
    """The network inputs of the vertebrae of one radiograph pair, stacked along the first dimension.

    Attributes:
        image: (B, 4, P, P) float32 ``[lat, lat_voi, ap, ap_voi]``.
        labels: the VerSe indices, cranial to caudal.
        lateral_geometry: the lateral view at the working spacing.
        ap_geometry: the AP view at the working spacing.
        centroid_px: (B, 2, 2) float64 (row, col) of the centroids in the lateral and AP working pixels.
        patch_origin_px: (B, 2, 2) float64 top-left working pixel of the lateral and AP patches.
        lateral_image: (H, W) float32 lateral radiograph at the working spacing.
        ap_image: (H, W) float32 AP radiograph at the working spacing.
        missing: {VerSe index: view} of the vertebrae skipped because one view has no centroid.
    """

    image: torch.Tensor
    labels: list[int]
    lateral_geometry: ProjectionGeometry
    ap_geometry: ProjectionGeometry
    centroid_px: torch.Tensor
    patch_origin_px: torch.Tensor
    lateral_image: torch.Tensor
    ap_image: torch.Tensor
    missing: dict[int, str] = field(default_factory=dict)


def as_centroids_2d(centroids: Centroids2D | Mapping | str | os.PathLike) -> Centroids2D:
    """A :class:`Centroids2D` from itself, a loaded JSON object, or a path to a JSON file.

    Raises:
        TypeError: anything else.
    """
    if isinstance(centroids, Centroids2D):
        return centroids
    if isinstance(centroids, Mapping):
        return parse_centroids_2d(centroids)
    if isinstance(centroids, (str, os.PathLike)):
        return read_centroids_2d(centroids)
    raise TypeError(
        f"2D centroids must be a Centroids2D, a JSON object or a path to a JSON file, got {type(centroids).__name__}."
    )


def cut_patches(
    image: torch.Tensor, centres_rc: torch.Tensor, patch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel-grid-aligned patches around ``centres_rc``, zero outside the image.

    Args:
        image: (H, W) image.
        centres_rc: (B, 2) (row, col) in the image's pixels.
        patch_size: patch side in pixels.

    Returns:
        ``(patches, origins, pixels)``: (B, P, P) float32, the (B, 2) top-left pixels, and the
        (B, P, P, 2) (row, col) of every patch pixel (float64).
    """
    size = (int(patch_size), int(patch_size))
    origins = patch_origin(torch.as_tensor(centres_rc, dtype=torch.float64).reshape(-1, 2), size)
    pixels = patch_pixels(origins, size)
    idx = pixels.long()
    h, w = image.shape
    inside = (idx[..., 0] >= 0) & (idx[..., 0] < h) & (idx[..., 1] >= 0) & (idx[..., 1] < w)
    values = image[idx[..., 0].clamp(0, h - 1), idx[..., 1].clamp(0, w - 1)]
    return torch.where(inside, values, torch.zeros_like(values)).to(torch.float32), origins, pixels


def extract_radiograph_samples(
    lateral: Radiograph,
    ap: Radiograph,
    centroids: Centroids2D | Mapping | str | os.PathLike,
    working_spacing_mm: float = DEFAULT_WORKING_SPACING_MM,
    patch_size: int = 64,
    voi_radius_px: float = 1.0,
    labels: Sequence[int] | None = None,
) -> RadiographSamples:
    """Build the packed network input of every vertebra annotated in both views.

    Args:
        lateral: the lateral radiograph as read (:func:`transvert_monai.io.read_radiograph`).
        ap: the AP radiograph as read.
        centroids: 2D centroids in the files' original pixels (:class:`transvert_monai.io.Centroids2D`,
            its JSON object, or the JSON file).
        working_spacing_mm: detector pixel spacing of the network input (training used 1.8 mm).
        patch_size: patch side in working pixels (training used 64).
        voi_radius_px: VOI disc radius in working pixels (the paper uses 1).
        labels: which vertebrae, in output order (default: all annotated in both views, cranial to caudal).

    Returns:
        :class:`RadiographSamples`.

    Raises:
        ValueError: views not (lateral, AP) or of different patients (see :func:`transvert_monai.io.check_pair`),
            a centroid outside its image, a non-positive ``patch_size``, a negative radius.
        KeyError: a requested label without centroids in both views.
    """
    if int(patch_size) != patch_size or patch_size < 1:
        raise ValueError(f"`patch_size` must be a positive whole number of pixels, got {patch_size!r}.")
    if voi_radius_px < 0:
        raise ValueError(f"`voi_radius_px` must be non-negative, got {voi_radius_px!r}.")
    check_pair(lateral, ap)
    centroids = as_centroids_2d(centroids)
    centroids.check_inside({"lateral": lateral.shape, "ap": ap.shape})
    labels = centroids.labels if labels is None else [int(v) for v in labels]
    per_view = centroids.as_tensors(labels)
    images, vois, origins, centres, working = [], [], [], [], []
    for radiograph, file_rc in zip((lateral, ap), per_view):
        # file pixels → image pixels (a flip) → working pixels (centre-fixed rescaling)
        rc = radiograph.to_working_px(radiograph.file_to_image_px(file_rc), working_spacing_mm)
        resampled = radiograph.resampled(working_spacing_mm)
        patches, origin, pixels = cut_patches(resampled.pixels, rc, patch_size)
        h, w = resampled.shape
        partial = ((origin < 0) | (origin + patch_size > torch.tensor([h, w]))).any(-1)
        for label in (v for v, p in zip(labels, partial) if p):
            logger.info(
                "the %s patch of %s reaches past the image border; zero padded.", radiograph.view, label_to_name(label)
            )
        images.append(zscore(patches))
        vois.append(render_voi_disc(rc, pixels, voi_radius_px))
        origins.append(origin)
        centres.append(rc)
        working.append(resampled.pixels)
    image = torch.stack((images[0], vois[0], images[1], vois[1]), dim=1).to(torch.float32)
    return RadiographSamples(
        image=image,
        labels=labels,
        lateral_geometry=lateral.geometry(working_spacing_mm),
        ap_geometry=ap.geometry(working_spacing_mm),
        centroid_px=torch.stack(centres, dim=1),
        patch_origin_px=torch.stack(origins, dim=1),
        lateral_image=working[0],
        ap_image=working[1],
        missing=dict(centroids.missing),
    )
