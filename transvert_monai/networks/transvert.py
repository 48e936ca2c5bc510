"""TransVert: a lateral and an AP vertebra patch (with VOI annotations) to the vertebra's 3D shape.

Bayat et al., "Inferring the 3D Standing Spine Posture from 2D Radiographs", MICCAI 2020, §2.1, Fig. 2.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import List, Optional

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, ResidualUnit
from monai.networks.layers.utils import get_act_layer
from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from transvert_monai.errors import CheckpointMismatchError, ConfigTypeError
from transvert_monai.geometry import SamplingGrid, TargetCoding
from transvert_monai.networks.blocks import _AnisotropicFuse, _OuterProductFuse, _UpLevel, _ViewEncoder
from transvert_monai.networks.shape_prior import ShapePrior, nearest_level

__all__ = ["TransVert", "Views", "Fusion", "TransVertVariant", "VARIANT_SWITCHES", "CHANNEL_PRESETS"]


class Views(StrEnum):
    """Which radiographic views the network reads."""

    BOTH = "both"  #: lateral and AP
    LATERAL = "lateral"  #: lateral (sagittal) only; the AP channels of the input are ignored


class Fusion(StrEnum):
    """How the map&fuse block turns the two views' 2D features into one 3D feature."""

    ANISOTROPIC = "anisotropic"  #: learned anisotropic transposed convolutions, channel concatenation
    OUTER_PRODUCT = "outer_product"  #: naive view fusion, per-channel outer product (no parameters)


class TransVertVariant(StrEnum):
    """Named rows of the paper's architectural ablation (Table 1)."""

    TRANSVERT = "transvert"  #: "TransVert + Self Attn." (add the adversarial loss in the trainer for the last row)
    NO_ATTENTION = "no_attention"  #: "TransVert" (image and VOI concatenated as channels)
    NAIVE_FUSION = "naive_fusion"  #: "Naive View-Fusion (Outer Product)"
    SAGITTAL_ONLY = "sagittal_only"  #: "Sagittal only"


#: ``(views, fusion, attention)`` of each variant. Table 1 is cumulative: its first rows predate the
#: self-attention layer, so ``sagittal_only`` and ``naive_fusion`` run without it.
VARIANT_SWITCHES: dict[TransVertVariant, tuple[Views, Fusion, bool]] = {
    TransVertVariant.TRANSVERT: (Views.BOTH, Fusion.ANISOTROPIC, True),
    TransVertVariant.NO_ATTENTION: (Views.BOTH, Fusion.ANISOTROPIC, False),
    TransVertVariant.NAIVE_FUSION: (Views.BOTH, Fusion.OUTER_PRODUCT, False),
    TransVertVariant.SAGITTAL_ONLY: (Views.LATERAL, Fusion.ANISOTROPIC, False),
}

#: Width presets. The paper does not give widths: ``"small"`` (the default; 5.3 M parameters, a
#: batch-4 64² adversarial training step takes about 1.5 s and 1 GB on 2 CPU cores) and ``"large"``
#: (every width doubled for a GPU; 21.0 M parameters, about 2–3× the CPU time).
CHANNEL_PRESETS: dict[str, tuple[int, ...]] = {"small": (16, 32, 64, 128), "large": (32, 64, 128, 256)}


