"""Loading transforms for the non-image items of a data-list entry (centroid files)."""

from __future__ import annotations

from transvert_monai.transforms.io.dictionary import LoadCentroidsd

__all__ = ["LoadCentroidsd"]
