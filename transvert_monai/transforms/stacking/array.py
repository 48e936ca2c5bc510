"""Stacking transforms: :class:`PlaceVertebrae` (3D centres and grids) and :class:`StackVertebrae` (the spine label map)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_tensor, look_up_option

from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.stacking.functional import (
    Placement,
    VertebraPlacement,
    place_vertebrae,
    stack_vertebrae,
)

__all__ = ["PlaceVertebrae", "StackVertebrae"]


def _geometry(value: ProjectionGeometry | dict, name: str) -> ProjectionGeometry:
    if isinstance(value, ProjectionGeometry):
        return value
    if isinstance(value, dict):
        return ProjectionGeometry.from_dict(value)
    raise TypeError(f"the {name} view must be a ProjectionGeometry or its to_dict(), got {type(value).__name__}.")


class PlaceVertebrae(Transform):
    """Each vertebra's 3D centre, residual and view-aligned grid from its centroids in both views.

    Args:
        placement: ``"cone_beam"`` (triangulation) or ``"orthographic"`` (the paper's rule).
        size: side of the vertebra grids in voxels (the network output, 64).
        spacing_mm: voxel size of the vertebra grids (1.5 mm in training).

    Example:
        >>> placed = PlaceVertebrae()(lat_geometry, ap_geometry, centroid_px)  # VertebraPlacement
        >>> placed.affines.shape, placed.residual_mm
        (torch.Size([B, 4, 4]), tensor([...]))

    Raises:
        ValueError: an unknown placement, a non-positive size or spacing.
    """

    def __init__(
        self, placement: Placement | str = Placement.CONE_BEAM, size: int = 64, spacing_mm: float = 1.5
    ) -> None:
        self.placement = look_up_option(placement, Placement)
        if int(size) != size or size < 1:
            raise ValueError(f"`size` must be a positive whole number of voxels, got {size!r}.")
        if not spacing_mm > 0:
            raise ValueError(f"`spacing_mm` must be positive, got {spacing_mm!r}.")
        self.size, self.spacing_mm = int(size), float(spacing_mm)

    def __call__(
        self, lateral: ProjectionGeometry | dict, ap: ProjectionGeometry | dict, centroid_px: torch.Tensor
    ) -> VertebraPlacement:
        """Place the vertebrae whose (B, 2, 2) centroids are given in the views' pixels.

        Raises:
            TypeError: a view that is neither a ProjectionGeometry nor its dict.
            ValueError: see :func:`place_vertebrae`.
        """
        return place_vertebrae(
            _geometry(lateral, "lateral"), _geometry(ap, "AP"), centroid_px, self.placement, self.size, self.spacing_mm
        )


class StackVertebrae(Transform):
    """Paste per-vertebra shapes into one label map of the spine (see :func:`stack_vertebrae`).

    Args:
        spacing_mm: isotropic voxel size of the output grid.
        margin_mm: space around the union of the vertebra grids.

    Example:
        >>> spine = StackVertebrae()(pred, labels=[18, 19, 20], affines=placed.affines)  # MetaTensor (1, X, Y, Z)
        >>> spine.affine  # RAS-aligned output grid

    Raises:
        ValueError: a non-positive spacing or a negative margin.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, spacing_mm: float = 1.0, margin_mm: float = 10.0) -> None:
        if not spacing_mm > 0:
            raise ValueError(f"`spacing_mm` must be positive, got {spacing_mm!r}.")
        if not margin_mm >= 0:
            raise ValueError(f"`margin_mm` must be non-negative, got {margin_mm!r}.")
        self.spacing_mm, self.margin_mm = float(spacing_mm), float(margin_mm)

    def __call__(
        self,
        img: NdarrayOrTensor,
        labels: Sequence[int] | torch.Tensor | None = None,
        affines: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Stack (B, 1, S, S, S) shapes.

        Args:
            img: the regression outputs (or ``{0, i}`` targets), one per vertebra.
            labels: their VerSe indices; default ``img.meta["vertebrae"]``.
            affines: (B, 4, 4) grid affines; default ``img.affine`` when it holds one affine per vertebra.

        Returns:
            (1, X, Y, Z) uint8 label map: a MetaTensor with the output grid's affine, or a plain
            tensor when meta tracking is off.

        Raises:
            ValueError: no labels or affines found, or malformed inputs (see :func:`stack_vertebrae`).
        """
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if labels is None and isinstance(img, MetaTensor):
            labels = img.meta.get(TransVertKeys.VERTEBRAE.value)
        if labels is None:
            raise ValueError(
                "StackVertebrae needs the VerSe index of each shape: pass `labels` (or img.meta['vertebrae'])."
            )
        if affines is None and isinstance(img, MetaTensor) and img.affine.ndim == 3:
            affines = img.affine
        if affines is None:
            raise ValueError(
                "StackVertebrae needs one grid affine per shape: pass `affines` (B, 4, 4), e.g. PlaceVertebrae()(...).affines."
            )
        volume, affine = stack_vertebrae(img, labels, affines, self.spacing_mm, self.margin_mm)
        out = volume[None]
        if get_track_meta():
            meta = (
                {"filename_or_obj": img.meta["filename_or_obj"]}
                if isinstance(img, MetaTensor) and "filename_or_obj" in img.meta
                else {}
            )
            return MetaTensor(out, affine=affine, meta=meta)
        return out
