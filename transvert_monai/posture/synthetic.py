"""Known posture changes of a real CT: per-vertebra rigid motions and the piecewise-rigid resampling that applies them.

A posture change is a set of rigid world transforms ``{VerSe index: (4, 4)}`` (supine → moved, RAS
mm) built as a kinematic chain (:func:`chain_transforms`): the most caudal vertebra stays put and
each intervertebral joint turns the vertebrae above it about the joint centre (the midpoint of
the two body centroids), by a flexion, a lateral bending and an axial rotation (degrees, the
conventions of :mod:`transvert_monai.posture.frames`: flexion about the patient's left axis,
lateral bending about the anterior axis (+ to the right), axial rotation about the superior axis
(+ anterior turning left)), optionally followed by a translation of single vertebrae.

:func:`piecewise_rigid_resample` moves a CT and its vertebra mask accordingly (backward mapping,
so the moved images have no holes): a voxel that a moved vertebra covers takes that vertebra's own
rigid motion (the bone moves exactly rigidly); every other voxel (discs, soft tissue, ribs) takes a
blend of the vertebrae's motions weighted by a Gaussian of its distance to their moved body
centroids (σ ``blend_sigma_mm``), a smooth displacement field that keeps the body continuous.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from scipy import ndimage

from transvert_monai.data.centroids import as_label_array
from transvert_monai.data.labels import label_to_name, level_order, name_to_label
from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import as_affine
from transvert_monai.posture.frames import angles_to_rotation

__all__ = [
    "POSTURE_SCENARIOS",
    "rigid_about",
    "chain_transforms",
    "posture_scenario",
    "apply_transform",
    "piecewise_rigid_resample",
    "ShapeSet",
    "shapes_from_label_map",
]

#: Named posture changes (joint angles between adjacent levels, degrees; translations in mm):
#: ``{"joints": {(upper, lower) names or "all": (flexion, lateral_bending, axial_rotation)}, "translate": {name: (x, y, z)}}``.
POSTURE_SCENARIOS: dict[str, dict[str, Any]] = {
    "neutral": {"description": "no change (the CT's own posture)"},
    "kyphosis_plus10": {"description": "+10° thoracic kyphosis: +1.25° flexion at each joint T4/T5 … T11/T12", "kyphosis_deg": 10.0},
    "scoliosis15": {
        "description": "15° right-convex thoracic curve T5–T11 (2.5° lateral bending per joint) with apical axial rotation "
        "(2.5° per joint, peaking at T8)",
        "scoliosis_deg": 15.0,
    },
    "apex_shift": {"description": "apex T7–T9 translated 4 mm to the right and 2 mm anteriorly", "translate_mm": (4.0, 2.0, 0.0)},
    "lordosis_plus10": {"description": "+10° lumbar lordosis: 2.5° extension at each joint L1/L2 … L4/L5", "lordosis_deg": 10.0},
}


def rigid_about(rotation: np.ndarray, centre_mm: Sequence[float]) -> np.ndarray:
    """(4, 4) rigid transform rotating by ``rotation`` (3, 3) about the world point ``centre_mm``."""
    out = np.eye(4)
    c = np.asarray(centre_mm, dtype=np.float64)
    out[:3, :3] = rotation
    out[:3, 3] = c - rotation @ c
    return out


def chain_transforms(
    centroids_mm: Mapping[int, NdarrayOrTensor],
    joint_angles_deg: Mapping[tuple[int, int], Sequence[float]],
    translations_mm: Mapping[int, Sequence[float]] | None = None,
) -> dict[int, np.ndarray]:
    """Rigid transforms of a kinematic chain of vertebrae (module docstring).

    Args:
        centroids_mm: {VerSe index: (3,) world body centroid} of the vertebrae.
        joint_angles_deg: {(upper, lower): (flexion, lateral_bending, axial_rotation)} of the upper vertebra
            relative to the lower one, about axes parallel to the world RAS axes through the joint centre.
        translations_mm: {VerSe index: (3,)} extra world translation of single vertebrae (not propagated).

    Returns:
        {VerSe index: (4, 4) float64 supine → moved}; the most caudal vertebra is the identity.
    """
    order = sorted((int(v) for v in centroids_mm), key=level_order)
    cent = {v: np.asarray(centroids_mm[v], dtype=np.float64).reshape(3) for v in order}
    out = {order[-1]: np.eye(4)}
    for upper, lower in zip(order[-2::-1], order[:0:-1]):  # caudal → cranial
        angles = joint_angles_deg.get((upper, lower), (0.0, 0.0, 0.0))
        joint = rigid_about(angles_to_rotation(*angles), (cent[upper] + cent[lower]) / 2.0)
        out[upper] = out[lower] @ joint
    for v, shift in (translations_mm or {}).items():
        t = np.eye(4)
        t[:3, 3] = shift
        out[int(v)] = t @ out[int(v)]
    return {v: out[v] for v in order}


def _joints(order: list[int], upper: str, lower: str) -> list[tuple[int, int]]:
    lo, hi = level_order(name_to_label(upper)), level_order(name_to_label(lower))
    return [(a, b) for a, b in zip(order[:-1], order[1:]) if lo <= level_order(a) and level_order(b) <= hi]


def posture_scenario(name: str, centroids_mm: Mapping[int, NdarrayOrTensor]) -> dict[int, np.ndarray]:
    """The transforms of a named posture change (:data:`POSTURE_SCENARIOS`) of these vertebrae.

    Raises:
        TransVertInputError: an unknown name, or vertebrae that do not span the scenario's levels.
    """
    if name not in POSTURE_SCENARIOS:
        raise TransVertInputError(f"unknown posture scenario {name!r}; choose one of {sorted(POSTURE_SCENARIOS)}.")
    spec = POSTURE_SCENARIOS[name]
    order = sorted((int(v) for v in centroids_mm), key=level_order)
    names = {label_to_name(v) for v in order}

    def need(*levels: str) -> None:
        missing = [n for n in levels if n not in names]
        if missing:
            raise TransVertInputError(f"posture scenario {name!r} needs the vertebrae {missing}, absent from {sorted(names)}.")

    joints: dict[tuple[int, int], tuple[float, float, float]] = {}
    translations: dict[int, tuple[float, float, float]] = {}
    if "kyphosis_deg" in spec:
        need("T4", "T12")
        pairs = _joints(order, "T4", "T12")
        joints = {p: (spec["kyphosis_deg"] / len(pairs), 0.0, 0.0) for p in pairs}
    elif "lordosis_deg" in spec:
        need("L1", "L5")
        pairs = _joints(order, "L1", "L5")
        joints = {p: (-spec["lordosis_deg"] / len(pairs), 0.0, 0.0) for p in pairs}
    elif "scoliosis_deg" in spec:
        need("T5", "T11")
        pairs = _joints(order, "T5", "T11")
        half = len(pairs) // 2
        step = spec["scoliosis_deg"] / len(pairs)
        # lateral bending of the upper vertebra to the left raises a right-convex curve; axial rotation builds up to the apex
        joints = {p: (0.0, -step, step if i < half else -step) for i, p in enumerate(pairs)}
    elif "translate_mm" in spec:
        need("T7", "T9")
        translations = {name_to_label(n): tuple(spec["translate_mm"]) for n in ("T7", "T8", "T9")}
    return chain_transforms(centroids_mm, joints, translations)


def apply_transform(transform: NdarrayOrTensor, points_mm: NdarrayOrTensor) -> np.ndarray:
    """Apply a (4, 4) world transform to points (..., 3)."""
    t = np.asarray(transform, dtype=np.float64)
    p = np.asarray(points_mm, dtype=np.float64)
    return p @ t[:3, :3].T + t[:3, 3]


def piecewise_rigid_resample(
    ct: MetaTensor,
    mask: MetaTensor,
    transforms: Mapping[int, NdarrayOrTensor],
    centroids_mm: Mapping[int, NdarrayOrTensor],
    blend_sigma_mm: float = 15.0,
    chunk_voxels: int = 1 << 22,
) -> tuple[MetaTensor, MetaTensor, dict[int, torch.Tensor]]:
    """Move a CT and its vertebra mask by per-vertebra rigid transforms (module docstring), on the same grid.

    Args:
        ct: (1, X, Y, Z) HU MetaTensor.
        mask: (1, X, Y, Z) VerSe-indexed MetaTensor on the CT's grid.
        transforms: {VerSe index: (4, 4) world supine → moved}; mask labels without one are dropped from the
            moved mask (their voxels follow the blend in the CT).
        centroids_mm: {VerSe index: (3,)} body centroids of the moved vertebrae (before the move).
        blend_sigma_mm: width of the Gaussian blend of the motions outside the vertebrae.
        chunk_voxels: voxels processed at a time (memory bound).

    Returns:
        ``(moved_ct, moved_mask, moved_centroids)``: MetaTensors on the input grid and {index: (3,) world}.

    Raises:
        TransVertInputError: mask and CT on different grids, or a transform without a centroid.
    """
    aff = as_affine(ct.affine).numpy()
    if tuple(mask.shape[-3:]) != tuple(ct.shape[-3:]) or np.abs(as_affine(mask.affine).numpy() - aff).max() > 1e-2:
        raise TransVertInputError(
            f"the mask (shape {tuple(mask.shape)}) is not on the CT's grid (shape {tuple(ct.shape)}); resample it onto the CT."
        )
    hu = np.asarray(ct.detach().cpu().numpy(), dtype=np.float32).reshape(ct.shape[-3:])
    labels_arr = as_label_array(mask)
    labels = sorted((int(v) for v in transforms), key=level_order)
    absent = [label_to_name(v) for v in labels if v not in centroids_mm]
    if absent:
        raise TransVertInputError(f"no centroid for the moved vertebrae {absent}.")
    mats = np.stack([np.asarray(transforms[v], dtype=np.float64) for v in labels])
    inv = np.linalg.inv(mats)
    moved_c = np.stack([apply_transform(mats[i], centroids_mm[v]) for i, v in enumerate(labels)])
    boxes = ndimage.find_objects(np.clip(labels_arr, 0, None))
    # each moved vertebra's world box (its voxel box's corners moved), to test only nearby voxels
    world_boxes = []
    for i, v in enumerate(labels):
        box = boxes[v - 1] if v - 1 < len(boxes) else None
        if box is None:
            world_boxes.append(None)
            continue
        corners = np.array(np.meshgrid(*[[s.start - 1, s.stop] for s in box], indexing="ij")).reshape(3, -1).T
        moved = apply_transform(mats[i], corners @ aff[:3, :3].T + aff[:3, 3])
        world_boxes.append((moved.min(0) - 1.0, moved.max(0) + 1.0))
    inv_aff = np.linalg.inv(aff)
    shape = hu.shape
    # 1. the blended backward map on a coarse grid (every ~4 mm), as voxel displacements, upsampled trilinearly
    step = np.maximum(1, np.round(4.0 / np.linalg.norm(aff[:3, :3], axis=0))).astype(int)
    coarse_n = [int(np.ceil((n - 1) / s)) + 1 for n, s in zip(shape, step)]
    axes = [np.linspace(0.0, n - 1.0, c) for n, c in zip(shape, coarse_n)]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    p = ijk @ aff[:3, :3].T + aff[:3, 3]
    d2 = ((p[:, None, :] - moved_c[None]) ** 2).sum(-1)
    w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2.0 * blend_sigma_mm**2))  # log-sum-exp safe
    w /= w.sum(1, keepdims=True)
    src = np.zeros_like(p)
    for i in range(len(labels)):
        src += w[:, i : i + 1] * apply_transform(inv[i], p)
    disp = (src @ inv_aff[:3, :3].T + inv_aff[:3, 3] - ijk).T.reshape(3, *coarse_n)
    field = torch.nn.functional.interpolate(
        torch.from_numpy(disp).float()[None], size=shape, mode="trilinear", align_corners=True
    )[0]
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij"))
    field += index  # source voxel indices
    del index
    out_lab = np.zeros(shape, dtype=np.uint8)
    # 2. voxels a moved vertebra covers follow that vertebra exactly (searched in its moved box only)
    for i, v in enumerate(labels):
        if world_boxes[i] is None:
            continue
        lo, hi = world_boxes[i]
        corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T @ inv_aff[:3, :3].T + inv_aff[:3, 3]
        a = np.clip(np.floor(corners.min(0)).astype(int), 0, np.array(shape) - 1)
        b = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 1, np.array(shape))
        sub = np.stack(np.meshgrid(*[np.arange(x, y) for x, y in zip(a, b)], indexing="ij"), -1).reshape(-1, 3)
        world = sub @ aff[:3, :3].T + aff[:3, 3]
        q = apply_transform(inv[i], world) @ inv_aff[:3, :3].T + inv_aff[:3, 3]
        qi = np.rint(q).astype(int)
        valid = ((qi >= 0) & (qi < shape)).all(1)
        hit = np.zeros(len(sub), dtype=bool)
        hit[valid] = labels_arr[qi[valid, 0], qi[valid, 1], qi[valid, 2]] == v
        sub, q = sub[hit], torch.from_numpy(q[hit]).float()
        field[:, sub[:, 0], sub[:, 1], sub[:, 2]] = q.T
        out_lab[sub[:, 0], sub[:, 1], sub[:, 2]] = v
    # 3. sample the CT at the source positions (trilinear; air outside), slab by slab
    image = torch.from_numpy(hu)[None, None]
    size = torch.tensor(shape, dtype=torch.float32)
    out_hu = torch.empty(shape, dtype=torch.float32)
    slab = max(1, chunk_voxels // (shape[1] * shape[2]))
    for x0 in range(0, shape[0], slab):
        f = field[:, x0 : x0 + slab]
        # grid_sample wants (z, y, x) order of the last dimension = (axis 2, axis 1, axis 0), normalised to [-1, 1]
        norm = (2.0 * f / (size - 1.0).clamp(min=1.0).reshape(3, 1, 1, 1) - 1.0).permute(1, 2, 3, 0).flip(-1)
        out_hu[x0 : x0 + slab] = torch.nn.functional.grid_sample(
            image + 1000.0, norm[None], mode="bilinear", padding_mode="zeros", align_corners=True
        )[0, 0] - 1000.0
    out_hu = out_hu.numpy()
    moved_ct = MetaTensor(torch.from_numpy(out_hu[None]), affine=torch.as_tensor(aff), meta={k: v for k, v in ct.meta.items() if k != "affine"})
    moved_mask = MetaTensor(torch.from_numpy(out_lab[None]), affine=torch.as_tensor(aff), meta={k: v for k, v in mask.meta.items() if k != "affine"})
    moved_centroids = {v: torch.from_numpy(moved_c[i]) for i, v in enumerate(labels)}
    return moved_ct, moved_mask, moved_centroids


@dataclass
class ShapeSet:
    """Per-vertebra shapes on their own grids, laid out like a ``SpineReconstruction`` (duck-typed for poses and fusion).

    Attributes:
        labels: VerSe indices.
        shapes: (B, 1, S, S, S) foreground probability × VerSe index.
        vertebra_affines: (B, 4, 4) voxel → world of each shape's grid.
        centres_mm: (B, 3) body centroids (world).
    """

    labels: list[int]
    shapes: torch.Tensor
    vertebra_affines: torch.Tensor
    centres_mm: torch.Tensor


def shapes_from_label_map(
    label_map: NdarrayOrTensor,
    affine: NdarrayOrTensor,
    centroids_mm: Mapping[int, NdarrayOrTensor],
    transforms: Mapping[int, NdarrayOrTensor] | None = None,
    labels: Iterable[int] | None = None,
    size: int = 64,
    spacing_mm: float = 1.5,
    axes: NdarrayOrTensor | None = None,
) -> ShapeSet:
    """Each vertebra of a label map moved by its transform and sampled on a ``size``³ grid around its moved centroid.

    The "perfect reconstruction" of a known posture: what the network would output if it were exact.

    Args:
        label_map: VerSe-indexed (X, Y, Z) or (1, X, Y, Z).
        affine: (4, 4) voxel → world of ``label_map``.
        centroids_mm: {VerSe index: (3,)} body centroids (before the move).
        transforms: {VerSe index: (4, 4)} world moves (default identity).
        labels: vertebrae (default: those in ``centroids_mm``).
        size, spacing_mm: the shape grid (voxels per side, mm).
        axes: (3, 3) world directions of the grid's index axes (columns; default the view-aligned axes
            of the default views: superior → inferior, posterior → anterior, right → left).

    Returns:
        :class:`ShapeSet` (probabilities are the trilinear resampling of the 0/1 mask, times the index).
    """
    arr = as_label_array(label_map)
    aff = as_affine(affine).numpy()
    grid_axes = np.asarray([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]).T if axes is None else np.asarray(axes, dtype=np.float64)
    wanted = sorted({int(v) for v in (labels if labels is not None else centroids_mm)}, key=level_order)
    inv_aff = np.linalg.inv(aff)
    ijk = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1).reshape(-1, 3).astype(np.float64)
    shapes, affines, centres = [], [], []
    for v in wanted:
        t = np.eye(4) if transforms is None or v not in transforms else np.asarray(transforms[v], dtype=np.float64)
        centre = apply_transform(t, centroids_mm[v])
        grid = np.eye(4)
        grid[:3, :3] = grid_axes * spacing_mm
        grid[:3, 3] = centre - grid[:3, :3] @ np.full(3, (size - 1) / 2.0)
        m = inv_aff @ np.linalg.inv(t) @ grid
        src = ijk @ m[:3, :3].T + m[:3, 3]
        occ = ndimage.map_coordinates((arr == v).astype(np.float32), src.T, order=1, cval=0.0, prefilter=False)
        shapes.append(torch.from_numpy(occ.reshape(size, size, size) * float(v)))
        affines.append(torch.from_numpy(grid))
        centres.append(torch.from_numpy(centre))
    return ShapeSet(wanted, torch.stack(shapes)[:, None], torch.stack(affines), torch.stack(centres))
