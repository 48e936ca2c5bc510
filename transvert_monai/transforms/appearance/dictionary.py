"""Dictionary-based wrappers of the appearance transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from transvert_monai.transforms.appearance.array import DRRAppearance, RandDRRAppearance

__all__ = ["DRRAppearanced", "RandDRRAppearanced"]


class DRRAppearanced(MapTransform):
    """Dictionary-based wrapper of :class:`DRRAppearance`.

    Args:
        keys: packed samples (4, P, P) or (B, 4, P, P) to transform (typically ``"image"``).
        allow_missing_keys: skip missing keys instead of raising.
        kwargs: the arguments of :class:`DRRAppearance`.
    """

    backend = DRRAppearance.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        self.appearance = DRRAppearance(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.appearance(d[key])
        return d


class RandDRRAppearanced(RandomizableTransform, MapTransform):
    """Dictionary-based wrapper of :class:`RandDRRAppearance`: one draw per call, shared by every key.

    The parameters are drawn for the first present key's shape and applied to every key (which must
    then have the same number of samples), so several items of one sample get one appearance.

    Args:
        keys: packed samples (4, P, P) or (B, 4, P, P) to transform (typically ``"image"``).
        prob: probability of perturbing a sample (per sample of a batch; unperturbed samples are z-scored).
        allow_missing_keys: skip missing keys instead of raising.
        kwargs: the other arguments of :class:`RandDRRAppearance` (ranges, switches).

    Example:
        >>> aug = RandDRRAppearanced("image", prob=0.8).set_random_state(seed=0)
    """

    backend = RandDRRAppearance.backend

    def __init__(
        self, keys: KeysCollection, prob: float = 1.0, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.appearance = RandDRRAppearance(prob=prob, **kwargs)  # checks prob before the base class clips it
        RandomizableTransform.__init__(self, prob)
        # one random stream, ``self.R``: what a checkpoint of the pipeline's random states saves and restores
        self.appearance.R = self.R

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandDRRAppearanced:
        super().set_random_state(seed, state)
        self.appearance.R = self.R
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        first = True
        for key in self.key_iterator(d):
            d[key] = self.appearance(d[key], randomize=first)
            first = False
        self._do_transform = self.appearance._do_transform
        return d
