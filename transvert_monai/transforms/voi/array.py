"""VOI annotation transforms on one image: :class:`RenderVOIDisc` (C2V) for radiograph or DRR patches."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_tensor

from transvert_monai.transforms.drr.array import derived_meta_tensor
from transvert_monai.transforms.drr.functional import patch_pixels
from transvert_monai.transforms.voi.functional import render_voi_disc

__all__ = ["RenderVOIDisc"]


class RenderVOIDisc(Transform):
    """The C2V annotation of an image: a disc of ``radius_px`` around a centroid given in its pixels.

    Args:
        radius_px: disc radius in pixels (the paper uses 1).

    Example:
        >>> voi = RenderVOIDisc()(patch, centroid_rc=(31.6, 32.2))  # (1, H, W) → (1, H, W) of 0/1

    Raises:
        ValueError: negative radius; an image that is not (C, H, W); a centroid outside the image.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, radius_px: float = 1.0) -> None:
        if radius_px < 0:
            raise ValueError(f"`radius_px` must be non-negative, got {radius_px!r}.")
        self.radius_px = float(radius_px)

    def __call__(self, img: NdarrayOrTensor, centroid_rc: Sequence[float] | torch.Tensor) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if img.ndim != 3:
            raise ValueError(f"RenderVOIDisc expects a channel-first 2D image (C, H, W), got shape {tuple(img.shape)}.")
        h, w = img.shape[-2:]
        centre = torch.as_tensor(centroid_rc, dtype=torch.float64).reshape(2)
        if not (-0.5 <= centre[0] <= h - 0.5 and -0.5 <= centre[1] <= w - 0.5):
            raise ValueError(f"the centroid (row, col) = {centre.tolist()} lies outside the {h}×{w} image.")
        disc = render_voi_disc(centre, patch_pixels(torch.zeros(2), (h, w)), self.radius_px)[None].to(img.device)
        return derived_meta_tensor(disc, img.affine, img) if isinstance(img, MetaTensor) else disc
