"""The 3D targets of a data list's vertebrae without rendering their images: for shape statistics and baselines.

The shape prior, the training volume ranges (:func:`transvert_monai.networks.fit_training_statistics`)
and the mean-shape baseline need every training vertebra's target on its view-aligned grid, seen with
the same C-arm poses as in training, but none of its DRR patches; cropping the targets alone is about
a hundred times cheaper than rendering the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from transvert_monai.geometry import SamplingGrid, biplanar_views, grid_centre_mm, view_aligned_frame
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import volume_and_affine
from transvert_monai.transforms.sample.poses import with_fixed_poses
from transvert_monai.transforms.voi.functional import crop_vertebra_target

__all__ = ["iter_vertebra_targets"]

_K = TransVertKeys


def iter_vertebra_targets(
    items: Sequence[Mapping[str, Any]],
    load: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    sampling_grid: SamplingGrid | Mapping[str, Any] | None = None,
    poses_per_item: int = 4,
    seed: int = 0,
    rotation_range_rad: float | Sequence[float] = 0.05,
    translation_range_mm: float | Sequence[float] = 20.0,
    view_angle_range_rad: float = 0.03,
    source_to_detector_mm: float = 1800.0,
    source_to_isocentre_mm: float = 1500.0,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(VerSe index, target (1, S, S, S))`` for every vertebra of ``items`` and every fixed pose.

    Args:
        items: data-list items (``ct``, ``mask``, ``centroids``, ``vertebrae``), e.g. the training list.
        load: the loading transform of the bundle (``@load_case``: LoadImaged, Spacingd, LoadCentroidsd).
        sampling_grid: the grid of the targets; default ``SamplingGrid()``.
        poses_per_item: poses per case, the first the nominal one (see :func:`with_fixed_poses`).
        seed, rotation_range_rad, translation_range_mm, view_angle_range_rad: the poses' generator
            and half-ranges, as in training.
        source_to_detector_mm, source_to_isocentre_mm: the views' distances.

    Raises:
        KeyError: an item without mask, centroids or CT.
    """
    grid = SamplingGrid() if sampling_grid is None else SamplingGrid.from_dict(sampling_grid)
    size = grid.target_size
    posed = with_fixed_poses(
        items, poses_per_item, seed, rotation_range_rad, translation_range_mm, view_angle_range_rad, include_nominal=True
    )
    for item in posed:
        data = load(item)
        mask, affine = volume_and_affine(data[_K.MASK.value], "iter_vertebra_targets")
        centroids = {int(k): torch.as_tensor(v, dtype=torch.float64) for k, v in data[_K.CENTROIDS.value].items()}
        labels = [int(v) for v in data.get(_K.VERTEBRAE.value, sorted(centroids))]
        iso = grid_centre_mm(affine, mask.shape)
        for pose in item[_K.POSE.value]:
            lateral, ap = biplanar_views(
                iso,
                pose["rotation_rad"],
                pose["translation_mm"],
                pose["view_angle_rad"],
                source_to_detector_mm=source_to_detector_mm,
                source_to_isocentre_mm=source_to_isocentre_mm,
            )
            for v in labels:
                frame = view_aligned_frame(lateral, ap, centroids[v], size, grid.target_spacing_mm)
                yield v, grid.make_target(crop_vertebra_target(mask, affine, v, frame, (size,) * 3))[None]
