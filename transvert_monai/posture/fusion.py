"""The patient's own CT vertebrae placed in the standing posture reconstructed from the radiographs.

For each vertebra annotated on the radiographs, the supine CT's vertebra (its mask) is rigidly
registered to the reconstructed standing shape:

1. **Initialisation (closed form)**: the rigid map that carries the CT vertebra's pose onto the
   reconstructed vertebra's pose, both by the one frame rule of
   :mod:`transvert_monai.posture.frames` (``T0 = F_standing · F_ct⁻¹``).
2. **Refinement (ITK)**: ``itk.ImageRegistrationMethodv4`` with an ``Euler3DTransform`` (rotation
   about the reconstructed body centroid + translation), mean-squares metric between the
   reconstruction's foreground probability (fixed, its own 64³ grid) and the CT vertebra's mask
   smoothed by a 1 mm Gaussian (moving), regular-step gradient descent with physical-shift
   parameter scales, two resolution levels (shrink 2, 1; smoothing 2, 0 mm). ITK works in LPS; the
   transforms given here are RAS.

Result per vertebra: the rigid transform supine CT world → standing world (4×4, RAS mm), and the
**residual** of the CT shape against the reconstruction after registration: Dice and symmetric
mean surface distance (mm) on the reconstruction's grid, and the volume ratio CT/reconstruction.
A vertebra whose residual is far above what a CT of the same patient gives is flagged
``residual_high`` (thresholds :data:`RESIDUAL_LIMITS`, from the in-patient benchmark
``benchmarks/posture.py``: same-patient CT vertebrae gave Dice 0.71–0.94, mean surface distance
0.6–2.5 mm and, on the chest, CT/reconstruction volume ratios 1.06–1.41 (the network
under-estimates volumes); the other patient's L1 gave Dice 0.71, 2.5 mm and a volume ratio 1.62.
The separation is thin: one same-patient abdomen vertebra is also flagged); when at least
half of the vertebrae are flagged, the fusion is flagged ``ct_of_another_patient``. Nothing is
silently placed: flags are in the result and in ``ct_transforms.json``.

Limit measured by ``benchmarks/posture.py``: the 3D/3D registration places the CT vertebra where the
*reconstructed shape* is, so it inherits that shape's orientation; with the shipped weights the
shapes do not follow changes of vertebral orientation (see the benchmark), and neither does the
fusion. A 2D/3D refinement on the radiographs themselves is the missing step.

The standing label map is sampled at the CT's resolution (the CT spacing along the index axis
nearest each world axis) on a RAS-aligned grid covering the placed vertebrae; each CT vertebra's
mask is mapped by its transform (trilinear, ≥ 0.5).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import itk
import numpy as np
import torch
from monai.config import NdarrayOrTensor
from scipy import ndimage

from transvert_monai.data.centroids import as_label_array
from transvert_monai.data.labels import (
    TOTALSEGMENTATOR_V2_TOTAL_IDS,
    label_to_name,
    level_order,
    read_structure_names,
    totalsegmentator_to_verse,
)
from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import as_affine
from transvert_monai.posture.frames import VertebraPose, poses_from_label_map, poses_from_reconstruction

__all__ = [
    "RESIDUAL_LIMITS",
    "FUSION_METHOD",
    "VertebraFusion",
    "CTFusion",
    "load_ct_and_mask",
    "register_vertebra",
    "fuse_ct",
    "write_fusion_outputs",
]

logger = logging.getLogger(__name__)

#: Residual limits of a same-patient CT vertebra (beyond any of them: ``residual_high``).
RESIDUAL_LIMITS: dict[str, float] = {"min_dice": 0.6, "max_mean_surface_distance_mm": 3.0, "max_volume_ratio_change": 0.5}
#: How the transforms were found (written to ``ct_transforms.json``).
FUSION_METHOD = (
    "rigid registration of each CT vertebra mask to the reconstructed standing shape: closed-form initialisation "
    "from the two vertebra frames, then ITK ImageRegistrationMethodv4 (Euler3DTransform, mean squares, regular-step "
    "gradient descent, 2 levels)"
)
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class VertebraFusion:
    """One CT vertebra placed upright.

    Attributes:
        label: VerSe index.
        transform: (4, 4) supine CT world → standing world (RAS mm).
        dice: Dice of the placed CT vertebra and the reconstructed shape (reconstruction's grid).
        mean_surface_distance_mm: symmetric mean surface distance between the two.
        volume_ratio: CT vertebra volume / reconstructed volume.
        flags: ``"residual_high"`` when beyond :data:`RESIDUAL_LIMITS`.
        radiograph_fit: the 2D/3D refinement's outcome (:meth:`RadiographFitResult.to_dict`), when it ran.
    """

    label: int
    transform: np.ndarray
    dice: float
    mean_surface_distance_mm: float
    volume_ratio: float
    flags: list[str] = field(default_factory=list)
    radiograph_fit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.radiograph_fit is None else {"radiograph_fit": dict(self.radiograph_fit)}
        return {
            "supine_to_standing": [[round(float(v), 6) for v in row] for row in self.transform],
            "dice": round(self.dice, 4),
            "mean_surface_distance_mm": round(self.mean_surface_distance_mm, 3),
            "volume_ratio": round(self.volume_ratio, 4),
            "flags": list(self.flags),
        } | extra


@dataclass
class CTFusion:
    """The CT vertebrae in the standing posture (see :func:`fuse_ct`).

    Attributes:
        vertebrae: {VerSe index: VertebraFusion}.
        poses: {VerSe index: VertebraPose} of the placed CT vertebrae (the CT pose carried by its transform).
        label_volume: (X, Y, Z) uint8 standing spine at CT resolution.
        affine: (4, 4) voxel → standing world (RAS mm) of ``label_volume``.
        flags: ``"ct_of_another_patient"`` when at least half of the vertebrae are ``residual_high``.
    """

    vertebrae: dict[int, VertebraFusion]
    poses: dict[int, VertebraPose]
    label_volume: np.ndarray
    affine: np.ndarray
    flags: list[str] = field(default_factory=list)
    frame: str = "RAS mm, patient frame of the radiographs"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``ct_transforms.json``."""
        return {
            "frame": self.frame,
            "transform": "supine CT world (RAS mm) -> standing world; 4x4 rows, applied to column vectors [x, y, z, 1]",
            "method": FUSION_METHOD,
            "residual_limits": dict(RESIDUAL_LIMITS),
            "flags": list(self.flags),
            "vertebrae": {label_to_name(v): f.to_dict() for v, f in sorted(self.vertebrae.items(), key=lambda kv: level_order(kv[0]))},
        }


def load_ct_and_mask(
    ct: str | os.PathLike | Any,
    mask: str | os.PathLike | Any,
    mask_format: str = "verse",
    label_names: str | os.PathLike | None = None,
) -> tuple[Any, Any]:
    """Load (or take) a CT and its vertebra mask as channel-first MetaTensors, the mask in VerSe indices.

    Args:
        ct, mask: file paths (anything MONAI ``LoadImage`` reads) or MetaTensors (1, X, Y, Z) / (X, Y, Z).
        mask_format: ``"verse"`` (values are VerSe indices) or ``"totalsegmentator"`` (a multi-label file:
            structure names from ``label_names``, else TotalSegmentator v2 ``total`` class ids).
        label_names: structure-name CSV/JSON of a TotalSegmentator multi-label file.

    Raises:
        TransVertInputError: an unknown format, or the mask is not on the CT's grid (shape or affine).
    """
    from monai.data import MetaTensor
    from monai.transforms import EnsureChannelFirst, LoadImage

    def load(x: Any) -> MetaTensor:
        if isinstance(x, (str, os.PathLike)):
            return EnsureChannelFirst()(LoadImage(image_only=True)(str(x)))
        if not isinstance(x, MetaTensor):
            raise TransVertInputError(
                f"expected a file path or a MetaTensor with an affine, got {type(x).__name__}; wrap arrays in MetaTensor(affine=...)."
            )
        return x if x.ndim == 4 else x[None]

    ct_t, mask_t = load(ct), load(mask)
    if tuple(ct_t.shape[-3:]) != tuple(mask_t.shape[-3:]):
        raise TransVertInputError(
            f"the CT mask has shape {tuple(mask_t.shape[-3:])} but the CT {tuple(ct_t.shape[-3:])}: it is on another grid; "
            "resample it onto the CT (e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    diff = float((as_affine(ct_t.affine) - as_affine(mask_t.affine)).abs().max())
    if diff > 1e-2:
        raise TransVertInputError(
            f"the CT mask's affine differs from the CT's by {diff:.3g} mm: it is on another grid; resample it onto the CT "
            "(e.g. MONAI ResampleToMatch, mode='nearest')."
        )
    if mask_format == "totalsegmentator":
        names = read_structure_names(label_names) if label_names is not None else TOTALSEGMENTATOR_V2_TOTAL_IDS
        lut = np.zeros(max(names) + 1, dtype=np.uint8)
        for value, label in totalsegmentator_to_verse(names).items():
            lut[value] = label
        values = as_label_array(mask_t, name="CT mask")
        values = np.where((values >= 0) & (values < len(lut)), values, 0)
        mask_t = MetaTensor(torch.from_numpy(lut[values][None]), affine=mask_t.affine, meta=dict(mask_t.meta))
    elif mask_format != "verse":
        raise TransVertInputError(f"`mask_format` must be 'verse' or 'totalsegmentator', got {mask_format!r}.")
    return ct_t, mask_t


def _itk_image(array: np.ndarray, affine_ras: np.ndarray) -> Any:
    """ITK float image whose index (i, j, k) is ``array[i, j, k]``, physical space LPS from a RAS affine."""
    image = itk.image_from_array(np.ascontiguousarray(array.transpose(2, 1, 0), dtype=np.float32))
    lps = _LPS @ affine_ras
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in lps[:3, 3]])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(lps[:3, :3] / spacing)))
    return image


