"""The sampling grid of a TransVert model: how patches and targets sample the anatomy, in one value object.

A model is only valid with the grid it was trained on, so :class:`SamplingGrid` is saved with the
weights (``TransVert``'s extra state) and read back by inference, the command line and the bundle
configs; no value of it is repeated elsewhere (the nnU-Net ``plans.json`` idea).

**Scale-true patches.** The invariant is the length one network pixel spans *at the vertebra*,
``pixel_mm_at_vertebra`` (1.5 mm, the target's voxel size, so that image and target sample the
anatomy alike). A point at distance ``d`` from the source along the beam is magnified by
``M = SDD / d`` on the detector, so a vertebra's patch pixel spans ``pixel_mm_at_vertebra · M`` mm
of detector. Training renders each vertebra's patch on that grid from its 3D centroid; deployment
cuts it from the radiograph with ``d`` from the vertebra's triangulated centre and the radiograph's
own source distances. A vertebra therefore covers the same number of patch pixels whatever the
magnification it was imaged at (the paper's §2.1 requirement that the cone-beam enlargement "should
be negated").

**Target coding.** ``occupancy`` (default): the target is the vertebra's mask, 0 or 1, the network
output is a logit and a voxel is foreground where the logit is positive (probability above 0.5);
the vertebra's label comes from the annotation it was asked about. ``index`` (the paper's §2.1):
the target is 0 or the vertebra's VerSe index ``i``, regressed, foreground where the output exceeds
``i / 2``. Measured in issue 9: the index coding ties the shape to recognising the level and fails
on levels absent from training.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from monai.utils import StrEnum, look_up_option

from transvert_monai.geometry.projection import ProjectionGeometry

__all__ = ["SamplingGrid", "TargetCoding", "VOIMode", "scale_true_patch_pixels"]


class TargetCoding(StrEnum):
    """What the 3D target holds and how a network output becomes a mask."""

    OCCUPANCY = "occupancy"  #: 0/1 target, logit output, foreground where the logit > 0
    INDEX = "index"  #: 0 or the VerSe index i (paper §2.1), regressed, foreground where the output > i / 2


class VOIMode(StrEnum):
    """Which annotation marks the vertebra of interest (paper Table 2)."""

    DISC = "disc"  #: C2V: disc at the projected centroid
    BODY = "body"  #: B2V: shadow of the vertebral body
    VERTEBRA = "vertebra"  #: V2V: shadow of the whole vertebra
    NONE = "none"  #: no annotation (zeros)


def _number(name: str, value: Any, what: str) -> None:
    # a string or a bool (e.g. a bundle override `--target_size 64` arriving as "64") is a type error
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        from transvert_monai.errors import ConfigTypeError

        raise ConfigTypeError(f"SamplingGrid `{name}` must be {what}, got {value!r} ({type(value).__name__}).")


def _positive_number(name: str, value: Any) -> float:
    _number(name, value, "a positive finite number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"SamplingGrid `{name}` must be a positive finite number, got {value!r}.")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    _number(name, value, "a positive whole number")
    if not math.isfinite(value) or int(value) != value or value < 1:
        raise ValueError(f"SamplingGrid `{name}` must be a positive whole number, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class SamplingGrid:
    """Patch size, target grid, VOI annotation and target coding of a TransVert model (see the module docstring).

    Args:
        patch_size: side of the square 2D patches in network pixels (64, paper §3.1).
        target_size: side of the cubic 3D target/output grid in voxels (64).
        target_spacing_mm: isotropic voxel size of the target grid (1.5 mm: 96 mm holds a lumbar
            vertebra with its processes).
        pixel_mm_at_vertebra: length one patch pixel spans at the vertebra (1.5 mm).
        voi_mode: ``disc`` (C2V, the paper's), ``body``, ``vertebra`` or ``none``.
        voi_radius_px: radius of the VOI disc in patch pixels (1, the paper's).
        target_coding: ``occupancy`` (default) or ``index`` (the paper's ``{0, i}``).

    Raises:
        ValueError: a non-positive size or spacing, a negative radius, an unknown option string.
        ConfigTypeError: a size, spacing or radius that is not a number (also a ``TypeError``).

    Example:
        >>> grid = SamplingGrid()
        >>> grid.detector_pixel_mm(magnification=1.2)  # at the isocentre of a 1800/1500 mm view
        1.8
    """

    patch_size: int = 64
    target_size: int = 64
    target_spacing_mm: float = 1.5
    pixel_mm_at_vertebra: float = 1.5
    voi_mode: str = VOIMode.DISC.value
    voi_radius_px: float = 1.0
    target_coding: str = TargetCoding.OCCUPANCY.value

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", _positive_int("patch_size", self.patch_size))
        object.__setattr__(self, "target_size", _positive_int("target_size", self.target_size))
        object.__setattr__(self, "target_spacing_mm", _positive_number("target_spacing_mm", self.target_spacing_mm))
        object.__setattr__(self, "pixel_mm_at_vertebra", _positive_number("pixel_mm_at_vertebra", self.pixel_mm_at_vertebra))
        radius = self.voi_radius_px
        _number("voi_radius_px", radius, "a non-negative number")
        if not math.isfinite(radius) or radius < 0:
            raise ValueError(f"SamplingGrid `voi_radius_px` must be a non-negative number, got {radius!r}.")
        object.__setattr__(self, "voi_radius_px", float(radius))
        object.__setattr__(self, "voi_mode", look_up_option(self.voi_mode, VOIMode).value)
        object.__setattr__(self, "target_coding", look_up_option(self.target_coding, TargetCoding).value)

    # ------------------------------------------------------------------ derived values
    def detector_pixel_mm(self, magnification: float | torch.Tensor) -> Any:
        """Detector length of one patch pixel of a vertebra seen at ``magnification`` (``SDD / d``)."""
        return self.pixel_mm_at_vertebra * magnification

    def nominal_detector_spacing_mm(self, source_to_detector_mm: float, source_to_isocentre_mm: float) -> float:
        """The detector pixel that spans ``pixel_mm_at_vertebra`` at the isocentre (1.8 mm for 1800/1500 mm)."""
        return self.pixel_mm_at_vertebra * source_to_detector_mm / source_to_isocentre_mm

    def make_target(self, crop: torch.Tensor) -> torch.Tensor:
        """The target of a ``{0, i}`` mask crop in this grid's coding (float32)."""
        if self.target_coding == TargetCoding.OCCUPANCY:
            return (crop > 0).to(torch.float32)
        return crop.to(torch.float32)

    def to_mask(self, output: torch.Tensor, labels: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Foreground (bool) of network outputs ``(B, ...)`` of vertebrae ``labels`` (one or one per item)."""
        out = torch.as_tensor(output).detach().as_subclass(torch.Tensor)
        if self.target_coding == TargetCoding.OCCUPANCY:
            return out > 0
        index = torch.as_tensor(labels, dtype=torch.float32, device=out.device).reshape(-1)
        if index.numel() == 1:
            index = index.expand(out.shape[0])
        if index.numel() != out.shape[0] or not bool((index > 0).all()):
            raise ValueError(f"one positive VerSe index per output is needed, got {index.tolist()} for {out.shape[0]} outputs.")
        return out > (index / 2).reshape(-1, *([1] * (out.ndim - 1)))

    def to_probability(self, output: torch.Tensor, labels: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Outputs as foreground probabilities in [0, 1] (sigmoid of a logit; ``output / i`` clipped for ``index``)."""
        out = torch.as_tensor(output)
        if self.target_coding == TargetCoding.OCCUPANCY:
            return torch.sigmoid(out)
        index = torch.as_tensor(labels, dtype=out.dtype, device=out.device).reshape(-1, *([1] * (out.ndim - 1)))
        return (out / index).clamp(0, 1)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/``torch.save``-safe values (loads with ``weights_only=True``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplingGrid:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys or bad values.
        """
        if isinstance(data, SamplingGrid):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a sampling grid must be a mapping of its fields, got {type(data).__name__}.")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown sampling-grid fields {unknown}; the fields are {sorted(cls.__dataclass_fields__)}.")
        return cls(**dict(data))

    def differences(self, other: SamplingGrid) -> dict[str, tuple[Any, Any]]:
        """``{field: (self's value, other's value)}`` of the fields that differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def scale_true_patch_pixels(
    geometry: ProjectionGeometry,
    centre_rc: torch.Tensor,
    depth_mm: torch.Tensor,
    patch_size: int,
    pixel_mm_at_object: float,
) -> torch.Tensor:
    """Detector pixels (fractional) of patches whose pixels span ``pixel_mm_at_object`` at the object.

    Each patch is centred on its ``centre_rc`` (the projected or annotated centroid sits between the
    four central pixels of an even patch, on the central pixel of an odd one), rows along the
    detector rows, columns along the detector columns, with a step of
    ``pixel_mm_at_object · SDD / depth`` mm on the detector.

    Args:
        geometry: the view.
        centre_rc: (B, 2) patch centres in detector (row, col) pixels.
        depth_mm: (B,) distance of each object from the source along the beam (``project(..., return_depth=True)``).
        patch_size: patch side ``P``.
        pixel_mm_at_object: the invariant length of one patch pixel at the object.

    Returns:
        (B, P, P, 2) float64 detector (row, col) of every patch pixel.

    Raises:
        ValueError: a non-positive depth, size or pixel length.
    """
    centre = torch.as_tensor(centre_rc, dtype=torch.float64).reshape(-1, 2)
    depth = torch.as_tensor(depth_mm, dtype=torch.float64).reshape(-1)
    if depth.numel() != centre.shape[0] or not bool((depth > 0).all()):
        raise ValueError(f"one positive depth per patch is needed, got {depth.tolist()} for {centre.shape[0]} patches.")
    if int(patch_size) != patch_size or patch_size < 1 or not pixel_mm_at_object > 0:
        raise ValueError(f"`patch_size` and `pixel_mm_at_object` must be positive, got {patch_size!r}, {pixel_mm_at_object!r}.")
    step_mm = pixel_mm_at_object * geometry.source_to_detector_mm / depth  # (B,) detector mm per patch pixel
    spacing = torch.tensor(geometry.detector_spacing_mm, dtype=torch.float64)  # (row, col) mm per detector pixel
    offsets = torch.arange(int(patch_size), dtype=torch.float64) - (int(patch_size) - 1) / 2.0
    rows = centre[:, 0, None] + offsets[None] * (step_mm / spacing[0])[:, None]  # (B, P)
    cols = centre[:, 1, None] + offsets[None] * (step_mm / spacing[1])[:, None]
    return torch.stack(torch.broadcast_tensors(rows[:, :, None], cols[:, None, :]), dim=-1)
