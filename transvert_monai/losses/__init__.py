"""Losses of TransVert that MONAI lacks: the paper's generator and discriminator objectives."""

from __future__ import annotations

from transvert_monai.losses.adversarial import TransVertDiscriminatorLoss, TransVertGeneratorLoss

__all__ = ["TransVertDiscriminatorLoss", "TransVertGeneratorLoss"]
