"""From per-vertebra shapes to the standing spine: 3D placement of each vertebra, then stacking into one label map.

Placement (paper §3.2). Each vertebra's 3D centre comes from its 2D centroids in the two views:

* ``cone_beam`` (default): least-squares intersection of the two rays from each view's source
  through the centroid (:func:`transvert_monai.geometry.triangulate`); exact for any position in
  the field of view. The residual is the root-mean-square distance from the centre to the two
  rays — zero when they meet, large when the views disagree (patient moved between exposures, a
  mislabelled centroid, wrong distances).
* ``orthographic`` (the paper's rule, for comparison): superior–inferior and anterior–posterior
  from the lateral image, left–right from the AP image, each as the pixel offset from the
  principal point times the pixel spacing divided by the isocentre magnification ``SDD / SID``.
  It ignores the divergence of the beam, so vertebrae far from the central ray or off the
  isocentre plane are misplaced. Its residual is half the difference between the two views'
  superior–inferior readings (the same quantity as the cone-beam residual for a vertical disagreement).

The vertebra's grid is the view-aligned frame centred on its centre
(:func:`transvert_monai.geometry.view_aligned_frame`), the grid the network predicts on.

Stacking. One RAS-aligned output grid at ``spacing_mm`` covers every vertebra grid plus
``margin_mm``. Each prediction is binarised at half its index
(:func:`transvert_monai.metrics.binarize_prediction`), resampled into the output grid through the
affines (trilinear, then ≥ 0.5, as :func:`~transvert_monai.transforms.voi.crop_vertebra_target`),
and written with its VerSe index. **Overlap rule:** where several vertebrae claim a voxel, the one
whose prediction exceeds its threshold by the larger margin relative to its index wins (the
largest trilinear ``pred / index − 1/2``); on a tie (e.g. two ``{0, i}`` targets) the vertebra whose
centre is nearer wins.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.utils import StrEnum, look_up_option

from transvert_monai.data.labels import is_vertebra_label, label_to_name
from transvert_monai.geometry import (
    ProjectionGeometry,
    as_affine,
    box_corners_mm,
    triangulate,
    view_aligned_axes,
    view_aligned_frame,
)
from transvert_monai.resources import check_memory
from transvert_monai.metrics.binarize import binarize_prediction

__all__ = [
    "Placement",
    "VertebraPlacement",
    "orthographic_centres",
    "triangulate_centres",
    "place_vertebrae",
    "stack_vertebrae",
    "estimate_stack_bytes",
]

logger = logging.getLogger(__name__)

# scores closer than this count as a tie (prediction units relative to the index)
_TIE = 1e-6


class Placement(StrEnum):
    """How a vertebra's 3D centre is found from its two 2D centroids."""

    CONE_BEAM = "cone_beam"  #: least-squares ray intersection with the views' cone-beam geometry
    ORTHOGRAPHIC = "orthographic"  #: the paper's rule: pixel offsets divided by the isocentre magnification


@dataclass
class VertebraPlacement:
    """Where the vertebrae go.

    Attributes:
        centres_mm: (B, 3) float64 world (RAS mm) centres.
        residual_mm: (B,) float64 disagreement of the two views (see the module docstring).
        affines: (B, 4, 4) float64 voxel → world maps of the vertebrae's view-aligned grids.
        placement: the rule used.
    """

    centres_mm: torch.Tensor
    residual_mm: torch.Tensor
    affines: torch.Tensor
    placement: str


def _points(rc: torch.Tensor | Sequence, name: str) -> torch.Tensor:
    p = torch.as_tensor(rc, dtype=torch.float64)
    p = p.reshape(1, 2) if p.shape == (2,) else p
    if p.ndim != 2 or p.shape[1] != 2 or not torch.isfinite(p).all():
        raise ValueError(f"`{name}` must be finite (B, 2) (row, col) pixels, got shape {tuple(p.shape)}.")
    return p


