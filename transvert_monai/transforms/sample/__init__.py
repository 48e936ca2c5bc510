"""Per-vertebra training samples: packed 4-channel DRR/VOI input and 3D target."""

from __future__ import annotations

from transvert_monai.transforms.sample.dictionary import ExtractVertebraSamplesd, RandExtractVertebraSamplesd
from transvert_monai.transforms.sample.functional import VertebraSamples, extract_vertebra_samples, patch_voi_disc, zscore
from transvert_monai.transforms.sample.poses import with_fixed_poses
from transvert_monai.transforms.sample.targets import iter_vertebra_targets

__all__ = [
    "ExtractVertebraSamplesd",
    "RandExtractVertebraSamplesd",
    "VertebraSamples",
    "extract_vertebra_samples",
    "iter_vertebra_targets",
    "patch_voi_disc",
    "with_fixed_poses",
    "zscore",
]
