"""The network input at deployment: per vertebra, the packed patches of a lateral and an AP radiograph.

Same layout as the training samples (:mod:`transvert_monai.transforms.sample.functional`):
``image`` (B, 4, P, P) = ``[lat, lat_voi, ap, ap_voi]``, image channels z-scored per patch, VOI
channels the grid's VOI disc at the patch centre. All sizes come from the model's
:class:`~transvert_monai.geometry.SamplingGrid`. Steps:

1. resample each radiograph to square working pixels that span ``grid.pixel_mm_at_vertebra`` at
   its own isocentre (``1.5 mm · SDD / SID``; 1.8 mm at 1800/1500 mm), keeping the detector centre
   fixed (:meth:`transvert_monai.io.Radiograph.resampled`, area averaging);
2. map each 2D centroid from the file's pixels to the working pixels (undoing a left–right flip);
3. triangulate each vertebra's 3D centre from its two centroids (cone beam), which gives its
   distance ``d`` from each source;
4. cut a scale-true ``P × P`` patch centred on the centroid whose pixels span
   ``grid.pixel_mm_at_vertebra`` at the vertebra (``· SDD / d`` on the detector), sampled
   bilinearly, exactly as the training DRR patches are rendered
   (:func:`~transvert_monai.geometry.scale_true_patch_pixels`); pixels outside the image are 0
   (before the z-score);
5. render the VOI disc at the patch centre and z-score the patch.

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
import torch.nn.functional as F

from transvert_monai.geometry import ProjectionGeometry, SamplingGrid, scale_true_patch_pixels, triangulate
from transvert_monai.io.centroids2d import Centroids2D, parse_centroids_2d, read_centroids_2d
from transvert_monai.io.radiograph import Radiograph, check_pair
from transvert_monai.transforms.sample.functional import patch_voi_disc, zscore

__all__ = ["RadiographSamples", "as_centroids_2d", "sample_patches", "extract_radiograph_samples"]

logger = logging.getLogger(__name__)


@dataclass
class RadiographSamples:
    """The network inputs of the vertebrae of one radiograph pair, stacked along the first dimension.

    Attributes:
        image: (B, 4, P, P) float32 ``[lat, lat_voi, ap, ap_voi]``.
        labels: the VerSe indices, cranial to caudal.
        lateral_geometry: the lateral view at its working spacing.
        ap_geometry: the AP view at its working spacing.
        centroid_px: (B, 2, 2) float64 (row, col) of the centroids in the lateral and AP working pixels.
        patch_origin_px: (B, 2, 2) float64 working pixel of the first (top-left) pixel of each patch.
        patch_step_px: (B, 2) float64 working pixels per patch pixel, lateral and AP (scale-true step).
        lateral_image: (H, W) float32 lateral radiograph at the working spacing.
        ap_image: (H, W) float32 AP radiograph at the working spacing.
        missing: {VerSe index: view} of the vertebrae skipped because one view has no centroid.
        outside_fraction: (B, 2) share of each vertebra's lateral and AP patch lying outside its radiograph.
        input_checks: findings about the inputs (:class:`~transvert_monai.io.plausibility.InputCheck`): the
            radiographs' own and the centroids' spacing (see :func:`~transvert_monai.io.plausibility.check_centroid_layout`).
    """

    image: torch.Tensor
    labels: list[int]
    lateral_geometry: ProjectionGeometry
    ap_geometry: ProjectionGeometry
    centroid_px: torch.Tensor
    patch_origin_px: torch.Tensor
    patch_step_px: torch.Tensor
    lateral_image: torch.Tensor
    ap_image: torch.Tensor
    missing: dict[int, str] = field(default_factory=dict)
    outside_fraction: torch.Tensor | None = None
    input_checks: list = field(default_factory=list)


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


def sample_patches(image: torch.Tensor, pixels_rc: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` (H, W) at fractional pixels ``pixels_rc`` (B, P, P, 2); 0 outside the image."""
    h, w = image.shape
    rc = torch.as_tensor(pixels_rc, dtype=torch.float64)
    # grid_sample wants (x, y) = (col, row) normalised to [-1, 1] over the pixel centres
    norm = torch.stack((rc[..., 1] * 2 / max(w - 1, 1) - 1, rc[..., 0] * 2 / max(h - 1, 1) - 1), dim=-1)
    src = image.to(torch.float32)[None, None].expand(rc.shape[0], 1, h, w)
    out = F.grid_sample(src, norm.to(torch.float32), mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0]


