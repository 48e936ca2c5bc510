"""Spatial augmentation of whole cases (CT, mask, centroids together)."""

from __future__ import annotations

from transvert_monai.transforms.spatial.dictionary import RandWorldScaled, scale_world

__all__ = ["RandWorldScaled", "scale_world"]
