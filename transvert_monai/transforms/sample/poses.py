"""Fixed random poses for evaluation: every case of a data list seen with the same seeded C-arm poses.

Training draws a new pose per call (:class:`RandExtractVertebraSamplesd`); validation and testing
need *unseen but fixed* poses so that scores are comparable between epochs and runs. Each item gets
a list of ``poses_per_item`` poses under ``TransVertKeys.POSE``, which :class:`ExtractVertebraSamplesd`
applies deterministically, pose by pose (so the samples can be cached and the CT is loaded once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import draw_pose, sample_range

__all__ = ["with_fixed_poses"]


def with_fixed_poses(
    items: Sequence[Mapping[str, Any]],
    poses_per_item: int = 4,
    seed: int = 0,
    rotation_range_rad: float | Sequence[float] = 0.05,
    translation_range_mm: float | Sequence[float] = 20.0,
    view_angle_range_rad: float = 0.03,
    include_nominal: bool = True,
    pose_key: str = TransVertKeys.POSE.value,
) -> list[dict[str, Any]]:
    """Give each data-list item a list of seeded random C-arm poses.

    Args:
        items: data-list items (dicts).
        poses_per_item: poses per item (the first is the nominal pose when ``include_nominal``).
        seed: seed of the pose generator; the same seed gives the same poses.
        rotation_range_rad, translation_range_mm, view_angle_range_rad: half-ranges as in
            :class:`RandExtractVertebraSamplesd`.
        include_nominal: make the first pose of every item the nominal (unperturbed) one.
        pose_key: where the pose goes.

    Returns:
        new dicts, one per item, with ``pose_key`` holding ``poses_per_item`` poses.

    Raises:
        ValueError: ``poses_per_item`` < 1.
    """
    if int(poses_per_item) != poses_per_item or poses_per_item < 1:
        raise ValueError(f"`poses_per_item` must be a positive whole number, got {poses_per_item!r}.")
    rng = np.random.RandomState(seed)
    rotation, translation = sample_range(rotation_range_rad, "rotation_range_rad"), sample_range(translation_range_mm, "translation_range_mm")
    out = []
    for item in items:
        poses = [
            draw_pose(rng, rotation, translation, view_angle_range_rad, apply=not (include_nominal and k == 0))
            for k in range(int(poses_per_item))
        ]
        out.append({**item, pose_key: poses})
    return out
