"""Inferers: how the network runs over the packed vertebra patches of one radiograph pair.

:class:`VertebraInferer` is the ``inferer`` of ``inference.json`` and of
:class:`~transvert_monai.apps.reconstruct.SpineReconstructor`: one code path for the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["VertebraInferer"]


class VertebraInferer(Inferer):
    """Run ``network(patches, levels)`` over the vertebrae of one study in batches of ``batch_size``.

    The input is the (B, 4, P, P) packed ``[lat, lat_voi, ap, ap_voi]`` patches
    (:class:`~transvert_monai.transforms.RadiographPatchesd`) and the (B,) VerSe indices (the level
    conditions TransVert's shape prior); the output is the network's (B, 1, S, S, S) output, float32,
    on the inputs' device. Like :class:`monai.inferers.SimpleInferer`, with the batch split so that a
    long spine fits in memory.

    Args:
        batch_size: vertebrae per forward pass.

    Raises:
        ValueError: a batch size that is not a positive whole number.
    """

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive whole number, got {batch_size!r}.")
        self.batch_size = int(batch_size)

    def __call__(  # type: ignore[override]
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], levels: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """(B, 1, S, S, S) float32 outputs of ``network`` for ``inputs`` (B, C, P, P) and ``levels`` (B,).

        Raises:
            ValueError: ``inputs`` and ``levels`` of different lengths.
        """
        levels = torch.as_tensor(levels, dtype=torch.long, device=inputs.device).reshape(-1)
        if levels.numel() != inputs.shape[0]:
            raise ValueError(f"one level per input patch is needed, got {levels.numel()} for {inputs.shape[0]} patches.")
        if inputs.shape[0] == 0:
            raise ValueError("no vertebra to infer: the study's centroids name none in both views.")
        outputs = [
            network(inputs[i : i + self.batch_size], levels[i : i + self.batch_size], *args, **kwargs).float()
            for i in range(0, inputs.shape[0], self.batch_size)
        ]
        return torch.cat(outputs)
