"""VOI annotations (C2V disc, B2V body, V2V vertebra, none) and the 3D target crop."""

from __future__ import annotations

from transvert_monai.transforms.voi.array import RenderVOIDisc
from transvert_monai.transforms.voi.functional import (
    VOIMode,
    approximate_body_mask,
    crop_vertebra_target,
    render_voi_disc,
    render_voi_shadow,
)

__all__ = [
    "RenderVOIDisc",
    "VOIMode",
    "approximate_body_mask",
    "crop_vertebra_target",
    "render_voi_disc",
    "render_voi_shadow",
]
