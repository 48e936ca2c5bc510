"""3D patch discriminator for TransVert's LSGAN loss (paper §2.1, Eq. 2–3).

The paper leaves the discriminator to its supplement; we use MONAI's Pix2PixHD-style
:class:`monai.networks.nets.PatchDiscriminator` in 3D and change only what TransVert needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Act
from monai.networks.nets import PatchDiscriminator

__all__ = ["TransVertDiscriminator"]


class TransVertDiscriminator(PatchDiscriminator):
    """Unconditional 3D PatchGAN discriminator over TransVert shapes (Bayat et al., MICCAI 2020).

    A :class:`~monai.networks.nets.PatchDiscriminator` with ``spatial_dims=3`` and two differences:

    * the input is multiplied by ``input_scale`` first: targets hold 0 or the VerSe index (1–25),
      so the default ``1/25`` lets the discriminator see values in ``[0, 1]`` whatever the vertebra;
    * ``forward`` returns only the final patch map (MONAI's returns every intermediate feature), so
      its output goes straight into :class:`~monai.losses.PatchAdversarialLoss`.

    Choices (the paper does not specify D): unconditional, as Eq. 2–3 write ``D(y)`` and ``D(G(x))``;
    instance norm instead of MONAI's batch norm, because each D pass sees an all-real or all-fake
    batch of 4 (batch statistics would leak the label) and it needs no SyncBN under DDP; linear
    output, as LSGAN needs (use ``PatchAdversarialLoss(no_activation_leastsq=True)``). With the
    defaults a 64³ input gives a 6³ patch map; the smallest input is ``min_spatial_size`` (24).

    Args:
        in_channels: channels of the shape volume. Defaults to 1.
        channels: filters of the first layer, doubled at each further layer. Defaults to 16.
        num_layers_d: strided layers after the first (the last has stride 1). Defaults to 3.
        kernel_size: kernel of every layer. Defaults to 4.
        activation: activation type and arguments. Defaults to LeakyReLU(0.2).
        norm: normalisation type and arguments. Defaults to ``"INSTANCE"``.
        bias: bias in the normalised layers. Defaults to False.
        padding: padding of the layers. Defaults to 1.
        dropout: dropout probability. Defaults to 0.
        last_conv_kernel_size: kernel of the last layer. Defaults to ``kernel_size``.
        input_scale: factor applied to the input; positive. Defaults to ``1 / 25``.

    Raises:
        ValueError: when ``input_scale`` is not positive, or (in ``forward``) the input is not
            ``(B, in_channels, H, W, D)`` with every spatial size at least ``min_spatial_size``.

    Example::

        >>> d = TransVertDiscriminator()
        >>> d(torch.zeros(2, 1, 64, 64, 64)).shape
        torch.Size([2, 1, 6, 6, 6])
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 16,
        num_layers_d: int = 3,
        kernel_size: int = 4,
        activation: str | tuple = (Act.LEAKYRELU, {"negative_slope": 0.2}),
        norm: str | tuple = "INSTANCE",
        bias: bool = False,
        padding: int | Sequence[int] = 1,
        dropout: float | tuple = 0.0,
        last_conv_kernel_size: int | None = None,
        input_scale: float = 1.0 / 25.0,
    ) -> None:
        if not input_scale > 0:
            raise ValueError(f"`input_scale` must be positive, got {input_scale}.")
        super().__init__(
            spatial_dims=3,
            channels=channels,
            in_channels=in_channels,
            out_channels=1,
            num_layers_d=num_layers_d,
            kernel_size=kernel_size,
            activation=activation,
            norm=norm,
            bias=bias,
            padding=padding,
            dropout=dropout,
            last_conv_kernel_size=last_conv_kernel_size,
        )
        self.in_channels = in_channels
        self.input_scale = float(input_scale)
        self.min_spatial_size = self._smallest_valid_size()

    def _smallest_valid_size(self) -> int:
        """Smallest cube side for which every layer's output is at least one voxel (instance norm: two)."""
        convs = [m.conv for m in self.children()]
        for size in range(1, 1025):
            n, ok = size, True
            for i, conv in enumerate(convs):
                n = (n + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
                has_norm = i < len(convs) - 1 and i > 0
                if n < (2 if has_norm else 1):
                    ok = False
                    break
            if ok:
                return size
        raise ValueError("The discriminator layers shrink any input below one voxel; reduce `num_layers_d`.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Score a shape volume patch-wise.

        Args:
            x: ``(B, in_channels, H, W, D)``, values 0 or the VerSe index (real target or prediction).

        Returns:
            ``(B, 1, h, w, d)`` unbounded patch scores (LSGAN: 1 = real, 0 = fake).

        Raises:
            ValueError: on a wrong rank, channel count or a spatial size below ``min_spatial_size``.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels or min(x.shape[2:]) < self.min_spatial_size:
            raise ValueError(
                f"TransVertDiscriminator expects (B, {self.in_channels}, H, W, D) with H, W, D >= "
                f"{self.min_spatial_size}, got shape {tuple(x.shape)}; use fewer `num_layers_d` for smaller volumes."
            )
        return super().forward(x * self.input_scale)[-1]
