"""Training samples of TransVert: per vertebra, two DRR patches with their VOI annotations and the 3D target.

One call renders all vertebrae of a case with one acquisition (one lateral and one AP view), the
way a patient's radiograph pair shows every vertebra with the same pose. The patches are windows
of the full-geometry projection: only the patch's rays are cast, through the whole CT, from the
one source position, so vertebrae far from the central ray are seen obliquely and magnified as in
a long standing radiograph.

Sample layout:

* ``image`` (B, 4, P, P): ``[lat, lat_voi, ap, ap_voi]``; image channels z-scored per patch
  (paper §3.1), VOI channels 0/1.
* ``label`` (B, 1, S, S, S): the vertebra's mask on its view-aligned grid (see
  :func:`transvert_monai.geometry.view_aligned_frame`), centred on its 3D centroid, in the grid's
  target coding (0/1 occupancy, or 0 and the VerSe index).

Sizes come from one :class:`~transvert_monai.geometry.SamplingGrid` (default: 64-pixel patches, a 64³
target of 1.5 mm voxels). Patches are scale-true: each vertebra's patch pixel spans
``grid.pixel_mm_at_vertebra`` (1.5 mm) at the vertebra's centroid, i.e. ``1.5 mm · SDD / d`` on the
detector for a centroid at distance ``d`` from the source, so image and target sample the anatomy
alike whatever the magnification; the patch is centred on the projected centroid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import (
    ProjectionGeometry,
    SamplingGrid,
    scale_true_patch_pixels,
    view_aligned_frame,
    world_to_voxel,
)
from transvert_monai.transforms.drr.functional import AttenuationVolume
from transvert_monai.transforms.voi.functional import (
    VOIMode,
    approximate_body_mask,
    crop_vertebra_target,
    render_voi_disc,
    render_voi_shadow,
)

__all__ = ["VertebraSamples", "zscore", "patch_voi_disc", "extract_vertebra_samples"]


@dataclass
class VertebraSamples:
    """Samples of the vertebrae of one case, stacked along the first dimension.

    Attributes:
        image: (B, 4, P, P) float32 network input ``[lat, lat_voi, ap, ap_voi]``.
        label: (B, 1, S, S, S) float32 targets in the grid's coding; None when not requested.
        target_affine: (B, 4, 4) float64 voxel → world maps of the targets' view-aligned grids.
        patch_origin_px: (B, 2, 2) detector pixel (row, col) of the first patch pixel, lateral and AP.
        centroid_px: (B, 2, 2) projected centroid (row, col) in the lateral and AP detectors.
        labels: the VerSe indices, in order.
        patch_step_px: (B, 2) detector pixels per patch pixel in the lateral and AP views (the
            scale-true step, ``pixel_mm_at_vertebra · magnification / detector spacing``).
    """

    image: torch.Tensor
    label: torch.Tensor | None
    target_affine: torch.Tensor
    patch_origin_px: torch.Tensor
    centroid_px: torch.Tensor
    labels: list[int]
    patch_step_px: torch.Tensor | None = None


def zscore(image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-image z-score over the last two dimensions; a constant image becomes zeros."""
    mean = image.mean(dim=(-2, -1), keepdim=True)
    std = image.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (image - mean) / std.clamp_min(eps)


def patch_voi_disc(patch_size: int, radius_px: float) -> torch.Tensor:
    """The VOI disc of a patch centred on its centroid: 1 within ``radius_px`` patch pixels of the centre."""
    centre = torch.full((2,), (patch_size - 1) / 2.0, dtype=torch.float64)
    axis = torch.arange(patch_size, dtype=torch.float64)
    pixels = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)
    return render_voi_disc(centre, pixels, radius_px)


def _voi(
    mode: VOIMode,
    mask: torch.Tensor | None,
    body_mask: torch.Tensor | None,
    affine: torch.Tensor,
    label: int,
    geometry: ProjectionGeometry,
    lateral: ProjectionGeometry,
    pixels: torch.Tensor,
    radius_px: float,
) -> torch.Tensor:
    if mode == VOIMode.NONE:
        return torch.zeros(pixels.shape[:-1], dtype=torch.float32)
    if mode == VOIMode.DISC:
        return patch_voi_disc(pixels.shape[0], radius_px)
    if mask is None:
        raise ValueError(f"VOI mode '{mode.value}' needs the vertebra mask; pass `mask` (or use mode 'disc').")
    if mode == VOIMode.VERTEBRA:
        return render_voi_shadow(mask == label, affine, geometry, pixels)
    body = body_mask == label if body_mask is not None else approximate_body_mask(mask == label, affine, lateral.rotation[:, 0])
    return render_voi_shadow(body, affine, geometry, pixels)


