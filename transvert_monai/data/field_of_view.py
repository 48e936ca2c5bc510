"""Which vertebrae of a label map are complete enough to train and test on.

Field-of-view rule: a vertebra is excluded as incomplete if its mask touches the first or the last
voxel plane along any axis of the grid (it is probably cut by the scan's field of view), or if it has
fewer than ``min_voxels`` voxels (default 1000; a fragment or a partial segmentation).
"""

from __future__ import annotations

import logging

import numpy as np
from monai.config import NdarrayOrTensor
from scipy import ndimage

from transvert_monai.data.centroids import as_label_array
from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, label_to_name, level_order
from transvert_monai.errors import TransVertInputError

__all__ = ["DEFAULT_MIN_VOXELS", "check_vertebra_labels", "select_complete_vertebrae"]

logger = logging.getLogger(__name__)

#: Fewer voxels than this make a vertebra incomplete.
DEFAULT_MIN_VOXELS = 1000


def check_vertebra_labels(mask: NdarrayOrTensor, *, where: str = "mask") -> list[int]:
    """Return the non-zero labels of a VerSe-indexed mask after checking they are vertebrae.

    Raises:
        TransVertInputError: if a label lies outside 1–25 and 28.
    """
    arr = as_label_array(mask, name=where)
    counts = np.bincount(arr.ravel()) if arr.size and arr.min() >= 0 else None
    present = [int(v) for v in np.nonzero(counts)[0]] if counts is not None else [int(v) for v in np.unique(arr)]
    labels = [v for v in present if v != 0]
    invalid = [v for v in labels if v not in VALID_VERTEBRA_LABELS]
    if invalid:
        raise TransVertInputError(
            f"{where} holds labels {invalid} outside the VerSe vertebra indices 1–25 (C1–L6) and 28 (T13); "
            "convert it to VerSe indices first (a TotalSegmentator mask goes through convert_totalsegmentator)."
        )
    return sorted(labels, key=level_order)


def select_complete_vertebrae(
    mask: NdarrayOrTensor, min_voxels: int = DEFAULT_MIN_VOXELS
) -> tuple[list[int], dict[int, str]]:
    """Split the vertebrae of a label map into complete ones and excluded ones (with the reason).

    Applies the field-of-view rule of this module: touching the first or last voxel plane along any
    grid axis, or fewer than ``min_voxels`` voxels, excludes a vertebra.

    Args:
        mask: VerSe-indexed label map (X, Y, Z) or (1, X, Y, Z).
        min_voxels: smallest voxel count of a complete vertebra.

    Returns:
        ``(kept, excluded)``: kept VerSe indices sorted cranial → caudal, and
        ``{VerSe index: reason}`` for the excluded ones.

    Raises:
        ValueError: if ``min_voxels`` is negative or a label is not a vertebra.
    """
    if min_voxels < 0:
        raise ValueError(f"`min_voxels` must be >= 0, got {min_voxels}.")
    arr = as_label_array(mask)
    labels = check_vertebra_labels(arr)
    if not labels:
        return [], {}
    boxes = ndimage.find_objects(arr)
    counts = np.bincount(arr.ravel(), minlength=max(labels) + 1)
    kept: list[int] = []
    excluded: dict[int, str] = {}
    for label in labels:
        box = boxes[label - 1]
        touching = []
        for axis, s in enumerate(box):
            if s.start == 0:
                touching.append(f"first plane of axis {axis}")
            if s.stop == arr.shape[axis]:
                touching.append(f"last plane of axis {axis}")
        if touching:
            excluded[label] = "touches the field of view: " + ", ".join(touching)
        elif counts[label] < min_voxels:
            excluded[label] = f"{int(counts[label])} voxels < min_voxels={min_voxels}"
        else:
            kept.append(label)
    for label, reason in excluded.items():
        logger.debug("Vertebra %s (%d) is incomplete: %s.", label_to_name(label), label, reason)
    return kept, excluded
