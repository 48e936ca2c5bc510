"""Shape augmentation of whole cases, with the centroids kept consistent.

* :class:`RandWorldScaled` scales the world a case lives in: scaling a CT's affine (about a centre)
  rescales the patient's anatomy in millimetres exactly — vertebrae get taller or wider, ray paths
  through them longer or shorter — at no cost and with no interpolation; the same map moves the
  mask and the centroids.
* :class:`RandSmoothElasticd` bends the anatomy with a smooth random displacement field in
  millimetres (control points on a coarse lattice, trilinear in between) and resamples CT and mask
  together; the centroids move with the field. MONAI's ``RandSmoothDeformd`` resamples to a fixed
  ``spatial_size`` without updating the affine, and ``Rand3DElasticd`` smooths a full-resolution
  noise field (seconds on a whole CT); neither moves the centroids.
"""

from __future__ import annotations

import math

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import ensure_tuple_rep

from transvert_monai.geometry import grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import sample_range, volume_and_affine

__all__ = ["RandWorldScaled", "RandSmoothElasticd", "scale_world", "smooth_displacement", "warp_points"]


def scale_world(affine: torch.Tensor, factors: Sequence[float], centre_mm: torch.Tensor) -> torch.Tensor:
    """Affine of the same voxels after scaling world space by ``factors`` (x, y, z) about ``centre_mm``."""
    s = torch.eye(4, dtype=torch.float64)
    s[:3, :3] = torch.diag(torch.as_tensor(factors, dtype=torch.float64))
    s[:3, 3] = torch.as_tensor(centre_mm, dtype=torch.float64) * (1 - s.diagonal()[:3])
    return s @ torch.as_tensor(affine, dtype=torch.float64)


