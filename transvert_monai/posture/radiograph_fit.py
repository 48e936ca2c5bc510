"""2D/3D refinement of a placed CT vertebra's orientation against the two radiographs themselves.

The CT fusion (:func:`transvert_monai.posture.fusion.fuse_ct`) registers each CT vertebra to the
network's reconstructed shape, so it inherits that shape's orientation error. This module turns
the placed vertebra about its body centroid until its own DRR matches the radiographs:

* **Vertebra DRR.** The CT inside the vertebra's mask dilated by ``margin_mm`` (voxels labelled as
  *another* vertebra excluded), as attenuation *above soft tissue*: ``μ_water · max(HU − 100, 0) /
  1000`` (``HU_BASELINE``), so the crop's border draws no artificial edge where tissue meets the air
  outside it; resampled once to a ``voxel_mm`` grid. A candidate pose is rendered by the package's
  ray caster (:class:`~transvert_monai.transforms.drr.functional.AttenuationVolume`, plain Joseph)
  with the crop's affine moved by the candidate transform, so nothing is resampled per candidate,
  into a patch of each view around the vertebra's projection.
* **Similarity.** Gradient correlation (Penney et al., IEEE TMI 17(4):586–595, 1998): the mean of the
  normalised cross-correlations of the Sobel row- and column-gradients of the DRR patch and of the
  radiograph patch, each image smoothed by a Gaussian of ``smooth_px``, computed only on the pixels the
  vertebra projects onto at the starting pose (DRR above 5 % of its maximum) dilated by
  ``roi_margin_mm`` — the same pixels for every candidate, so the overlapping anatomy around it
  weighs little. Summed (averaged) over the lateral and AP views.
* **Search, coarse to fine.** The position stays the fusion's. (1) A grid of rotations about the body
  centroid, ``±grid_range_deg`` in ``grid_step_deg`` steps about the three world axes (7³ = 343
  candidates for ±15° / 5°), on the radiographs at the reconstruction's working spacing; (2) from the
  best grid point, ``scipy.optimize.minimize`` (Powell) over the three rotation angles on the
  radiographs at ``fine_spacing_mm``, bounded by the grid range.
* **Guard.** The refined rotation is kept only when its similarity beats the starting pose's by
  ``min_gain`` (on the fine images) and it lies within the search range; otherwise the fusion's
  transform is returned unchanged.

Measured (``benchmarks/posture.py`` scoliosis15 on the chest, in-patient, DRR radiographs of the same CT):
mean orientation error of T1–L1 11.0° → 2.8–4.7° (depending on the fine spacing; 0.6 mm best), about 2–10 s
per vertebra on 2 CPU cores. Known failure: a start far outside the search range (45°) can be pulled to a
false optimum that the relative guard accepts (``tests/posture/test_radiograph_fit.py``, xfail), so
:func:`~transvert_monai.posture.fusion.fuse_ct` runs it only on request (``radiograph_fit=True``).

Limits: the radiographs the benchmark uses are DRRs of the same CT (the same attenuation model,
no scatter, no noise), which is the most favourable case; real radiographs differ (exposure
processing, scatter, a CT of another date), so the guard matters there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation

from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.posture.synthetic import rigid_about
from transvert_monai.transforms.drr.functional import AttenuationVolume

__all__ = [
    "HU_BASELINE",
    "RadiographView",
    "RadiographFitResult",
    "views_from_reconstruction",
    "vertebra_attenuation",
    "gradient_correlation",
    "VertebraRadiographFit",
    "refine_vertebra_orientation",
]

#: HU subtracted before rendering a vertebra alone (soft tissue draws nothing).
HU_BASELINE = 100.0
#: Description written next to the refined transforms.
RADIOGRAPH_FIT_METHOD = (
    "2D/3D refinement of the rotation about the body centroid: the CT vertebra's own DRR (attenuation above "
    f"{HU_BASELINE:g} HU inside its dilated mask) against both radiographs, gradient correlation on the vertebra's "
    "projected pixels, a ±15° grid in 5° steps then Powell; kept only when the similarity improves"
)


@dataclass
class RadiographView:
    """One radiograph with its view: ``image`` (H, W) float32 (bone bright), ``geometry`` of its pixels."""

    image: torch.Tensor
    geometry: ProjectionGeometry


@dataclass
class RadiographFitResult:
    """The outcome for one vertebra.

    Attributes:
        transform: (4, 4) supine CT world → standing world after refinement (the input when not accepted).
        accepted: whether the refinement was kept.
        rotation_deg: angle (degrees) of the applied change of rotation (0 when not accepted).
        similarity_start, similarity_end: gradient correlation (mean of the views) at the start and the end.
        reason: why not accepted (empty when accepted).
    """

    transform: np.ndarray
    accepted: bool
    rotation_deg: float
    similarity_start: float
    similarity_end: float
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rotation_change_deg": round(self.rotation_deg, 3),
            "similarity_start": round(self.similarity_start, 4),
            "similarity_end": round(self.similarity_end, 4),
            "reason": self.reason,
        }


def views_from_reconstruction(reconstruction: Any, spacing_mm: float | None = None) -> list[RadiographView]:
    """The (lateral, AP) views of a :class:`~transvert_monai.apps.reconstruct.SpineReconstruction`.

    ``spacing_mm`` None: the working-spacing images the network saw (``reconstruction.samples``); a number:
    the radiographs as read (``reconstruction.radiographs``) resampled to that detector spacing (falls back to
    the working images when the reconstruction does not carry the radiographs).
    """
    radiographs = getattr(reconstruction, "radiographs", None)
    if spacing_mm is not None and radiographs is not None:
        out = []
        for r in radiographs:
            res = r.resampled(spacing_mm)
            out.append(RadiographView(torch.as_tensor(res.pixels, dtype=torch.float32), r.geometry(spacing_mm)))
        return out
    s = reconstruction.samples
    return [
        RadiographView(torch.as_tensor(s.lateral_image, dtype=torch.float32), s.lateral_geometry),
        RadiographView(torch.as_tensor(s.ap_image, dtype=torch.float32), s.ap_geometry),
    ]


def vertebra_attenuation(
    ct_hu: np.ndarray,
    labels: np.ndarray,
    affine: np.ndarray,
    label: int,
    margin_mm: float = 10.0,
    voxel_mm: float = 1.0,
    mu_water_per_mm: float = 0.02,
) -> tuple[torch.Tensor, np.ndarray]:
    """The vertebra's own attenuation above soft tissue on a ``voxel_mm`` grid: ``(mu (X, Y, Z) float32, affine)``.

    Args:
        ct_hu: (X, Y, Z) CT in HU; ``labels``: (X, Y, Z) VerSe label map on the same grid; ``affine``: its voxel → world.
        label: the vertebra.
        margin_mm: dilation of the mask (the rest, and other vertebrae's voxels, count as nothing).
        voxel_mm: spacing of the output grid (the crop is averaged down to it).

    Raises:
        ValueError: the label is absent.
    """
    affine = np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    where = np.argwhere(labels == label)
    if len(where) == 0:
        raise ValueError(f"label {label} is absent from the mask.")
    pad = np.ceil((margin_mm + 2.0) / spacing).astype(int)
    lo = np.maximum(where.min(0) - pad, 0)
    hi = np.minimum(where.max(0) + pad + 1, labels.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    lab = labels[box]
    own = lab == label
    dist = ndimage.distance_transform_edt(~own, sampling=spacing)
    keep = (dist <= margin_mm) & ((lab == 0) | own)
    hu = np.asarray(ct_hu[box], dtype=np.float32)
    mu = np.where(keep, np.clip(hu - HU_BASELINE, 0.0, None) * (mu_water_per_mm / 1000.0), 0.0).astype(np.float32)
    crop_affine = affine.copy()
    crop_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    # average down to ~voxel_mm (an integer factor per axis), keeping the integral
    factor = np.maximum(1, np.round(voxel_mm / spacing)).astype(int)
    if (factor > 1).any():
        t = torch.from_numpy(mu)[None, None]
        t = F.avg_pool3d(t, kernel_size=tuple(int(f) for f in factor), stride=tuple(int(f) for f in factor), ceil_mode=True)
        mu_t = t[0, 0].contiguous()
        crop_affine = crop_affine.copy()
        crop_affine[:3, 3] = crop_affine[:3, :3] @ ((factor - 1) / 2.0) + crop_affine[:3, 3]
        crop_affine[:3, :3] = crop_affine[:3, :3] * factor
        # ceil_mode averages partial windows over their own voxels only; near-zero at the border anyway
        return mu_t, crop_affine
    return torch.from_numpy(mu), crop_affine


_SOBEL = torch.tensor([[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]]) / 8.0


def _gradients(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W) → (B, 2, H, W) Sobel gradients along rows and columns (edge-replicated)."""
    x = F.pad(images[:, None], (1, 1, 1, 1), mode="replicate")
    k = torch.stack((_SOBEL.transpose(-1, -2), _SOBEL))  # d/drow, d/dcol
    return F.conv2d(x, k.to(images.dtype))


def _smooth(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    if sigma_px <= 0:
        return images
    r = max(1, int(math.ceil(3 * sigma_px)))
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=images.dtype) / sigma_px) ** 2)
    g = g / g.sum()
    x = F.pad(images[:, None], (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return x[:, 0]


def gradient_correlation(moving: torch.Tensor, fixed_gradients: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Gradient correlation of a batch of images (B, H, W) with one image's gradients (2, H, W) on ``roi`` (H, W) → (B,)."""
    g = _gradients(moving)[:, :, roi]  # (B, 2, N)
    f = fixed_gradients[:, roi]  # (2, N)
    g = g - g.mean(-1, keepdim=True)
    f = f - f.mean(-1, keepdim=True)
    num = (g * f[None]).sum(-1)
    den = torch.sqrt((g * g).sum(-1) * (f * f).sum(-1)[None]).clamp_min(1e-12)
    return (num / den).mean(-1)


class _ViewPatch:
    """One view prepared for one vertebra: the radiograph patch, its gradients, the ROI and the patch's rays."""

    def __init__(self, view: RadiographView, volume: AttenuationVolume, start: np.ndarray, corners_mm: np.ndarray,
                 margin_mm: float, roi_margin_mm: float, smooth_px: float) -> None:  # fmt: skip
        g = view.geometry
        placed = corners_mm @ start[:3, :3].T + start[:3, 3]
        rc = g.project(torch.as_tensor(placed)).numpy()
        spacing = float(np.mean(g.detector_spacing_mm))
        pad = margin_mm * g.magnification / spacing
        h, w = view.image.shape[-2:]
        lo = np.floor(rc.min(0) - pad).astype(int)
        hi = np.ceil(rc.max(0) + pad).astype(int) + 1
        lo = np.clip(lo, 0, [h - 1, w - 1])
        hi = np.clip(hi, lo + 1, [h, w])
        self.geometry = g
        self.smooth_px = smooth_px
        rows = torch.arange(int(lo[0]), int(hi[0]), dtype=torch.float64)
        cols = torch.arange(int(lo[1]), int(hi[1]), dtype=torch.float64)
        rcs = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1)
        self.shape = rcs.shape[:2]
        self.targets = g.pixel_to_world(rcs)
        self.source = g.source_mm
        patch = view.image[int(lo[0]) : int(hi[0]), int(lo[1]) : int(hi[1])].to(torch.float32)
        self.fixed_gradients = _gradients(_smooth(patch[None], smooth_px))[0]
        drr = self.render(volume, [start])[0]
        inside = (drr > 0.05 * float(drr.max())).numpy() if float(drr.max()) > 0 else np.ones(self.shape, bool)
        r = max(1, int(round(roi_margin_mm * g.magnification / spacing)))
        roi = ndimage.binary_dilation(inside, iterations=r)
        roi[:1], roi[-1:], roi[:, :1], roi[:, -1:] = False, False, False, False
        self.roi = torch.from_numpy(roi)

    def render(self, volume: AttenuationVolume, transforms: Sequence[np.ndarray]) -> torch.Tensor:
        out = []
        for t in transforms:
            moved = volume.with_affine(torch.as_tensor(t @ volume.affine.numpy(), dtype=torch.float64))
            out.append(moved.line_integrals(self.source, self.targets))
        return torch.stack(out)

    def score(self, volume: AttenuationVolume, transforms: Sequence[np.ndarray]) -> torch.Tensor:
        return gradient_correlation(_smooth(self.render(volume, transforms), self.smooth_px), self.fixed_gradients, self.roi)


class VertebraRadiographFit:
    """Similarity of one CT vertebra, under a candidate rotation about its centroid, to a set of views."""

    def __init__(self, mu: torch.Tensor, mu_affine: np.ndarray, start: np.ndarray, centre_mm: np.ndarray,
                 views: Sequence[RadiographView], margin_mm: float = 12.0, roi_margin_mm: float = 4.0,
                 smooth_px: float = 1.0) -> None:  # fmt: skip
        # the volume's affine is the supine crop's; a candidate renders it at candidate @ start
        self.volume = AttenuationVolume(mu, torch.as_tensor(mu_affine, dtype=torch.float64))
        self.start = np.asarray(start, dtype=np.float64)
        self.centre = np.asarray(centre_mm, dtype=np.float64)
        shape = np.array(mu.shape)
        corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape])), dtype=np.float64)
        corners_mm = corners @ np.asarray(mu_affine)[:3, :3].T + np.asarray(mu_affine)[:3, 3]
        self.views = [_ViewPatch(v, self.volume, self.start, corners_mm, margin_mm, roi_margin_mm, smooth_px) for v in views]

    def transform(self, angles_deg: Sequence[float]) -> np.ndarray:
        """Supine → standing transform of a rotation (world-axis rotation vector in degrees) about the centre after ``start``."""
        r = Rotation.from_rotvec(np.radians(np.asarray(angles_deg, dtype=np.float64))).as_matrix()
        return rigid_about(r, self.centre) @ self.start

    def scores(self, angles_deg: np.ndarray, batch: int = 32) -> np.ndarray:
        """Mean gradient correlation over the views of each row of ``angles_deg`` (N, 3)."""
        angles_deg = np.atleast_2d(angles_deg)
        out = np.zeros(len(angles_deg))
        for i in range(0, len(angles_deg), batch):
            ts = [self.transform(a) for a in angles_deg[i : i + batch]]
            out[i : i + batch] = np.mean([v.score(self.volume, ts).numpy() for v in self.views], axis=0)
        return out


