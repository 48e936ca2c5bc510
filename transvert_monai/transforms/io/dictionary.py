"""Dictionary transforms that load the non-image items of a TransVert data-list entry.

``LoadImaged`` reads the CT and the mask; :class:`LoadCentroidsd` reads the centroid JSON written by
:func:`transvert_monai.data.write_centroids` (world RAS mm, VerSe indices as keys).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from transvert_monai.data.centroids import read_centroids

__all__ = ["LoadCentroidsd"]


class LoadCentroidsd(MapTransform):
    """Replace a path to a centroid JSON with ``{VerSe index: float64 tensor (3,)}`` world RAS mm.

    A value that is already a mapping (loaded before, e.g. by a cached dataset) is left as is.

    Args:
        keys: keys of the items holding centroid file paths, e.g. ``"centroids"``.
        allow_missing_keys: don't raise if a key is absent.

    Example:
        >>> from monai.transforms import Compose, LoadImaged
        >>> load = Compose([LoadImaged(["ct", "mask"], ensure_channel_first=True), LoadCentroidsd("centroids")])
        >>> sample = load(item)  # sample["centroids"][20] -> tensor([x, y, z], dtype=torch.float64)
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        """Load the centroid files of ``data``.

        Raises:
            KeyError: if a key is missing and ``allow_missing_keys`` is False.
            TypeError: if a value is neither a path nor a mapping.
            FileNotFoundError: if a centroid file does not exist.
            ValueError: if a centroid file is not in our format.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            if isinstance(value, Mapping):
                continue
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(
                    f"LoadCentroidsd expects d[{key!r}] to be a path to a centroid JSON (or an already loaded "
                    f"{{label: tensor}} dict), got {type(value).__name__}."
                )
            centroids: dict[int, torch.Tensor] = read_centroids(value)
            d[key] = centroids
        return d