class RandWorldScaled(RandomizableTransform, MapTransform):
    """Scale the anatomy of a case by a random factor per world axis (about the first key's grid centre).

    The factors are drawn uniform in ``1 ± scale_range`` per axis (x: left–right, y: anterior–posterior,
    z: superior–inferior), times one common factor drawn log-uniform in ``[1 / (1 + s), 1 + s]`` with
    ``s = isotropic_scale_range`` (a vertebra of another size, not only another shape: with a per-level
    shape prior it teaches the network to read the vertebra's size from the scale-true patches
    instead of trusting the prior's). The affines of ``keys`` and the centroids under ``centroids_key`` are mapped;
    the voxel arrays are untouched. The factors are stored in each MetaTensor's meta under ``"world_scale"``.

    Args:
        keys: volumes sharing one grid (CT, mask).
        scale_range: half-range of the factors (one number or three); default 0.1.
        isotropic_scale_range: ``s`` of the common factor (0: none, the default).
        centroids_key: item with ``{index: world mm}`` centroids to move along (None: no centroids).
        prob: probability of scaling.
        allow_missing_keys: as MONAI.

    Raises:
        ValueError: a scale range outside [0, 1).
    """

    def __init__(
        self,
        keys: KeysCollection,
        scale_range: float | Sequence[float] = 0.1,
        centroids_key: str | None = TransVertKeys.CENTROIDS.value,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
        isotropic_scale_range: float = 0.0,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.scale_range = sample_range(scale_range, "scale_range")
        if any(r >= 1 for r in self.scale_range):
            raise ValueError(f"`scale_range` must be below 1 (a factor must stay positive), got {scale_range!r}.")
        if isinstance(isotropic_scale_range, bool) or not isinstance(isotropic_scale_range, (int, float)) or not (
            0 <= isotropic_scale_range < 1
        ):
            raise ValueError(f"`isotropic_scale_range` must be a number in [0, 1), got {isotropic_scale_range!r}.")
        self.isotropic_scale_range = float(isotropic_scale_range)
        self.centroids_key = centroids_key
        self.factors = (1.0, 1.0, 1.0)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandWorldScaled:
        super().set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            self.factors = (1.0, 1.0, 1.0)
            return
        per_axis = [1.0 + float(self.R.uniform(-r, r)) for r in self.scale_range]
        common = 1.0
        if self.isotropic_scale_range:
            bound = math.log1p(self.isotropic_scale_range)
            common = math.exp(float(self.R.uniform(-bound, bound)))
        self.factors = tuple(f * common for f in per_axis)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        keys = list(self.key_iterator(d))
        if not keys or self.factors == (1.0, 1.0, 1.0):
            return d
        volume, affine = volume_and_affine(d[keys[0]], type(self).__name__)
        centre = grid_centre_mm(affine, volume.shape)
        for key in keys:
            img = d[key]
            volume_and_affine(img, type(self).__name__)  # same checks for every key
            meta = {k: v for k, v in img.meta.items() if k != "affine"}
            meta["world_scale"] = list(self.factors)
            # shares the voxel array: only the world placement changes
            out = MetaTensor(img.as_tensor(), affine=scale_world(img.affine, self.factors, centre).to(img.affine.dtype), meta=meta)
            d[key] = out
        if self.centroids_key is not None and self.centroids_key in d:
            s = torch.tensor(self.factors, dtype=torch.float64)
            d[self.centroids_key] = {k: centre + (torch.as_tensor(v, dtype=torch.float64) - centre) * s for k, v in d[self.centroids_key].items()}
        return d


def smooth_displacement(control: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(3, *shape) displacement at every voxel from (3, n0, n1, n2) values on a lattice spanning the grid.

    The lattice's corner points sit on the grid's corner voxels; in between the field is trilinear.
    """
    return F.interpolate(control[None], size=tuple(int(n) for n in shape), mode="trilinear", align_corners=True)[0]


def _lattice_coords(voxels: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """grid_sample coordinates (x = last axis first) of (N, 3) voxel positions on a lattice spanning ``shape``."""
    size = torch.as_tensor(shape, dtype=voxels.dtype)
    return (2 * voxels / (size - 1).clamp_min(1) - 1).flip(-1)


def warp_points(
    points_mm: torch.Tensor, control_mm: torch.Tensor, affine: torch.Tensor, shape: Sequence[int], iterations: int = 8
) -> torch.Tensor:
    """Where points of the input land after the warp ``out(x) = in(x + u(x))``: solve ``x + u(x) = p``.

    Args:
        points_mm: (N, 3) world positions in the input.
        control_mm: (3, n0, n1, n2) world displacement (mm) on the lattice spanning the grid.
        affine: (4, 4) voxel → world map of the grid.
        shape: the grid's (X, Y, Z).
        iterations: fixed-point steps ``x ← p − u(x)`` (a contraction while ``|∇u| < 1``).
    """
    a = torch.as_tensor(affine, dtype=torch.float64)
    inv = torch.linalg.inv(a)
    p = torch.as_tensor(points_mm, dtype=torch.float64).reshape(-1, 3)
    field = control_mm.to(torch.float64)[None]
    x = p.clone()
    for _ in range(iterations):
        vox = x @ inv[:3, :3].T + inv[:3, 3]
        g = _lattice_coords(vox, shape).reshape(1, -1, 1, 1, 3)
        u = F.grid_sample(field, g, mode="bilinear", padding_mode="border", align_corners=True)[0, :, :, 0, 0].T
        x = p - u
    return x


class RandSmoothElasticd(RandomizableTransform, MapTransform):
    """Smooth random elastic deformation of volumes sharing one grid (CT and mask), centroids following.

    A displacement ``u`` in world millimetres is drawn normal with standard deviation ``magnitude_mm``
    per component at control points every ``control_spacing_mm`` (at least 2 per axis, the outer
    ones on the grid's corner voxels), interpolated trilinearly to every voxel, and each volume is
    resampled as ``out(x) = in(x + u(x))`` on its own grid (affine unchanged). A centroid ``c`` moves
    to the ``x`` with ``x + u(x) = c``. With ``magnitude_mm ≤ control_spacing_mm / 6`` the map stays
    one-to-one (neighbouring control values differ by far less than their spacing). The last draw is
    kept in ``self.control`` ((3, n0, n1, n2) mm, None when not deformed).

    Args:
        keys: volumes on one grid (CT, mask).
        magnitude_mm: standard deviation of the displacement at the control points.
        control_spacing_mm: distance between control points (a vertebra is ~30 mm tall).
        mode: interpolation per key (``"bilinear"`` for the CT, ``"nearest"`` for labels).
        padding_mode: ``grid_sample`` padding (``"border"`` keeps air at the edges as air).
        centroids_key: item with ``{index: world mm}`` centroids to move along (None: none).
        prob: probability of deforming.
        allow_missing_keys: as MONAI.

    Raises:
        ValueError: a negative magnitude, a non-positive spacing, or a magnitude above spacing / 6.
    """

    def __init__(
        self,
        keys: KeysCollection,
        magnitude_mm: float = 2.0,
        control_spacing_mm: float = 40.0,
        mode: str | Sequence[str] = ("bilinear", "nearest"),
        padding_mode: str = "border",
        centroids_key: str | None = TransVertKeys.CENTROIDS.value,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if not control_spacing_mm > 0:
            raise ValueError(f"`control_spacing_mm` must be positive, got {control_spacing_mm!r}.")
        if not 0 <= magnitude_mm <= control_spacing_mm / 6:
            raise ValueError(
                f"`magnitude_mm` must be within [0, control_spacing_mm / 6 = {control_spacing_mm / 6:g}] so that the "
                f"deformation cannot fold, got {magnitude_mm!r}; raise `control_spacing_mm` or lower the magnitude."
            )
        self.magnitude_mm, self.control_spacing_mm = float(magnitude_mm), float(control_spacing_mm)
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        for m in self.mode:
            if m not in ("bilinear", "nearest"):
                raise ValueError(f"`mode` must be 'bilinear' or 'nearest' per key, got {m!r}.")
        self.padding_mode = padding_mode
        self.centroids_key = centroids_key
        self.control: torch.Tensor | None = None

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandSmoothElasticd:
        super().set_random_state(seed, state)
        return self

    def randomize(self, lattice: Sequence[int]) -> None:  # type: ignore[override]
        super().randomize(None)
        self.control = (
            torch.from_numpy(self.R.normal(0.0, self.magnitude_mm, size=(3, *lattice))).to(torch.float32)
            if self._do_transform and self.magnitude_mm > 0
            else None
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            self.randomize((2, 2, 2))
            return d
        volume, affine = volume_and_affine(d[keys[0]], type(self).__name__)
        shape = tuple(int(n) for n in volume.shape[-3:])
        extent_mm = torch.linalg.norm(affine[:3, :3].to(torch.float64), dim=0) * torch.tensor(shape, dtype=torch.float64)
        lattice = [max(2, int(math.ceil(float(e) / self.control_spacing_mm)) + 1) for e in extent_mm]
        self.randomize(lattice)
        if self.control is None:
            return d
        inv = torch.linalg.inv(affine.to(torch.float64))[:3, :3].to(torch.float32)
        # voxel displacement = A⁻¹ u; sampling positions v + A⁻¹ u(v) in grid_sample's coordinates
        disp = torch.einsum("ij,j...->i...", inv, smooth_displacement(self.control, shape))
        base = [torch.arange(n, dtype=torch.float32) for n in shape]
        grid = torch.stack(
            [(2 * (b.reshape([-1 if i == a else 1 for i in range(3)]) + disp[a]) / max(n - 1, 1) - 1) for a, (b, n) in enumerate(zip(base, shape))],
            dim=-1,
        ).flip(-1)[None]
        del disp
        for key, mode in zip(self.key_iterator(d), self.mode):
            img = d[key]
            vol, aff = volume_and_affine(img, type(self).__name__)
            if tuple(vol.shape[-3:]) != shape or not torch.allclose(aff.to(torch.float64), affine.to(torch.float64)):
                raise ValueError(f"{type(self).__name__}: `{key}` is not on the grid of `{keys[0]}`; resample them together first.")
            x = vol.reshape(1, 1, *shape)
            warped = F.grid_sample(x.to(torch.float32), grid, mode=mode, padding_mode=self.padding_mode, align_corners=True)
            meta = {k: v for k, v in img.meta.items() if k != "affine"}
            d[key] = MetaTensor(warped.reshape(img.shape).to(img.dtype), affine=img.affine, meta=meta)
        if self.centroids_key is not None and self.centroids_key in d and d[self.centroids_key]:
            labels = list(d[self.centroids_key])
            pts = torch.stack([torch.as_tensor(d[self.centroids_key][k], dtype=torch.float64) for k in labels])
            moved = warp_points(pts, self.control, affine, shape)
            d[self.centroids_key] = dict(zip(labels, moved))
        return d