def _orthonormal(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1.0, 1.0, -1.0]) @ vt


def register_vertebra(
    fixed_probability: np.ndarray,
    fixed_affine: np.ndarray,
    moving_mask: np.ndarray,
    moving_affine: np.ndarray,
    initial: np.ndarray,
    centre_mm: np.ndarray,
    iterations: int = 200,
) -> np.ndarray:
    """Rigid ITK refinement of ``initial`` (4, 4, moving world → fixed world, RAS); returns the refined transform.

    Args:
        fixed_probability: (X, Y, Z) reconstructed foreground probability on ``fixed_affine``.
        moving_mask: (X, Y, Z) 0/1 CT vertebra on ``moving_affine`` (cropped).
        initial: (4, 4) moving → fixed world initial transform.
        centre_mm: (3,) fixed-world centre of rotation (the reconstructed body centroid).
        iterations: gradient-descent iterations per level.
    """
    spacing = np.linalg.norm(moving_affine[:3, :3], axis=0)
    smooth = ndimage.gaussian_filter(moving_mask.astype(np.float32), sigma=1.0 / spacing)
    fixed = _itk_image(np.asarray(fixed_probability, dtype=np.float32), fixed_affine)
    moving = _itk_image(smooth, moving_affine)
    image_type = type(fixed)
    # ITK maps fixed points to moving points, in LPS
    inverse = _LPS @ np.linalg.inv(initial) @ _LPS
    centre = (_LPS[:3, :3] @ centre_mm).tolist()
    transform = itk.Euler3DTransform[itk.D].New()
    transform.SetCenter(centre)
    m = _orthonormal(inverse[:3, :3])
    transform.SetMatrix(itk.matrix_from_array(np.ascontiguousarray(m)))
    offset = inverse[:3, 3]
    transform.SetTranslation((offset - np.asarray(centre) + m @ np.asarray(centre)).tolist())
    metric = itk.MeanSquaresImageToImageMetricv4[image_type, image_type].New()
    optimizer = itk.RegularStepGradientDescentOptimizerv4[itk.D].New()
    optimizer.SetLearningRate(1.0)
    optimizer.SetMinimumStepLength(1e-3)
    optimizer.SetRelaxationFactor(0.5)
    optimizer.SetGradientMagnitudeTolerance(1e-12)
    optimizer.SetNumberOfIterations(int(iterations))
    scales = itk.RegistrationParameterScalesFromPhysicalShift[type(metric)].New()
    scales.SetMetric(metric)
    optimizer.SetScalesEstimator(scales)
    registration = itk.ImageRegistrationMethodv4[image_type, image_type].New()
    registration.SetFixedImage(fixed)
    registration.SetMovingImage(moving)
    registration.SetMetric(metric)
    registration.SetOptimizer(optimizer)
    registration.SetInitialTransform(transform)
    registration.SetInPlace(True)
    registration.SetNumberOfLevels(2)
    registration.SetShrinkFactorsPerLevel([2, 1])
    registration.SetSmoothingSigmasPerLevel([2.0, 0.0])
    registration.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(True)
    registration.Update()
    out = np.eye(4)
    out[:3, :3] = itk.array_from_matrix(transform.GetMatrix())
    out[:3, 3] = np.asarray(list(transform.GetOffset()), dtype=np.float64)
    return np.linalg.inv(_LPS @ out @ _LPS)


