"""Private building blocks of :class:`~transvert_monai.networks.TransVert`.

Tensor layout used throughout: 2D view features are ``(B, C, rows, cols)``; 3D features live on the
view-aligned frame, ``(B, C, a0, a1, a2)`` (see :mod:`transvert_monai.geometry.projection`). The
lateral view sees axes (0, 1) and is blind along axis 2; the AP view sees axes (0, 2) and is blind
along axis 1. Rows of both views run along axis 0.

Every block is TorchScript-compatible (``torch.jit.script``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution, ResidualUnit

__all__: list[str] = []

# Index of view-aligned axis ``a`` in a channel-first batched 3D tensor (B, C, a0, a1, a2).
_FIRST_SPATIAL_DIM = 2
LATERAL_BLIND_AXIS = 2
AP_BLIND_AXIS = 1


class _ConcatStem(nn.Module):
    """Naive input fusion: image and VOI stacked as two channels, then a strided 2D convolution.

    ``(B, 1, H, W)`` image and ``(B, 1, H, W)`` VOI → ``(B, C, H / s, W / s)``.
    """

    def __init__(
        self, out_channels: int, stride: int, act: tuple | str, norm: tuple | str, dropout: float | tuple
    ) -> None:
        super().__init__()
        self.embed = Convolution(2, 2, out_channels, strides=stride, act=act, norm=norm, dropout=dropout)
        self.refine = Convolution(2, out_channels, out_channels, act=act, norm=norm, dropout=dropout)

    def forward(self, image: torch.Tensor, voi: torch.Tensor) -> torch.Tensor:
        return self.refine(self.embed(torch.cat([image, voi], dim=1)))


class _AttentionStem(nn.Module):
    """Image and VOI annotation combined by a spatial self-attention layer (paper Fig. 2, red).

    The image and the VOI annotation are embedded by their own strided convolution, so the
    attention runs at ``1/s`` resolution: ``N = (H/s)·(W/s)`` tokens, i.e. 1024 tokens for a 64²
    patch with ``s = 2`` instead of 4096 at full resolution. The queries, keys and values are
    1×1 projections of the joint feature ``[image; VOI]``, so every location can attend to where
    the (tiny, radius-1) VOI disc is, however far away. As in SAGAN (Zhang et al., ICML 2019) the
    attention enters through a residual gated by ``gamma`` initialised to 0, so the block starts as
    a learned 1×1 mix of both embeddings and grows the global term as training finds it useful.

    Memory: ``F.scaled_dot_product_attention`` is used. Fused CUDA kernels avoid the ``N × N``
    matrix; on CPU with gradients PyTorch falls back to the math kernel, which stores it in fp32:
    ``4·N²`` bytes per sample and view, i.e. 4 MiB at ``N = 1024`` (measured 16.75 MiB for a batch of
    4), but 64 MiB at ``N = 4096`` (``strides[0] = 1``, measured 259 MiB for a batch of 4).

    ``(B, 1, H, W)`` image and ``(B, 1, H, W)`` VOI → ``(B, C, H / s, W / s)``.
    """

    def __init__(
        self, out_channels: int, stride: int, act: tuple | str, norm: tuple | str, dropout: float | tuple
    ) -> None:
        super().__init__()
        self.embed_image = Convolution(2, 1, out_channels, strides=stride, act=act, norm=norm, dropout=dropout)
        self.embed_voi = Convolution(2, 1, out_channels, strides=stride, act=act, norm=norm, dropout=dropout)
        self.query = nn.Conv2d(2 * out_channels, out_channels, kernel_size=1)
        self.key = nn.Conv2d(2 * out_channels, out_channels, kernel_size=1)
        self.value = nn.Conv2d(2 * out_channels, out_channels, kernel_size=1)
        self.mix = nn.Conv2d(2 * out_channels, out_channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.refine = Convolution(2, out_channels, out_channels, act=act, norm=norm, dropout=dropout)

    def forward(self, image: torch.Tensor, voi: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([self.embed_image(image), self.embed_voi(voi)], dim=1)
        b, _, h, w = joint.shape
        # tokens (B, heads=1, N, C) for queries, keys and values
        q = self.query(joint).flatten(2).transpose(1, 2).unsqueeze(1)
        k = self.key(joint).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(joint).flatten(2).transpose(1, 2).unsqueeze(1)
        attended = F.scaled_dot_product_attention(q, k, v)
        attended = attended.squeeze(1).transpose(1, 2).reshape(b, -1, h, w)
        return self.refine(self.mix(joint) + self.gamma * attended)


class _ViewEncoder(nn.Module):
    """2D encoder of one view: input stem, then strided residual units.

    ``(B, 1, H, W)`` image and VOI → list of features, level ``k`` is
    ``(B, channels[k], H / prod(strides[:k+1]), W / prod(strides[:k+1]))``.
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        attention: bool,
        act: tuple | str,
        norm: tuple | str,
        dropout: float | tuple,
    ) -> None:
        super().__init__()
        stem = _AttentionStem if attention else _ConcatStem
        self.stem = stem(channels[0], strides[0], act, norm, dropout)
        self.downs = nn.ModuleList(
            ResidualUnit(2, c_in, c_out, strides=s, subunits=2, act=act, norm=norm, dropout=dropout)
            for c_in, c_out, s in zip(channels[:-1], channels[1:], strides[1:])
        )

    def forward(self, image: torch.Tensor, voi: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(image, voi)
        features = [x]
        for down in self.downs:
            x = down(x)
            features.append(x)
        return features


class _ViewLift(nn.Module):
    """Lift 2D view features to 3D along the axis the view cannot see (anisotropic transposed convs).

    The 2D map becomes a depth-1 volume along ``blind_axis``; transposed 3D convolutions whose
    stride and kernel extent act only along that axis (3×3 in-plane context, no in-plane stride)
    grow it to ``depth``: a first step with kernel ``odd`` (the odd factor of ``depth``), then
    stride-2 doublings. For a 64² patch and 4 stride-2 levels the bottleneck lift is 1 → 1 → 2 → 4.

    ``(B, C_in, h, w)`` → lateral (``blind_axis=2``) ``(B, C_out, h, w, depth)``;
    AP (``blind_axis=1``) ``(B, C_out, h, depth, w)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, depth: int, blind_axis: int, act: tuple | str, norm: tuple | str
    ) -> None:
        super().__init__()
        self.blind_dim = _FIRST_SPATIAL_DIM + blind_axis
        odd, doublings = depth, 0
        while odd % 2 == 0:
            odd, doublings = odd // 2, doublings + 1

        def along_blind(blind: int, in_plane: int) -> tuple[int, int, int]:
            return (in_plane, blind, in_plane) if blind_axis == AP_BLIND_AXIS else (in_plane, in_plane, blind)

        layers = [
            Convolution(
                3,
                in_channels,
                out_channels,
                strides=1,
                kernel_size=along_blind(odd, 3),
                is_transposed=True,
                padding=along_blind(0, 1),
                output_padding=0,
                act=act,
                norm=norm,
            )
        ]
        layers += [
            Convolution(
                3,
                out_channels,
                out_channels,
                strides=along_blind(2, 1),
                kernel_size=along_blind(2, 3),
                is_transposed=True,
                padding=along_blind(0, 1),
                output_padding=0,
                act=act,
                norm=norm,
            )
            for _ in range(doublings)
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.unsqueeze(self.blind_dim))


class _AnisotropicFuse(nn.Module):
    """Map&fuse: lift each view along its blind axis, then concatenate channels.

    ``(B, C, h, w)`` lateral [and AP] → ``(B, C·n_views, h, w, w)``.
    """

    def __init__(self, channels: int, depth: int, both_views: bool, act: tuple | str, norm: tuple | str) -> None:
        super().__init__()
        self.lift_lateral = _ViewLift(channels, channels, depth, LATERAL_BLIND_AXIS, act, norm)
        self.lift_ap = _ViewLift(channels, channels, depth, AP_BLIND_AXIS, act, norm) if both_views else None
        self.out_channels = channels * (2 if both_views else 1)

    def forward(self, lateral: torch.Tensor, ap: Optional[torch.Tensor]) -> torch.Tensor:
        lifted = self.lift_lateral(lateral)
        if self.lift_ap is not None and ap is not None:
            lifted = torch.cat([lifted, self.lift_ap(ap)], dim=1)
        return lifted

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"


class _OuterProductFuse(nn.Module):
    """Naive view fusion (paper Table 1): per channel and row, the outer product of the two views.

    ``F[b, c, i, j, k] = lateral[b, c, i, j] · ap[b, c, i, k]``: lateral columns span axis 1,
    AP columns axis 2, shared rows axis 0. No parameters.
    ``(B, C, h, w)`` × ``(B, C, h, w)`` → ``(B, C, h, w, w)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, lateral: torch.Tensor, ap: Optional[torch.Tensor]) -> torch.Tensor:
        if ap is None:
            raise RuntimeError("Outer-product view fusion needs the AP features; build TransVert with views='both'.")
        return lateral.unsqueeze(-1) * ap.unsqueeze(-2)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"