def extract_vertebra_samples(
    mu: torch.Tensor | AttenuationVolume,
    affine: torch.Tensor,
    centroids_mm: Mapping[int, torch.Tensor],
    lateral: ProjectionGeometry,
    ap: ProjectionGeometry,
    mask: torch.Tensor | None = None,
    labels: Sequence[int] | None = None,
    grid: SamplingGrid | None = None,
    body_mask: torch.Tensor | None = None,
    with_target: bool = True,
    plane_binning: int = 2,
    normalize: bool = True,
) -> VertebraSamples:
    """Render the training (or evaluation) samples of the given vertebrae.

    Args:
        mu: (X, Y, Z) linear attenuation per mm (``hu_to_mu`` of the CT), or a prepared ``AttenuationVolume``.
        affine: 4×4 voxel → world (RAS mm) map shared by ``mu``, ``mask`` and ``body_mask``.
        centroids_mm: {VerSe index: (3,) world centroid}; the vertebral-body centroid places the
            patch, the VOI disc and the target.
        lateral: lateral view (with its pose).
        ap: AP view (with its pose).
        mask: (X, Y, Z) vertebra label map (VerSe indices); needed for the target and the shadow VOIs.
        labels: which vertebrae (default: all in ``centroids_mm``), in output order.
        grid: the sampling grid (patch and target sizes, pixel length at the vertebra, VOI, target
            coding); default ``SamplingGrid()``.
        body_mask: optional (X, Y, Z) label map of vertebral bodies for ``"body"``; without it the
            body is approximated (see ``approximate_body_mask``).
        with_target: also crop the 3D targets.
        plane_binning: CT planes averaged per ray sample (see ``AttenuationVolume``); ignored when
            ``mu`` is already an ``AttenuationVolume``.
        normalize: z-score the image channels per patch (paper §3.1). ``False`` leaves the raw line
            integrals for an appearance augmentation that z-scores after it (``RandDRRAppearanced``).

    Returns:
        :class:`VertebraSamples`.

    Raises:
        KeyError: a requested label has no centroid.
        ValueError: a target is requested without a mask.
        TransVertInputError: a centroid outside the CT's field of view, or a vertebra's target is
            empty (its centroid is not on its mask, or the mask has no such label).
    """
    grid = SamplingGrid() if grid is None else grid
    mode = VOIMode(grid.voi_mode)
    labels = [int(v) for v in (sorted(centroids_mm) if labels is None else labels)]
    missing = [v for v in labels if v not in centroids_mm]
    if missing:
        raise KeyError(f"no centroid for vertebrae {missing}; the centroids hold {sorted(centroids_mm)}.")
    if with_target and mask is None:
        raise ValueError("the 3D target needs the vertebra `mask`; pass it or set `with_target=False`.")
    centres = torch.stack([torch.as_tensor(centroids_mm[v], dtype=torch.float64) for v in labels])  # (B, 3)
    volume = mu if isinstance(mu, AttenuationVolume) else AttenuationVolume(mu, affine, plane_binning)
    idx = world_to_voxel(affine, centres)
    outside = [v for v, i in zip(labels, idx) if ((i < -0.5) | (i > torch.tensor(volume.shape) - 0.5)).any()]
    if outside:
        raise TransVertInputError(
            f"the centroids of vertebrae {outside} lie outside the CT's field of view; "
            "check that the centroid file belongs to this CT and is in world (RAS) millimetres."
        )
    images, vois, origins, centre_px, steps = [], [], [], [], []
    for geometry in (lateral, ap):
        rc, depth = geometry.project(centres, return_depth=True)  # (B, 2), (B,)
        pixels = scale_true_patch_pixels(geometry, rc, depth, grid.patch_size, grid.pixel_mm_at_vertebra)
        integrals = volume.line_integrals(geometry.source_mm, geometry.pixel_to_world(pixels))
        images.append(zscore(integrals) if normalize else integrals)
        vois.append(
            torch.stack(
                [_voi(mode, mask, body_mask, affine, v, geometry, lateral, pixels[i], grid.voi_radius_px) for i, v in enumerate(labels)]
            ).to(images[-1].device)
        )
        origins.append(pixels[:, 0, 0])
        centre_px.append(rc)
        steps.append(pixels[:, 1, 1, 0] - pixels[:, 0, 0, 0])
    image = torch.stack((images[0], vois[0], images[1], vois[1]), dim=1).to(torch.float32)
    size = grid.target_size
    target_affine = torch.stack([view_aligned_frame(lateral, ap, c, size, grid.target_spacing_mm) for c in centres])
    label = None
    if with_target and mask is not None:
        targets = []
        for v, ta in zip(labels, target_affine):
            t = crop_vertebra_target(mask, affine, v, ta, (size,) * 3)
            if not t.any():
                raise TransVertInputError(
                    f"the 3D target of vertebra {v} is empty: its centroid is not on its mask or the mask has no label {v}; "
                    "check that the centroids and the mask belong to the same case and grid."
                )
            targets.append(grid.make_target(t))
        label = torch.stack(targets)[:, None]
    return VertebraSamples(
        image=image,
        label=label,
        target_affine=target_affine,
        patch_origin_px=torch.stack(origins, dim=1),
        centroid_px=torch.stack(centre_px, dim=1),
        labels=labels,
        patch_step_px=torch.stack(steps, dim=1),
    )