def _sample(array: np.ndarray, affine: np.ndarray, world_to_source: np.ndarray, target_affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` (on ``affine``) sampled trilinearly on a target grid; target world → source world by ``world_to_source``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    m = np.linalg.inv(affine) @ world_to_source @ target_affine
    src = ijk @ m[:3, :3].T + m[:3, 3]
    return ndimage.map_coordinates(array.astype(np.float32), src.T, order=1, cval=0.0, prefilter=False).reshape(shape)


def _surface_distance_mm(a: np.ndarray, b: np.ndarray, spacing_mm: np.ndarray) -> float:
    """Symmetric mean surface distance (mm) of two masks on one grid."""
    if not a.any() or not b.any():
        return float("inf")
    sa, sb = a & ~ndimage.binary_erosion(a), b & ~ndimage.binary_erosion(b)
    da = ndimage.distance_transform_edt(~sa, sampling=spacing_mm)
    db = ndimage.distance_transform_edt(~sb, sampling=spacing_mm)
    return float((db[sa].sum() + da[sb].sum()) / (sa.sum() + sb.sum()))


def _output_grid(ct_affine: np.ndarray, boxes: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int, int]]:
    spacing = np.linalg.norm(ct_affine[:3, :3], axis=0)
    nearest = np.argmax(np.abs(ct_affine[:3, :3] / spacing), axis=1)  # the index axis nearest each world axis
    out_spacing = spacing[nearest]
    lo = np.min([b.min(0) for b in boxes], axis=0) - 2.0
    hi = np.max([b.max(0) for b in boxes], axis=0) + 2.0
    shape = tuple(int(n) for n in np.ceil((hi - lo) / out_spacing) + 1)
    affine = np.diag([*out_spacing, 1.0])
    affine[:3, 3] = lo
    return affine, shape  # type: ignore[return-value]


def fuse_ct(
    ct: Any,
    mask: Any,
    reconstruction: Any,
    ct_centroids_mm: Mapping[int, NdarrayOrTensor] | None = None,
    labels: Iterable[int] | None = None,
    mask_format: str = "verse",
    label_names: str | os.PathLike | None = None,
    standing_poses: Mapping[int, VertebraPose] | None = None,
    radiograph_fit: bool = False,
    radiograph_fit_spacing_mm: float = 0.6,
) -> CTFusion:
    """Place the CT's vertebrae in the standing posture of ``reconstruction`` (module docstring).

    Args:
        ct: supine CT (path or MetaTensor (1, X, Y, Z)); only its grid is used.
        mask: its vertebra mask on the CT grid (path or MetaTensor), VerSe indices (or see ``mask_format``).
        reconstruction: :class:`~transvert_monai.apps.reconstruct.SpineReconstruction` (shapes, affines, centres).
        ct_centroids_mm: {VerSe index: (3,) CT world} vertebral-body centroids (default: the canal-rule estimate).
        labels: vertebrae to place (default: every reconstructed vertebra).
        mask_format, label_names: see :func:`load_ct_and_mask`.
        standing_poses: precomputed poses of the reconstruction (default: computed here).
        radiograph_fit: after the 3D/3D registration, refine each vertebra's rotation about its placed body
            centroid against the two radiographs (:mod:`transvert_monai.posture.radiograph_fit`; needs the CT's
            intensities and ``reconstruction.samples``). Off by default: see the benchmark in that module's docstring.
            The residual (Dice, surface distance) stays that of the 3D/3D registration; the refinement's own
            outcome is in ``VertebraFusion.radiograph_fit``.
        radiograph_fit_spacing_mm: detector pixel spacing of the radiographs for the fine stage (the radiographs
            as read, ``reconstruction.radiographs``, resampled to it; the coarse grid uses the working images).

    Returns:
        :class:`CTFusion`.

    Raises:
        TransVertInputError: the mask is on another grid than the CT; the mask lacks vertebrae the radiographs
            annotate (named); see also :func:`load_ct_and_mask`.
    """
    ct_t, mask_t = load_ct_and_mask(ct, mask, mask_format, label_names)
    arr = as_label_array(mask_t, name="CT mask")
    ct_affine = as_affine(mask_t.affine).numpy()
    rec_labels = [int(v) for v in reconstruction.labels]
    wanted = sorted({int(v) for v in labels} if labels is not None else set(rec_labels), key=level_order)
    not_reconstructed = [label_to_name(v) for v in wanted if v not in rec_labels]
    if not_reconstructed:
        raise TransVertInputError(f"vertebrae {not_reconstructed} were not reconstructed from the radiographs ({[label_to_name(v) for v in rec_labels]}).")
    present = {int(v) for v in np.unique(arr) if v > 0}
    missing = [label_to_name(v) for v in wanted if v not in present]
    if missing:
        raise TransVertInputError(
            f"the CT mask has no {', '.join(missing)}, which the radiographs annotate (CT mask holds "
            f"{[label_to_name(v) for v in sorted(present, key=level_order) if 0 < v < 29]}); check that the CT and the "
            "radiographs are of the same patient and that both label the same levels, or pass `labels=` to place fewer."
        )
    standing = dict(standing_poses) if standing_poses is not None else poses_from_reconstruction(reconstruction)
    supine = poses_from_label_map(arr, ct_affine, ct_centroids_mm if ct_centroids_mm is not None else None, wanted)
    boxes_vox = ndimage.find_objects(np.clip(arr, 0, None))
    vertebrae: dict[int, VertebraFusion] = {}
    poses: dict[int, VertebraPose] = {}
    if radiograph_fit:
        from transvert_monai.posture import radiograph_fit as rf

        ct_hu = np.asarray(ct_t[0].detach().cpu().numpy() if isinstance(ct_t, torch.Tensor) else ct_t[0], dtype=np.float32)
        coarse_views = rf.views_from_reconstruction(reconstruction)
        fine_views = rf.views_from_reconstruction(reconstruction, radiograph_fit_spacing_mm)
    placed_boxes: list[np.ndarray] = []
    crops: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    shapes = torch.as_tensor(reconstruction.shapes).detach().float().cpu()
    for v in wanted:
        b = rec_labels.index(v)
        box = tuple(slice(max(0, s.start - 4), min(n, s.stop + 4)) for s, n in zip(boxes_vox[v - 1], arr.shape))
        crop_affine = ct_affine.copy()
        crop_affine[:3, 3] = ct_affine[:3, :3] @ np.array([s.start for s in box], dtype=np.float64) + ct_affine[:3, 3]
        moving = (arr[box] == v).astype(np.float32)
        crops[v] = (moving, crop_affine)
        fixed = (shapes[b, 0] / float(v)).clamp(0.0, 1.0).numpy()
        fixed_affine = as_affine(reconstruction.vertebra_affines[b]).numpy()
        initial = standing[v].matrix @ np.linalg.inv(supine[v].matrix)
        transform = register_vertebra(fixed, fixed_affine, moving, crop_affine, initial, standing[v].origin_mm)
        # residual on the reconstruction's grid
        placed = _sample(moving, crop_affine, np.linalg.inv(transform), fixed_affine, fixed.shape) >= 0.5
        rec = fixed >= 0.5
        dice = float(2.0 * (placed & rec).sum() / max(1, placed.sum() + rec.sum()))
        msd = _surface_distance_mm(placed, rec, np.linalg.norm(fixed_affine[:3, :3], axis=0))
        ct_ml = float(moving.sum()) * abs(np.linalg.det(crop_affine[:3, :3])) / 1000.0
        rec_ml = float(rec.sum()) * abs(np.linalg.det(fixed_affine[:3, :3])) / 1000.0
        ratio = ct_ml / rec_ml if rec_ml > 0 else float("inf")
        flags = []
        if (
            dice < RESIDUAL_LIMITS["min_dice"]
            or msd > RESIDUAL_LIMITS["max_mean_surface_distance_mm"]
            or abs(ratio - 1.0) > RESIDUAL_LIMITS["max_volume_ratio_change"]
        ):
            flags.append("residual_high")
        fit_info: dict[str, Any] | None = None
        if radiograph_fit:
            mu, mu_affine = rf.vertebra_attenuation(ct_hu, arr, ct_affine, v)
            centre = transform[:3, :3] @ supine[v].origin_mm + transform[:3, 3]
            fit = rf.refine_vertebra_orientation(mu, mu_affine, transform, centre, coarse_views, fine_views)
            transform, fit_info = fit.transform, fit.to_dict()
        vertebrae[v] = VertebraFusion(v, transform, dice, msd, ratio, flags, radiograph_fit=fit_info)
        poses[v] = supine[v].transformed(transform, method="CT vertebra registered to the standing reconstruction; " + supine[v].method)
        corners = np.array(list(itertools.product(*[(0, n - 1) for n in moving.shape])), dtype=np.float64)
        world = corners @ crop_affine[:3, :3].T + crop_affine[:3, 3]
        placed_boxes.append(world @ transform[:3, :3].T + transform[:3, 3])
    out_affine, out_shape = _output_grid(ct_affine, placed_boxes)
    volume = np.zeros(out_shape, dtype=np.uint8)
    inv_out = np.linalg.inv(out_affine)
    for v, corners in zip(wanted, placed_boxes):
        ijk = corners @ inv_out[:3, :3].T + inv_out[:3, 3]
        lo = np.clip(np.floor(ijk.min(0)).astype(int), 0, np.array(out_shape) - 1)
        hi = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 1, np.array(out_shape))
        sub_affine = out_affine.copy()
        sub_affine[:3, 3] = out_affine[:3, :3] @ lo + out_affine[:3, 3]
        moving, crop_affine = crops[v]
        inside = _sample(moving, crop_affine, np.linalg.inv(vertebrae[v].transform), sub_affine, tuple(hi - lo)) >= 0.5
        region = volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        region[inside & (region == 0)] = v
    flagged = [v for v, f in vertebrae.items() if f.flags]
    flags = ["ct_of_another_patient"] if flagged and 2 * len(flagged) >= len(vertebrae) else []
    if flagged:
        logger.warning(
            "CT fusion: the CT shapes of %s do not explain the reconstruction (residual beyond %s)%s.",
            [label_to_name(v) for v in flagged], RESIDUAL_LIMITS, "; the CT is likely of another patient" if flags else "",
        )  # fmt: skip
    return CTFusion(vertebrae, poses, volume, out_affine, flags)


def write_fusion_outputs(fusion: CTFusion, folder: str | os.PathLike, mesh_formats: Iterable[str] = ("stl", "ply")) -> dict[str, Path]:
    """Write ``standing_ct_labels.nii.gz``, ``standing_ct_meshes/`` and ``ct_transforms.json`` into ``folder``.

    Returns:
        ``{"labels", "meshes", "transforms"}`` paths.
    """
    import nibabel as nib

    from transvert_monai.data.atomic import atomic_write, write_json_atomic
    from transvert_monai.outputs import write_meshes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(fusion.label_volume.astype(np.uint8), fusion.affine)
    image.header.set_xyzt_units("mm")
    labels_path = folder / "standing_ct_labels.nii.gz"
    atomic_write(labels_path, lambda tmp: nib.save(image, str(tmp)))
    meshes = folder / "standing_ct_meshes"
    write_meshes(fusion.label_volume, fusion.affine, meshes, formats=tuple(mesh_formats))
    transforms = folder / "ct_transforms.json"
    write_json_atomic(transforms, fusion.to_dict())
    return {"labels": labels_path, "meshes": meshes, "transforms": transforms}