class TransVert(nn.Module):
    """TransVert generator (Bayat et al., MICCAI 2020): orthogonal 2D vertebra patches → 3D shape.

    Two 2D encoders (lateral, AP) each start with a self-attention layer combining the image with its
    VOI annotation; a map&fuse block lifts each view's bottleneck features to 3D along the axis that
    view cannot see (anisotropic transposed convolutions) and concatenates them; a 3D decoder
    upsamples to ``spatial_size³``. Optionally each decoder level also receives the encoder features
    of the same resolution, lifted and fused the same way (2D→3D skip connections; they carry the
    in-plane detail the bottleneck loses; about a quarter of a CPU training step, 1M parameters).

    Axes follow the view-aligned frame (:mod:`transvert_monai.geometry.projection`): output dims
    ``(H, W, D)`` are frame axes ``(0, 1, 2)``. Lateral rows → axis 0, lateral columns → axis 1,
    lateral blind along axis 2; AP rows → axis 0, AP columns → axis 2, AP blind along axis 1.

    Deviations and choices (the paper gives no widths or layer details): the attention runs after a
    stride-``strides[0]`` embedding (1024 tokens for a 64² patch, see ``_AttentionStem``); levels are
    MONAI ``ResidualUnit``s; a view is lifted from depth 1 to depth ``d`` by a transposed conv with
    kernel ``odd(d)`` along its blind axis, then stride-2 doublings (``_ViewLift``); the full-resolution
    decoder level is a transposed conv and a 3×3×3 head only (a residual unit there would double the
    CPU step time); there is no output activation: with the default occupancy coding the output is
    a logit (foreground where positive), with the paper's index coding it regresses 0 or the
    vertebra's VerSe index (1–25).

    The model carries what it needs at inference in its ``state_dict`` (so in ``models/model.pt``):
    its :class:`~transvert_monai.geometry.SamplingGrid` and the per-level volume ranges of its
    training vertebrae (extra state), and with ``shape_prior`` the per-level mean training shape it
    corrects (:class:`~transvert_monai.networks.shape_prior.ShapePrior`). Loading weights trained
    with another sampling grid raises :class:`~transvert_monai.errors.CheckpointMismatchError`.

    Args:
        spatial_size: side ``S`` of the square input patches; the output is ``S³``. Must be divisible
            by ``prod(strides)`` and leave a bottleneck of at least 2. ``None`` (default): the
            sampling grid's patch size (64, paper §3.1).
        in_channels: must be 4, the packed ``[lat, lat_voi, ap, ap_voi]``; present for MONAI/bundle
            vocabulary.
        out_channels: output channels. Defaults to 1 (the {0, i} regression target).
        channels: widths of the encoder levels (mirrored by the decoder). Defaults to ``(16, 32, 64, 128)``
            (``CHANNEL_PRESETS["small"]``); ``CHANNEL_PRESETS["large"] = (32, 64, 128, 256)`` for a GPU.
        strides: downsampling factor of each encoder level (the first is the stem's, so the attention
            runs at ``S / strides[0]``). Same length as ``channels``. Defaults to ``(2, 2, 2, 2)``.
        act: activation type and arguments (MONAI ``Act`` names). Defaults to LeakyReLU(0.2).
        norm: normalisation type and arguments (MONAI ``Norm`` names). Defaults to affine instance norm.
        dropout: dropout probability of every convolution block. Defaults to 0.
        out_act: optional activation after the last layer (``None``: linear output, the default).
        views: ``"both"`` or ``"lateral"`` (sagittal only; the AP channels are ignored).
            ``None``: the value of ``variant``.
        fusion: ``"anisotropic"`` (learned, the paper's map&fuse) or ``"outer_product"`` (naive
            view fusion; needs both views). ``None``: the value of ``variant``.
        attention: combine image and VOI by self-attention (``True``) or by channel concatenation.
            ``None``: the value of ``variant``.
        skip_connections: add 2D→3D skip connections to the decoder. Defaults to True.
        variant: a named Table 1 setting, one of :class:`TransVertVariant`
            (``transvert``, ``no_attention``, ``naive_fusion``, ``sagittal_only``); it sets
            ``views``, ``fusion`` and ``attention`` (see ``VARIANT_SWITCHES``), and any of those
            given explicitly overrides it. Defaults to ``"transvert"``.
        sampling_grid: the :class:`~transvert_monai.geometry.SamplingGrid` (or its fields) the model
            is trained and run with; its patch and target sizes must be equal. Default ``SamplingGrid()``.
        shape_prior: predict a logit correction of the level's mean training shape (occupancy
            coding only); the prior is set by :meth:`fit_training_statistics` before training.

    Raises:
        ValueError: on an unknown option string, non-positive or mismatched ``channels``/``strides``,
            a ``spatial_size`` not divisible by ``prod(strides)``, ``in_channels`` other than 4, or
            ``fusion="outer_product"`` with ``views="lateral"``.
        ConfigTypeError: ``channels``/``strides`` that are not lists of numbers, or sizes that are not
            numbers (e.g. a bundle override ``--channels 8``); also a ``TypeError``.

    Example::

        >>> net = TransVert(spatial_size=64, variant="transvert")
        >>> net(torch.randn(2, 4, 64, 64)).shape
        torch.Size([2, 1, 64, 64, 64])
    """

    def __init__(
        self,
        spatial_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 1,
        channels: Sequence[int] = CHANNEL_PRESETS["small"],
        strides: Sequence[int] = (2, 2, 2, 2),
        act: tuple | str = ("leakyrelu", {"negative_slope": 0.2, "inplace": True}),
        norm: tuple | str = ("instance", {"affine": True}),
        dropout: float | tuple = 0.0,
        out_act: tuple | str | None = None,
        views: Views | str | None = None,
        fusion: Fusion | str | None = None,
        attention: bool | None = None,
        skip_connections: bool = True,
        variant: TransVertVariant | str = TransVertVariant.TRANSVERT,
        sampling_grid: SamplingGrid | Mapping | None = None,
        shape_prior: bool = False,
    ) -> None:
        super().__init__()
        grid = SamplingGrid() if sampling_grid is None else SamplingGrid.from_dict(sampling_grid)
        if grid.patch_size != grid.target_size:
            raise ValueError(
                f"TransVert maps P² patches to a P³ shape: the sampling grid's patch_size ({grid.patch_size}) and "
                f"target_size ({grid.target_size}) must be equal."
            )
        if spatial_size is None:
            spatial_size = grid.patch_size
        elif spatial_size != grid.patch_size:
            raise ValueError(
                f"`spatial_size` ({spatial_size}) differs from the sampling grid's patch_size ({grid.patch_size}); "
                "set the size once, in the sampling grid."
            )
        if not isinstance(shape_prior, bool):
            raise ConfigTypeError(f"`shape_prior` must be true or false, got {shape_prior!r} ({type(shape_prior).__name__}).")
        if shape_prior and grid.target_coding != TargetCoding.OCCUPANCY:
            raise ValueError("`shape_prior` corrects occupancy logits: it needs the sampling grid's target_coding 'occupancy'.")
        self.sampling_grid = grid
        default_views, default_fusion, default_attention = VARIANT_SWITCHES[look_up_option(variant, TransVertVariant)]
        views = look_up_option(default_views if views is None else views, Views)
        fusion = look_up_option(default_fusion if fusion is None else fusion, Fusion)
        attention = default_attention if attention is None else bool(attention)
        for name, value, example in (("channels", channels, "[8, 16, 32, 64]"), ("strides", strides, "[2, 2, 2, 2]")):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise ConfigTypeError(
                    f"`{name}` must be a list of positive integers, one per level (e.g. {example}), got {value!r} "
                    f"({type(value).__name__}); a bundle override takes the list form: --{name} \"{example}\"."
                )
        channels, strides = tuple(channels), tuple(strides)
        self._check_hyper_parameters(spatial_size, in_channels, out_channels, channels, strides, views, fusion)

        self.spatial_size = int(spatial_size)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.views, self.fusion, self.attention = str(views), str(fusion), attention
        both = views == Views.BOTH
        n = len(channels)

        def make_fuse(c: int, depth: int) -> nn.Module:
            if fusion == Fusion.OUTER_PRODUCT:
                return _OuterProductFuse(c)
            return _AnisotropicFuse(c, depth, both, act, norm)

        self.lateral_encoder = _ViewEncoder(channels, strides, attention, act, norm, dropout)
        self.ap_encoder = _ViewEncoder(channels, strides, attention, act, norm, dropout) if both else None

        bottleneck = self.spatial_size // math.prod(strides)
        self.bottleneck_fuse = make_fuse(channels[-1], bottleneck)
        self.bottleneck = ResidualUnit(
            3, self.bottleneck_fuse.out_channels, channels[-1], subunits=2, act=act, norm=norm, dropout=dropout
        )
        levels = []
        for j in reversed(range(n)):  # level j undoes encoder stride j; skip = encoder level j - 1
            skip = None
            if skip_connections and j >= 1:
                skip = make_fuse(channels[j - 1], self.spatial_size // math.prod(strides[:j]))
            levels.append(
                _UpLevel(
                    channels[j],
                    channels[max(j - 1, 0)],
                    strides[j],
                    skip,
                    act,
                    norm,
                    dropout,
                    refine=j >= 1,
                )
            )
        self.decoder = nn.ModuleList(levels)
        self.head = Convolution(3, channels[0], self.out_channels, kernel_size=3, conv_only=True)
        self.out_act = get_act_layer(out_act) if out_act is not None else nn.Identity()
        self.prior = ShapePrior(self.spatial_size) if shape_prior else None
        self._set_volume_ranges({})

    # ------------------------------------------------------------------ what travels with the weights
    @torch.jit.unused
    def get_extra_state(self) -> dict:
        """The sampling grid and the training volume ranges, as plain values (see the class docstring)."""
        return {
            "sampling_grid": self.sampling_grid.to_dict(),
            "volume_ranges_ml": {str(k): [float(a), float(b)] for k, (a, b) in sorted(self.volume_ranges_ml.items())},
            "prior_levels": [] if self.prior is None else list(self.prior.trained_levels),
        }

    @torch.jit.unused
    def set_extra_state(self, state: dict) -> None:
        """Read :meth:`get_extra_state`'s values back.

        Raises:
            CheckpointMismatchError: the weights were trained with another sampling grid.
        """
        if not isinstance(state, Mapping) or "sampling_grid" not in state:
            raise CheckpointMismatchError("the weights carry no sampling grid; they predate scale-true patches, retrain them.")
        try:
            theirs = SamplingGrid.from_dict(state["sampling_grid"])
        except (TypeError, ValueError) as err:
            raise CheckpointMismatchError(f"the weights carry an unreadable sampling grid: {err}") from None
        diff = self.sampling_grid.differences(theirs)
        if diff:
            detail = ", ".join(f"{k}: weights {b!r}, network {a!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatchError(
                f"the weights were trained with another sampling grid ({detail}); build the network with the weights' "
                "grid (`sampling_grid`) or use weights trained with this one."
            )
        ranges = {}
        for key, value in dict(state.get("volume_ranges_ml", {})).items():
            lo, hi = (float(x) for x in value)
            ranges[int(key)] = (lo, hi)
        self._set_volume_ranges(ranges)
        if self.prior is not None:
            self.prior.trained_levels = [int(v) for v in state.get("prior_levels", [])]

    @torch.jit.unused
    def load_state_dict(self, state_dict: Mapping, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``; strict loading of weights without a sampling grid says what that means.

        Raises:
            CheckpointMismatchError: ``strict`` and the weights carry no sampling grid (saved before it
                travelled with them; torch alone would only report a missing ``_extra_state`` key), or
                they were trained with another grid.
        """
        if strict and isinstance(state_dict, Mapping) and "_extra_state" not in state_dict:
            self.set_extra_state({})
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @torch.jit.unused
    def _set_volume_ranges(self, ranges: Mapping[int, tuple[float, float]]) -> None:
        # a plain attribute that TorchScript must not try to type (it is not used by forward)
        self.__dict__["volume_ranges_ml"] = dict(ranges)

    @torch.jit.unused
    def volume_range_ml(self, level: int) -> tuple[int, tuple[float, float]] | None:
        """``(trained level used, (min, max) ml)`` for ``level``: its own range, else the nearest trained level's."""
        if not self.volume_ranges_ml:
            return None
        used = nearest_level(int(level), sorted(self.volume_ranges_ml))
        return used, self.volume_ranges_ml[used]

    @staticmethod
    def _check_hyper_parameters(
        spatial_size: int,
        in_channels: int,
        out_channels: int,
        channels: tuple[int, ...],
        strides: tuple[int, ...],
        views: Views,
        fusion: Fusion,
    ) -> None:
        def is_number(value: object) -> bool:
            return isinstance(value, numbers.Real) and not isinstance(value, bool)

        sizes = (("spatial_size", spatial_size), ("in_channels", in_channels), ("out_channels", out_channels))
        for name, value in sizes:
            if not is_number(value):
                raise ConfigTypeError(f"`{name}` must be a whole number, got {value!r} ({type(value).__name__}).")
        for name, values in (("channels", channels), ("strides", strides)):
            if not all(is_number(v) for v in values):
                raise ConfigTypeError(f"`{name}` must hold positive integers, got {list(values)!r}.")
        if in_channels != 4:
            raise ValueError(
                f"`in_channels` must be 4, the packed [lat, lat_voi, ap, ap_voi] input, got {in_channels}; "
                "for a sagittal-only model keep the 4-channel packing and use views='lateral'."
            )
        if out_channels < 1:
            raise ValueError(f"`out_channels` must be a positive integer, got {out_channels}.")
        if len(channels) == 0 or any(int(c) != c or c < 1 for c in channels):
            raise ValueError(f"`channels` must be a non-empty sequence of positive integers, got {channels}.")
        if len(strides) != len(channels) or any(int(s) != s or s < 1 for s in strides):
            raise ValueError(
                f"`strides` must hold one positive integer per entry of `channels` ({len(channels)}), got {strides}."
            )
        total_stride = math.prod(strides)
        if spatial_size < 1 or spatial_size % total_stride != 0 or spatial_size // total_stride < 2:
            raise ValueError(
                f"`spatial_size` must be divisible by the total stride prod(strides) = {total_stride} and leave a "
                f"bottleneck of at least 2 voxels, got spatial_size={spatial_size}; change the patch size or `strides`."
            )
        if fusion == Fusion.OUTER_PRODUCT and views != Views.BOTH:
            raise ValueError(
                "`fusion='outer_product'` fuses two views and needs `views='both'`, got views='lateral'; "
                "use fusion='anisotropic' for a sagittal-only model."
            )

    def forward(self, x: torch.Tensor, level: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Infer the vertebra's 3D shape.

        Args:
            x: packed views ``(B, 4, S, S)``, channels ``[lat, lat_voi, ap, ap_voi]``
                (``TransVertKeys.IMAGE``); with ``views="lateral"`` channels 2 and 3 are ignored.
            level: ``(B,)`` VerSe index of each vertebra, used by the shape prior (ignored without
                one); ``None`` uses the mean prior over all training levels.

        Returns:
            ``(B, out_channels, S, S, S)`` on the view-aligned frame (axes 0, 1, 2): occupancy logits,
            or with the index coding a regression of 0 or the vertebra's VerSe index.

        Raises:
            ValueError: when ``x`` is not ``(B, 4, spatial_size, spatial_size)``.
        """
        s = self.spatial_size
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(
                "TransVert expects a packed input (B, in_channels=4, "
                + str(s)
                + ", "
                + str(s)
                + ") with channels [lat, lat_voi, ap, ap_voi], got shape "
                + str(list(x.shape))
                + "; stack the views in that order or set `spatial_size` to the patch size."
            )
        lateral: List[torch.Tensor] = self.lateral_encoder(x[:, 0:1], x[:, 1:2])
        ap: Optional[List[torch.Tensor]] = None
        if self.ap_encoder is not None:
            ap = self.ap_encoder(x[:, 2:3], x[:, 3:4])

        y = self.bottleneck(self.bottleneck_fuse(lateral[-1], None if ap is None else ap[-1]))
        n = len(lateral)
        for i, up in enumerate(self.decoder):
            j = n - 1 - i  # encoder level whose stride this decoder level undoes
            skip_lateral: Optional[torch.Tensor] = None
            skip_ap: Optional[torch.Tensor] = None
            if j >= 1:
                skip_lateral = lateral[j - 1]
                if ap is not None:
                    skip_ap = ap[j - 1]
            y = up(y, skip_lateral, skip_ap)
        y = self.head(y)
        if self.prior is not None:
            y = y + self.prior(level, y.shape[0])
        return self.out_act(y)
