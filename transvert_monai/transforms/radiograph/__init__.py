"""Deployment input: per-vertebra packed patches of a lateral and an AP radiograph."""

from __future__ import annotations

from transvert_monai.transforms.radiograph.array import RadiographPatches
from transvert_monai.transforms.radiograph.dictionary import LoadRadiographd, LoadRadiographPaird, RadiographPatchesd
from transvert_monai.transforms.radiograph.functional import (
    RadiographSamples,
    as_centroids_2d,
    sample_patches,
    extract_radiograph_samples,
)

__all__ = [
    "LoadRadiographd",
    "LoadRadiographPaird",
    "RadiographPatches",
    "RadiographPatchesd",
    "RadiographSamples",
    "as_centroids_2d",
    "sample_patches",
    "extract_radiograph_samples",
]
