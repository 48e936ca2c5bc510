"""Networks of TransVert: the generator (:class:`TransVert`) and its 3D patch discriminator.

Bundle configs name them by dotted path, e.g. ``"_target_": "transvert_monai.networks.TransVert"``.
"""

from __future__ import annotations

from transvert_monai.networks.discriminator import TransVertDiscriminator
from transvert_monai.networks.shape_prior import ShapePrior, fit_training_statistics
from transvert_monai.networks.transvert import (
    CHANNEL_PRESETS,
    VARIANT_SWITCHES,
    Fusion,
    TransVert,
    TransVertVariant,
    Views,
)

__all__ = [
    "CHANNEL_PRESETS",
    "VARIANT_SWITCHES",
    "Fusion",
    "ShapePrior",
    "TransVert",
    "TransVertDiscriminator",
    "TransVertVariant",
    "Views",
    "fit_training_statistics",
]