def refine_vertebra_orientation(
    mu: torch.Tensor,
    mu_affine: np.ndarray,
    start: np.ndarray,
    centre_mm: np.ndarray,
    coarse_views: Sequence[RadiographView],
    fine_views: Sequence[RadiographView] | None = None,
    grid_range_deg: float = 15.0,
    grid_step_deg: float = 5.0,
    min_gain: float = 0.01,
    fine_iterations: int = 60,
    n_starts: int = 3,
) -> RadiographFitResult:
    """Refine the rotation of a placed CT vertebra about ``centre_mm`` against the radiographs (module docstring).

    Args:
        mu, mu_affine: the vertebra's attenuation (:func:`vertebra_attenuation`) and its supine voxel → world map.
        start: (4, 4) supine → standing transform to refine (the fusion's).
        centre_mm: (3,) standing-world centre of rotation (the placed body centroid).
        coarse_views: the views for the grid (the working-spacing radiographs).
        fine_views: the views for the local refinement (default ``coarse_views``).
        grid_range_deg, grid_step_deg: the grid about each world axis; also the bound of the refinement.
        min_gain: the similarity gain (on ``fine_views``) a refinement needs to be kept.
        fine_iterations: the most Powell function evaluations / 10.
        n_starts: local refinements, from the best grid points that are not neighbours of a better one.

    Returns:
        :class:`RadiographFitResult`.
    """
    start = np.asarray(start, dtype=np.float64)
    coarse = VertebraRadiographFit(mu, mu_affine, start, centre_mm, coarse_views)
    steps = np.arange(-grid_range_deg, grid_range_deg + 1e-9, grid_step_deg)
    grid = np.array(list(itertools.product(steps, steps, steps)))
    s = coarse.scores(grid)
    fine = VertebraRadiographFit(mu, mu_affine, start, centre_mm, fine_views) if fine_views is not None else coarse
    s0 = float(fine.scores(np.zeros((1, 3)))[0])

    def cost(a: np.ndarray) -> float:
        return -float(fine.scores(a[None])[0])

    # the best grid points that are not neighbours of a better one: one local refinement from each
    starts: list[np.ndarray] = []
    for i in np.argsort(-s):
        if all(np.abs(grid[i] - p).max() > grid_step_deg + 1e-6 for p in starts):
            starts.append(grid[i])
        if len(starts) == n_starts:
            break
    angles, s1 = np.zeros(3), s0
    for p in starts:
        res = optimize.minimize(
            cost, p, method="Powell",
            bounds=[(-grid_range_deg, grid_range_deg)] * 3,
            options={"xtol": 0.1, "ftol": 1e-5, "maxfev": 10 * fine_iterations},
        )  # fmt: skip
        if -float(res.fun) > s1:
            angles, s1 = np.asarray(res.x, dtype=np.float64), -float(res.fun)
    best = starts[0]
    angle = float(np.linalg.norm(angles))
    details = {"grid_best_deg": best.tolist(), "grid_best_score": float(s.max()), "angles_deg": angles.tolist()}
    if not s1 >= s0 + min_gain:
        return RadiographFitResult(start, False, 0.0, s0, s0, f"similarity gain {s1 - s0:.4f} < {min_gain}", details)
    if np.abs(angles).max() > grid_range_deg + 1e-6:
        return RadiographFitResult(start, False, 0.0, s0, s0, "beyond the search range", details)
    return RadiographFitResult(fine.transform(angles), True, angle, s0, s1, "", details)
