"""One colour per vertebra, shared by the overlays and the renderings: neighbours always differ."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, label_to_name, level_order

__all__ = ["label_colour"]

# cranial → caudal rank of every VerSe index (T13 between T12 and L1)
_RANK = {v: i for i, v in enumerate(sorted(VALID_VERTEBRA_LABELS, key=level_order))}


def label_colour(label: int) -> np.ndarray:
    """RGB in [0, 1] (3,) of a VerSe index: matplotlib's ``tab10`` by level, so adjacent vertebrae differ.

    Raises:
        ValueError: not a VerSe index.
    """
    label_to_name(label)
    return np.asarray(colormaps["tab10"](_RANK[int(label)] % 10)[:3], dtype=np.float64)