def extract_radiograph_samples(
    lateral: Radiograph,
    ap: Radiograph,
    centroids: Centroids2D | Mapping | str | os.PathLike,
    grid: SamplingGrid | None = None,
    labels: Sequence[int] | None = None,
) -> RadiographSamples:
    """Build the packed network input of every vertebra annotated in both views (see the module docstring).

    Args:
        lateral: the lateral radiograph as read (:func:`transvert_monai.io.read_radiograph`).
        ap: the AP radiograph as read.
        centroids: 2D centroids in the files' original pixels (:class:`transvert_monai.io.Centroids2D`,
            its JSON object, or the JSON file).
        grid: the model's sampling grid (patch size, pixel length at the vertebra, VOI disc); default
            ``SamplingGrid()``.
        labels: which vertebrae, in output order (default: all annotated in both views, cranial to caudal).

    Returns:
        :class:`RadiographSamples`.

    Raises:
        ValueError: views not (lateral, AP) or of different patients (see :func:`transvert_monai.io.check_pair`),
            a centroid outside its image, vertebrae out of cranio-caudal order in a view, rays of a vertebra
            that meet behind a source.
        KeyError: a requested label without centroids in both views.
    """
    grid = SamplingGrid() if grid is None else grid
    check_pair(lateral, ap)
    centroids = as_centroids_2d(centroids)
    centroids.check_inside({"lateral": lateral.shape, "ap": ap.shape})
    labels = centroids.labels if labels is None else [int(v) for v in labels]
    per_view = centroids.as_tensors(labels)
    views = (lateral, ap)
    checks = [c for r in views for c in r.input_checks] + _centroid_layout_checks(views, per_view, labels, centroids)
    spacings = [grid.nominal_detector_spacing_mm(r.source_to_detector_mm, r.source_to_patient_mm) for r in views]
    geometries = [r.geometry(ws) for r, ws in zip(views, spacings)]
    # file pixels → image pixels (a flip) → working pixels (centre-fixed rescaling)
    working_rc = [r.to_working_px(r.file_to_image_px(rc), ws) for r, rc, ws in zip(views, per_view, spacings)]
    centres_mm, _ = triangulate(geometries, working_rc)
    images, vois, origins, steps, working, outside = [], [], [], [], [], []
    disc = patch_voi_disc(grid.patch_size, grid.voi_radius_px)
    for radiograph, geometry, rc, ws in zip(views, geometries, working_rc, spacings):
        _, depth = geometry.project(centres_mm, return_depth=True)
        pixels = scale_true_patch_pixels(geometry, rc, depth, grid.patch_size, grid.pixel_mm_at_vertebra)
        resampled = radiograph.resampled(ws)
        h, w = resampled.shape
        beyond = (pixels < -0.5).any(-1) | (pixels > torch.tensor([h, w], dtype=pixels.dtype) - 0.5).any(-1)
        fraction = beyond.flatten(1).to(torch.float32).mean(1)
        outside.append(fraction)
        for label, share in zip(labels, fraction.tolist()):
            if share > 0:
                logger.info(
                    "%.0f%% of the %s patch of %s lies past the image border; zero padded.",
                    100 * share, radiograph.view, label_to_name(label),
                )  # fmt: skip
        images.append(zscore(sample_patches(resampled.pixels, pixels)))
        vois.append(disc.expand(len(labels), -1, -1))
        origins.append(pixels[:, 0, 0])
        steps.append(pixels[:, 1, 1, 0] - pixels[:, 0, 0, 0])
        working.append(resampled.pixels)
    image = torch.stack((images[0], vois[0], images[1], vois[1]), dim=1).to(torch.float32)
    return RadiographSamples(
        image=image,
        labels=labels,
        lateral_geometry=geometries[0],
        ap_geometry=geometries[1],
        centroid_px=torch.stack(working_rc, dim=1),
        patch_origin_px=torch.stack(origins, dim=1),
        patch_step_px=torch.stack(steps, dim=1),
        lateral_image=working[0],
        ap_image=working[1],
        missing=dict(centroids.missing),
        outside_fraction=torch.stack(outside, dim=1),
        input_checks=checks,
    )


def _centroid_layout_checks(
    views: Sequence[Radiograph], per_view: Sequence[torch.Tensor], labels: Sequence[int], centroids: Centroids2D
) -> list:
    """Cranio-caudal order and spacing of the centroids in each view, at the patient (file rows → mm / magnification)."""
    from transvert_monai.io.plausibility import check_centroid_layout

    rows_mm = {}
    for radiograph, rc in zip(views, per_view):
        magnification = radiograph.source_to_detector_mm / radiograph.source_to_patient_mm
        centre = (radiograph.shape[0] - 1) / 2
        rows = (rc[:, 0] - centre) * radiograph.pixel_spacing_mm[0] / magnification
        rows_mm[radiograph.view] = dict(zip(labels, rows.tolist()))
    where = f"2D centroids {centroids.source}" if centroids.source else "2D centroids"
    return check_centroid_layout(rows_mm, {v: label_to_name(v) for v in labels}, where)