def orthographic_centres(
    lateral: ProjectionGeometry, ap: ProjectionGeometry, lateral_rc: torch.Tensor, ap_rc: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's orthographic placement (see the module docstring).

    Args:
        lateral, ap: the two views (nominally orthogonal).
        lateral_rc, ap_rc: (B, 2) (row, col) of the centroids in each view's pixels.

    Returns:
        ``(centres_mm, residual_mm)``: (B, 3) and (B,) float64.
    """
    lat_rc, ap_rc = _points(lateral_rc, "lateral_rc"), _points(ap_rc, "ap_rc")

    def offsets_mm(g: ProjectionGeometry, rc: torch.Tensor) -> torch.Tensor:
        # pixel offset from the principal point, in mm at the isocentre plane
        return (
            (rc - torch.tensor(g.principal_point_px, dtype=torch.float64))
            * torch.tensor(g.detector_spacing_mm, dtype=torch.float64)
            / g.magnification
        )

    d_lat, d_ap = offsets_mm(lateral, lat_rc), offsets_mm(ap, ap_rc)
    iso_lat = torch.tensor(lateral.isocentre_mm, dtype=torch.float64)
    iso_ap = torch.tensor(ap.isocentre_mm, dtype=torch.float64)
    e = view_aligned_axes(lateral, ap)  # columns: lateral rows (S→I), lateral columns (P→A), AP columns (R→L)
    ap_u, ap_v = ap.rotation[:, 0], ap.rotation[:, 1]
    # superior–inferior and anterior–posterior from the lateral image
    centres = iso_lat + d_lat[:, :1] * lateral.rotation[:, 1] + d_lat[:, 1:] * lateral.rotation[:, 0]
    # left–right from the AP image
    lr = (iso_ap + d_ap[:, 1:] * ap_u - iso_lat) @ e[:, 2]
    centres = centres + lr[:, None] * e[:, 2]
    si_lat = (iso_lat + d_lat[:, :1] * lateral.rotation[:, 1]) @ e[:, 0]
    si_ap = (iso_ap + d_ap[:, :1] * ap_v) @ e[:, 0]
    return centres, (si_lat - si_ap).abs() / 2


def triangulate_centres(
    lateral: ProjectionGeometry,
    ap: ProjectionGeometry,
    lateral_rc: torch.Tensor,
    ap_rc: torch.Tensor,
    placement: Placement | str = Placement.CONE_BEAM,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D centres of vertebrae from their (B, 2) centroids in the lateral and AP views.

    Returns:
        ``(centres_mm, residual_mm)``: (B, 3) and (B,) float64.

    Raises:
        ValueError: an unknown ``placement``, malformed or mismatched centroids.
    """
    rule = look_up_option(placement, Placement)
    lat_rc, ap_rc = _points(lateral_rc, "lateral_rc"), _points(ap_rc, "ap_rc")
    if lat_rc.shape != ap_rc.shape:
        raise ValueError(
            f"one centroid per vertebra in each view is needed, got {lat_rc.shape[0]} lateral and {ap_rc.shape[0]} AP."
        )
    if rule == Placement.ORTHOGRAPHIC:
        return orthographic_centres(lateral, ap, lat_rc, ap_rc)
    return triangulate((lateral, ap), (lat_rc, ap_rc))


def place_vertebrae(
    lateral: ProjectionGeometry,
    ap: ProjectionGeometry,
    centroid_px: torch.Tensor,
    placement: Placement | str = Placement.CONE_BEAM,
    size: int = 64,
    spacing_mm: float = 1.5,
) -> VertebraPlacement:
    """Centres, residuals and grid affines of vertebrae from their centroids in both views.

    Args:
        lateral, ap: the views (at the pixel spacing of ``centroid_px``).
        centroid_px: (B, 2, 2) (row, col) in the lateral and AP pixels (as ``RadiographSamples.centroid_px``).
        placement: ``"cone_beam"`` or ``"orthographic"``.
        size: side of the vertebra grids in voxels (the network output).
        spacing_mm: voxel size of the vertebra grids (training used 1.5 mm).

    Raises:
        ValueError: ``centroid_px`` not (B, 2, 2), an unknown placement, a bad size or spacing.
    """
    c = torch.as_tensor(centroid_px, dtype=torch.float64)
    if c.ndim != 3 or c.shape[1:] != (2, 2):
        raise ValueError(
            f"`centroid_px` must be (B, 2, 2): per vertebra the lateral and AP (row, col), got {tuple(c.shape)}."
        )
    rule = look_up_option(placement, Placement)
    centres, residual = triangulate_centres(lateral, ap, c[:, 0], c[:, 1], rule)
    affines = torch.stack([view_aligned_frame(lateral, ap, x, size, spacing_mm) for x in centres]).reshape(-1, 4, 4)
    return VertebraPlacement(centres_mm=centres, residual_mm=residual, affines=affines, placement=rule.value)


def _check_stack_inputs(
    shapes: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    affines: torch.Tensor,
    spacing_mm: float,
    margin_mm: float,
) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    pred = torch.as_tensor(shapes).detach().as_subclass(torch.Tensor)
    if pred.ndim == 4:
        pred = pred[:, None]
    if pred.ndim != 5 or pred.shape[1] != 1 or pred.shape[0] < 1:
        raise ValueError(
            f"stack_vertebrae expects one 3D shape per vertebra, (B, 1, S, S, S), got {tuple(pred.shape)}."
        )
    labels = [int(v) for v in torch.as_tensor(labels).reshape(-1).tolist()]
    if len(labels) != pred.shape[0]:
        raise ValueError(f"one label per shape is needed: {pred.shape[0]} shapes, {len(labels)} labels.")
    bad = [v for v in labels if not is_vertebra_label(v)]
    if bad or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct VerSe indices (1–25, 28), got {labels}.")
    aff = torch.as_tensor(affines, dtype=torch.float64)
    if aff.shape != (pred.shape[0], 4, 4):
        raise ValueError(
            f"one 4×4 affine per shape is needed, (B, 4, 4) with B = {pred.shape[0]}, got {tuple(aff.shape)}."
        )
    aff = torch.stack([as_affine(a, name=f"affine of {label_to_name(v)}") for a, v in zip(aff, labels)])
    if not (isinstance(spacing_mm, (int, float)) and math.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"`spacing_mm` must be positive, got {spacing_mm!r}.")
    if not (isinstance(margin_mm, (int, float)) and math.isfinite(margin_mm) and margin_mm >= 0):
        raise ValueError(f"`margin_mm` must be non-negative, got {margin_mm!r}.")
    return pred.to(torch.float32), labels, aff


#: Bytes per voxel of the stacked spine map while it is built and written: the uint8 labels, the float32 winning
#: scores, and the writers' copies (NIfTI, per-label marching cubes).
STACK_BYTES_PER_VOXEL = 16


def _stack_grid(
    affines: torch.Tensor, size: Sequence[int], spacing_mm: float, margin_mm: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(voxel counts (3,), world corner (3,)) of the stacked map around vertebra grids of ``size`` voxels."""
    size_t = torch.tensor([float(s) for s in size], dtype=torch.float64)
    corners = torch.cat([box_corners_mm(a, [-0.5] * 3, (size_t - 0.5).tolist()) for a in affines])
    lo = corners.amin(0) - margin_mm
    n = torch.ceil((corners.amax(0) + margin_mm - lo) / spacing_mm).clamp(1, 2**40).long()
    return n, lo


def estimate_stack_bytes(
    affines: torch.Tensor, size: Sequence[int], spacing_mm: float = 1.0, margin_mm: float = 10.0
) -> float:
    """Memory (bytes) :func:`stack_vertebrae` and the writers need for vertebra grids ``affines`` of ``size`` voxels."""
    n, _ = _stack_grid(torch.as_tensor(affines, dtype=torch.float64).reshape(-1, 4, 4), size, spacing_mm, margin_mm)
    return STACK_BYTES_PER_VOXEL * float(n.to(torch.float64).prod())


def stack_vertebrae(
    shapes: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    affines: torch.Tensor,
    spacing_mm: float = 1.0,
    margin_mm: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste per-vertebra regression outputs into one label map of the spine (see the module docstring).

    Args:
        shapes: (B, 1, S0, S1, S2) regression outputs (or ``{0, i}`` targets) on the vertebrae's grids.
        labels: (B,) VerSe indices.
        affines: (B, 4, 4) voxel → world maps of the grids (:func:`place_vertebrae`).
        spacing_mm: isotropic voxel size of the output grid.
        margin_mm: space added around the union of the vertebra grids.

    Returns:
        ``(label_volume, affine)``: (X, Y, Z) uint8 VerSe indices (0 background) and its float64 4×4
        voxel → world map (RAS-aligned, positive diagonal).

    Raises:
        ValueError: malformed shapes, labels, affines, spacing or margin.
        EnvironmentProblemError: the map would need more memory than is available (checked before allocating).
    """
    pred, labels, aff = _check_stack_inputs(shapes, labels, affines, spacing_mm, margin_mm)
    size = torch.tensor(pred.shape[2:], dtype=torch.float64)
    n, lo = _stack_grid(aff, pred.shape[2:], spacing_mm, margin_mm)
    check_memory(
        STACK_BYTES_PER_VOXEL * float(n.prod()),
        f"the stacked spine map of {int(n[0])} × {int(n[1])} × {int(n[2])} voxels of {spacing_mm:g} mm",
        "use a larger stack spacing (--stack-spacing-mm)",
    )
    out_affine = torch.eye(4, dtype=torch.float64)
    out_affine[:3, :3] *= spacing_mm
    out_affine[:3, 3] = lo + spacing_mm / 2  # centre of voxel 0
    shape = tuple(int(x) for x in n)
    volume = torch.zeros(shape, dtype=torch.uint8)
    best = torch.full(shape, -math.inf, dtype=torch.float32)  # the winning score of each voxel so far
    index = torch.tensor(labels, dtype=torch.float32).reshape(-1, 1, 1, 1, 1)
    masks = binarize_prediction(pred, labels)
    # two channels per vertebra: the binary mask, and the margin above the threshold relative to the index
    fields = torch.cat((masks.to(torch.float32), pred / index - 0.5), dim=1)
    spans = [masks[:, 0].any(dim=tuple(a for a in (1, 2, 3) if a != axis)) for axis in (1, 2, 3)]
    inv_out = torch.linalg.inv(out_affine)
    # vertebra centres in output voxel units (isotropic), and which vertebra owns a label, for ties
    centres = (aff[:, :3, :3] @ ((size - 1) / 2) + aff[:, :3, 3]) @ inv_out[:3, :3].T + inv_out[:3, 3]
    owner_of = torch.full((256,), -1, dtype=torch.long)
    owner_of[torch.tensor(labels)] = torch.arange(len(labels))
    for b, label in enumerate(labels):
        span = [sp[b].nonzero().flatten() for sp in spans]
        if span[0].numel() == 0:
            logger.warning(
                "the shape of %s is empty (nothing above %g); it is left out of the spine.",
                label_to_name(label),
                label / 2,
            )
            continue
        # output voxels that can see this vertebra's foreground (its voxel bounding box + 1 voxel)
        fg_lo, fg_hi = [float(t[0]) - 1 for t in span], [float(t[-1]) + 1 for t in span]
        reach = box_corners_mm(aff[b], fg_lo, fg_hi) @ inv_out[:3, :3].T + inv_out[:3, 3]
        start = torch.floor(reach.amin(0)).long().clamp(min=0)
        stop = torch.minimum(torch.ceil(reach.amax(0)).long() + 1, n)
        if (stop <= start).any():
            continue
        # output voxel → this vertebra's voxel indices, one affine; then grid_sample's normalised
        # coordinates (x = axis 2, y = axis 1, z = axis 0, align_corners: −1 and 1 are the end voxel centres)
        to_src = torch.linalg.inv(aff[b]) @ out_affine
        to_src[:3, 3] += to_src[:3, :3] @ start.to(torch.float64)
        scale = 2.0 / (size - 1).clamp_min(1)
        to_grid = (to_src[:3] * scale[:, None]).flip(0)
        to_grid[:, 3] -= 1.0
        grid = _affine_grid(to_grid.to(torch.float32), (stop - start).tolist())
        sampled = F.grid_sample(
            fields[b : b + 1], grid[None], mode="bilinear", padding_mode="zeros", align_corners=True
        )
        inside, score = sampled[0, 0] >= 0.5, sampled[0, 1]
        region = tuple(slice(int(i), int(j)) for i, j in zip(start, stop))
        cur_best, cur_label = best[region], volume[region]
        wins = inside & (score > cur_best + _TIE)
        tie = inside & ~wins & (score >= cur_best - _TIE)
        if tie.any():  # equal margins: the vertebra whose centre is nearer wins
            at = tie.nonzero()
            pos = (at + start).to(torch.float64)
            rival = centres[owner_of[cur_label[tie].long()]]
            nearer = torch.linalg.norm(pos - centres[b], dim=1) < torch.linalg.norm(pos - rival, dim=1)
            wins[tuple(at[nearer].T)] = True
        volume[region] = torch.where(wins, torch.tensor(label, dtype=torch.uint8), cur_label)
        best[region] = torch.where(wins, score, cur_best)
    return volume, out_affine


def _affine_grid(matrix: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(*shape, K) values of ``matrix @ (i, j, k, 1)`` over the index grid of ``shape``; ``matrix`` is (K, 4)."""
    i, j, k = (torch.arange(int(s), dtype=matrix.dtype) for s in shape)
    return (
        i[:, None, None, None] * matrix[:, 0]
        + j[None, :, None, None] * matrix[:, 1]
        + (k[None, None, :, None] * matrix[:, 2] + matrix[:, 3])
    )
