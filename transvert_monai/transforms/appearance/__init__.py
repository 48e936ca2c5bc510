"""Appearance augmentation: raw DRR line integrals → the network's z-scored input, with a varied radiograph look."""

from __future__ import annotations

from transvert_monai.transforms.appearance.array import DRRAppearance, RandDRRAppearance, apply_to_packed, check_range
from transvert_monai.transforms.appearance.dictionary import DRRAppearanced, RandDRRAppearanced
from transvert_monai.transforms.appearance.functional import (
    IMAGE_CHANNELS,
    VOI_CHANNELS,
    IntensityCurve,
    check_line_integrals,
    drr_appearance,
    gaussian_blur,
    intensity_ramp,
    minmax_normalise,
)

__all__ = [
    "DRRAppearance",
    "DRRAppearanced",
    "IMAGE_CHANNELS",
    "IntensityCurve",
    "RandDRRAppearance",
    "RandDRRAppearanced",
    "VOI_CHANNELS",
    "apply_to_packed",
    "check_line_integrals",
    "check_range",
    "drr_appearance",
    "gaussian_blur",
    "intensity_ramp",
    "minmax_normalise",
]
