"""DRR rendering: HU → attenuation, cone-beam ray casting, MONAI transforms."""

from __future__ import annotations

from transvert_monai.transforms.drr.array import (
    RandCArmPose,
    RandRenderDRR,
    RenderDRR,
    derived_meta_tensor,
    draw_pose,
    sample_range,
    volume_and_affine,
)
from transvert_monai.transforms.drr.dictionary import RandRenderDRRd, RenderDRRd
from transvert_monai.transforms.drr.functional import (
    AttenuationVolume,
    DRROutput,
    hu_to_mu,
    line_integrals,
    patch_origin,
    patch_pixels,
    render_drr,
)

__all__ = [
    "RandCArmPose",
    "AttenuationVolume",
    "DRROutput",
    "RandRenderDRR",
    "RandRenderDRRd",
    "RenderDRR",
    "RenderDRRd",
    "derived_meta_tensor",
    "draw_pose",
    "hu_to_mu",
    "line_integrals",
    "patch_origin",
    "patch_pixels",
    "render_drr",
    "sample_range",
    "volume_and_affine",
]
