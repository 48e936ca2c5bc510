"""Spatial augmentation of whole cases (CT, mask, centroids together)."""

from __future__ import annotations

from transvert_monai.transforms.spatial.dictionary import (
    RandSmoothElasticd,
    RandWorldScaled,
    scale_world,
    smooth_displacement,
    warp_points,
)

__all__ = ["RandWorldScaled", "RandSmoothElasticd", "scale_world", "smooth_displacement", "warp_points"]
