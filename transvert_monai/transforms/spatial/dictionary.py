"""Shape augmentation without resampling: :class:`RandWorldScaled` scales the world a case lives in.

Scaling a CT's affine (about a centre) rescales the patient's anatomy in millimetres exactly —
vertebrae get taller or wider, ray paths through them longer or shorter — at no cost and with no
interpolation, and the same map applied to the mask and to the centroids keeps all three
consistent. It complements MONAI's resampling deformations (``RandSmoothDeformd``,
``Rand3DElasticd``), which are far costlier on a whole CT.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform

from transvert_monai.geometry import grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import sample_range, volume_and_affine

__all__ = ["RandWorldScaled", "scale_world"]


def scale_world(affine: torch.Tensor, factors: Sequence[float], centre_mm: torch.Tensor) -> torch.Tensor:
    """Affine of the same voxels after scaling world space by ``factors`` (x, y, z) about ``centre_mm``."""
    s = torch.eye(4, dtype=torch.float64)
    s[:3, :3] = torch.diag(torch.as_tensor(factors, dtype=torch.float64))
    s[:3, 3] = torch.as_tensor(centre_mm, dtype=torch.float64) * (1 - s.diagonal()[:3])
    return s @ torch.as_tensor(affine, dtype=torch.float64)


class RandWorldScaled(RandomizableTransform, MapTransform):
    """Scale the anatomy of a case by a random factor per world axis (about the first key's grid centre).

    The factors are drawn uniform in ``1 ± scale_range`` per axis (x: left–right, y: anterior–posterior,
    z: superior–inferior). The affines of ``keys`` and the centroids under ``centroids_key`` are mapped;
    the voxel arrays are untouched. The factors are stored in each MetaTensor's meta under ``"world_scale"``.

    Args:
        keys: volumes sharing one grid (CT, mask).
        scale_range: half-range of the factors (one number or three); default 0.1.
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
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.scale_range = sample_range(scale_range, "scale_range")
        if any(r >= 1 for r in self.scale_range):
            raise ValueError(f"`scale_range` must be below 1 (a factor must stay positive), got {scale_range!r}.")
        self.centroids_key = centroids_key
        self.factors = (1.0, 1.0, 1.0)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandWorldScaled:
        super().set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self.factors = (
            tuple(1.0 + float(self.R.uniform(-r, r)) for r in self.scale_range) if self._do_transform else (1.0, 1.0, 1.0)
        )

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