class _UpLevel(nn.Module):
    """One 3D decoder level: transposed-conv upsampling, optional lifted 2D skip, residual unit.

    ``(B, C_in, d, d, d)`` → ``(B, C_out, d·s, d·s, d·s)``; the skip (if any) is the pair of 2D
    encoder features at the output resolution, lifted/fused by ``fuse``. ``refine=False`` drops
    the residual unit (used at full resolution, where it would cost about half of a training step).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        fuse: nn.Module | None,
        act: tuple | str,
        norm: tuple | str,
        dropout: float | tuple,
        refine: bool = True,
    ) -> None:
        super().__init__()
        self.up = Convolution(
            3, in_channels, out_channels, strides=stride, is_transposed=True, act=act, norm=norm, dropout=dropout
        )
        self.fuse = fuse
        skip_channels = 0 if fuse is None else int(fuse.out_channels)
        if skip_channels > 0 or refine:
            self.conv: nn.Module = ResidualUnit(
                3, out_channels + skip_channels, out_channels, subunits=2, act=act, norm=norm, dropout=dropout
            )
        else:
            self.conv = nn.Identity()

    def forward(self, x: torch.Tensor, lateral: Optional[torch.Tensor], ap: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.up(x)
        if self.fuse is not None and lateral is not None:
            x = torch.cat([x, self.fuse(lateral, ap)], dim=1)
        return self.conv(x)
