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
  :func:`transvert_monai.geometry.view_aligned_frame`), centred on its 3D centroid, values 0 or the
  VerSe index.

Default sizes: 64-pixel patches of 1.8 mm detector pixels and a 64³ target of 1.5 mm voxels.
1.5 mm × 64 = 96 mm holds a lumbar vertebra with its processes (about 90 mm front to back), and
1.8 mm on the detector is 1.5 mm at the isocentre (magnification 1800/1500 = 1.2), so image and
target sample the anatomy alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import ProjectionGeometry, view_aligned_frame, world_to_voxel
from transvert_monai.transforms.drr.functional import AttenuationVolume, patch_origin, patch_pixels
from transvert_monai.transforms.voi.functional import (
    VOIMode,
    approximate_body_mask,
    crop_vertebra_target,
    render_voi_disc,
    render_voi_shadow,
)

__all__ = ["VertebraSamples", "zscore", "extract_vertebra_samples"]


@dataclass
class VertebraSamples:
    """Samples of the vertebrae of one case, stacked along the first dimension.

    Attributes:
        image: (B, 4, P, P) float32 network input ``[lat, lat_voi, ap, ap_voi]``.
        label: (B, 1, S, S, S) float32 targets (0 or the VerSe index); None when not requested.
        target_affine: (B, 4, 4) float64 voxel → world maps of the targets' view-aligned grids.
        patch_origin_px: (B, 2, 2) top-left detector pixel (row, col) of the lateral and AP patches.
        centroid_px: (B, 2, 2) projected centroid (row, col) in the lateral and AP detectors.
        labels: the VerSe indices, in order.
    """

    image: torch.Tensor
    label: torch.Tensor | None
    target_affine: torch.Tensor
    patch_origin_px: torch.Tensor
    centroid_px: torch.Tensor
    labels: list[int]


def zscore(image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-image z-score over the last two dimensions; a constant image becomes zeros."""
    mean = image.mean(dim=(-2, -1), keepdim=True)
    std = image.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (image - mean) / std.clamp_min(eps)


def _voi(
    mode: VOIMode,
    mask: torch.Tensor | None,
    body_mask: torch.Tensor | None,
    affine: torch.Tensor,
    label: int,
    geometry: ProjectionGeometry,
    lateral: ProjectionGeometry,
    centre_rc: torch.Tensor,
    pixels: torch.Tensor,
    radius_px: float,
) -> torch.Tensor:
    if mode == VOIMode.NONE:
        return torch.zeros(pixels.shape[:-1], dtype=torch.float32)
    if mode == VOIMode.DISC:
        return render_voi_disc(centre_rc, pixels, radius_px)
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
    patch_size: int = 64,
    target_size: int = 64,
    target_spacing_mm: float = 1.5,
    voi_mode: VOIMode | str = VOIMode.DISC,
    voi_radius_px: float = 1.0,
    body_mask: torch.Tensor | None = None,
    with_target: bool = True,
    plane_binning: int = 2,
) -> VertebraSamples:
    """Render the training (or evaluation) samples of the given vertebrae.

    Args:
        mu: (X, Y, Z) linear attenuation per mm (``hu_to_mu`` of the CT), or a prepared ``AttenuationVolume``.
        affine: 4×4 voxel → world (RAS mm) map shared by ``mu``, ``mask`` and ``body_mask``.
        centroids_mm: {VerSe index: (3,) world centroid}; the centroid places the VOI disc and the target.
        lateral: lateral view (with its pose).
        ap: AP view (with its pose).
        mask: (X, Y, Z) vertebra label map (VerSe indices); needed for the target and the shadow VOIs.
        labels: which vertebrae (default: all in ``centroids_mm``), in output order.
        patch_size: patch side in detector pixels.
        target_size: target grid side in voxels.
        target_spacing_mm: isotropic target voxel size.
        voi_mode: ``"disc"`` (C2V), ``"body"`` (B2V), ``"vertebra"`` (V2V) or ``"none"``.
        voi_radius_px: disc radius for ``"disc"``.
        body_mask: optional (X, Y, Z) label map of vertebral bodies for ``"body"``; without it the
            body is approximated (see ``approximate_body_mask``).
        with_target: also crop the 3D targets.
        plane_binning: CT planes averaged per ray sample (see ``AttenuationVolume``); ignored when
            ``mu`` is already an ``AttenuationVolume``.

    Returns:
        :class:`VertebraSamples`.

    Raises:
        KeyError: a requested label has no centroid.
        ValueError: a target is requested without a mask.
        TransVertInputError: a centroid outside the CT's field of view, or a vertebra's target is
            empty (its centroid is not on its mask, or the mask has no such label).
    """
    from monai.utils import look_up_option

    mode = look_up_option(voi_mode, VOIMode)
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
    size = (patch_size, patch_size)
    images, vois, origins, centre_px = [], [], [], []
    for geometry in (lateral, ap):
        rc = geometry.project(centres)  # (B, 2)
        origin = patch_origin(rc, size)
        pixels = patch_pixels(origin, size)  # (B, P, P, 2)
        images.append(zscore(volume.line_integrals(geometry.source_mm, geometry.pixel_to_world(pixels))))
        vois.append(
            torch.stack(
                [
                    _voi(mode, mask, body_mask, affine, v, geometry, lateral, rc[i], pixels[i], voi_radius_px)
                    for i, v in enumerate(labels)
                ]
            ).to(images[-1].device)
        )
        origins.append(origin)
        centre_px.append(rc)
    image = torch.stack((images[0], vois[0], images[1], vois[1]), dim=1).to(torch.float32)
    target_affine = torch.stack([view_aligned_frame(lateral, ap, c, target_size, target_spacing_mm) for c in centres])
    label = None
    if with_target and mask is not None:
        targets = []
        for v, ta in zip(labels, target_affine):
            t = crop_vertebra_target(mask, affine, v, ta, (target_size,) * 3)
            if not t.any():
                raise TransVertInputError(
                    f"the 3D target of vertebra {v} is empty: its centroid is not on its mask or the mask has no label {v}; "
                    "check that the centroids and the mask belong to the same case and grid."
                )
            targets.append(t)
        label = torch.stack(targets)[:, None]
    return VertebraSamples(
        image=image,
        label=label,
        target_affine=target_affine,
        patch_origin_px=torch.stack(origins, dim=1),
        centroid_px=torch.stack(centre_px, dim=1),
        labels=labels,
    )
