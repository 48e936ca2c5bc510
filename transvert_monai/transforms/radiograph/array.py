"""Radiograph transforms on one radiograph pair: :class:`RadiographPatches` (the packed network input)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import Transform
from monai.utils import TransformBackends

from transvert_monai.io.centroids2d import Centroids2D
from transvert_monai.geometry import SamplingGrid
from transvert_monai.io.radiograph import Radiograph
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.radiograph.functional import RadiographSamples, extract_radiograph_samples

__all__ = ["RadiographPatches"]


class RadiographPatches(Transform):
    """Per vertebra, the packed input ``[lat, lat_voi, ap, ap_voi]`` from a lateral and an AP radiograph.

    See :func:`~transvert_monai.transforms.radiograph.functional.extract_radiograph_samples` for the steps.

    Args:
        sampling_grid: the model's :class:`~transvert_monai.geometry.SamplingGrid` (or its fields);
            default ``SamplingGrid()``. A trained network carries its own (``TransVert.sampling_grid``).

    Example:
        >>> lat, ap = read_radiograph("lat.dcm", "lateral"), read_radiograph("ap.dcm", "ap")
        >>> image = RadiographPatches()(lat, ap, "centroids2d.json")  # (B, 4, 64, 64)
        >>> image.meta["vertebrae"], image.meta["lateral_geometry"]  # labels, ProjectionGeometry.to_dict()

    Raises:
        ValueError: a bad sampling grid.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, sampling_grid: SamplingGrid | Mapping | None = None) -> None:
        self.grid = SamplingGrid() if sampling_grid is None else SamplingGrid.from_dict(sampling_grid)

    def samples(
        self,
        lateral: Radiograph,
        ap: Radiograph,
        centroids: Centroids2D | Mapping | str | os.PathLike,
        labels: Sequence[int] | None = None,
    ) -> RadiographSamples:
        """All outputs of the pair (input, labels, geometries, working centroids and images)."""
        for item, name in ((lateral, "lateral"), (ap, "ap")):
            if not isinstance(item, Radiograph):
                raise TypeError(
                    f"RadiographPatches expects the {name} view as a Radiograph, got {type(item).__name__}; "
                    "read it with `transvert_monai.io.read_radiograph`."
                )
        return extract_radiograph_samples(lateral, ap, centroids, self.grid, labels)

    def __call__(
        self,
        lateral: Radiograph,
        ap: Radiograph,
        centroids: Centroids2D | Mapping | str | os.PathLike,
        labels: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """(B, 4, P, P) float32 input: a MetaTensor whose meta holds ``vertebrae`` (labels),
        ``lateral_geometry`` / ``ap_geometry`` (``ProjectionGeometry.to_dict()``) and ``centroid_px``
        ((B, 2, 2) working pixels), or a plain tensor when meta tracking is off.

        Raises:
            TypeError: a view that is not a :class:`~transvert_monai.io.Radiograph`.
            ValueError, KeyError: see :func:`extract_radiograph_samples`.
        """
        return self.pack(self.samples(lateral, ap, centroids, labels), lateral.source)

    @staticmethod
    def pack(s: RadiographSamples, source: str | None = None) -> torch.Tensor:
        """The input of ``s`` as returned by ``__call__`` (MetaTensor with meta, or a plain tensor)."""
        if not get_track_meta():
            return s.image
        meta = {
            TransVertKeys.VERTEBRAE.value: list(s.labels),
            TransVertKeys.LATERAL_GEOMETRY.value: s.lateral_geometry.to_dict(),
            TransVertKeys.AP_GEOMETRY.value: s.ap_geometry.to_dict(),
            TransVertKeys.CENTROID_PX.value: s.centroid_px,
            "filename_or_obj": source,
        }
        return MetaTensor(s.image, meta=meta)
