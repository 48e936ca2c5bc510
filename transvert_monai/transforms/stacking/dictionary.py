"""Dictionary wrappers of the stacking transforms: :class:`PlaceVertebraed` and :class:`StackVertebraed`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.stacking.array import PlaceVertebrae, StackVertebrae
from transvert_monai.transforms.stacking.functional import Placement

__all__ = ["PlaceVertebraed", "StackVertebraed"]

_K = TransVertKeys


def _require(d: Mapping, key: str, role: str) -> Any:
    if key not in d:
        raise KeyError(f"key '{key}' ({role}) is not in the data; it holds {sorted(map(str, d))}.")
    return d[key]


class PlaceVertebraed(MapTransform):
    """Dictionary-based wrapper of :class:`PlaceVertebrae`.

    Args:
        keys: the (B, 2, 2) working-pixel centroids (as written by ``RadiographPatchesd``).
        lateral_geometry_key, ap_geometry_key: the views.
        centre_key, residual_key, affine_key: output items for the (B, 3) centres, the (B,) residuals
            and the (B, 4, 4) grid affines.
        placement, size, spacing_mm: see :class:`PlaceVertebrae`.
        allow_missing_keys: don't raise if a key is absent.
    """

    def __init__(
        self,
        keys: KeysCollection = TransVertKeys.CENTROID_PX.value,
        lateral_geometry_key: str = TransVertKeys.LATERAL_GEOMETRY.value,
        ap_geometry_key: str = TransVertKeys.AP_GEOMETRY.value,
        centre_key: str = "centre_mm",
        residual_key: str = "residual_mm",
        affine_key: str = "vertebra_affine",
        placement: Placement | str = Placement.CONE_BEAM,
        size: int = 64,
        spacing_mm: float = 1.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.place = PlaceVertebrae(placement, size, spacing_mm)
        self.lateral_geometry_key, self.ap_geometry_key = lateral_geometry_key, ap_geometry_key
        self.centre_key, self.residual_key, self.affine_key = centre_key, residual_key, affine_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add centres, residuals and affines.

        Raises:
            KeyError: a missing geometry.
            TypeError, ValueError: see :class:`PlaceVertebrae`.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            lat = _require(d, self.lateral_geometry_key, "the lateral view")
            ap = _require(d, self.ap_geometry_key, "the AP view")
            placed = self.place(lat, ap, d[key])
            d[self.centre_key], d[self.residual_key], d[self.affine_key] = (
                placed.centres_mm,
                placed.residual_mm,
                placed.affines,
            )
        return d


class StackVertebraed(MapTransform):
    """Dictionary-based wrapper of :class:`StackVertebrae`.

    Args:
        keys: the (B, 1, S, S, S) predictions.
        labels_key: the VerSe indices of the vertebrae.
        affine_key: the (B, 4, 4) grid affines (from :class:`PlaceVertebraed`).
        output_key: item for the (1, X, Y, Z) spine label map (default: replace the prediction; only with one key).
        spacing_mm, margin_mm: see :class:`StackVertebrae`.
        allow_missing_keys: don't raise if a key is absent.

    Raises:
        ValueError: an ``output_key`` with several keys.
    """

    def __init__(
        self,
        keys: KeysCollection = _K.PRED.value,
        labels_key: str = _K.VERTEBRAE.value,
        affine_key: str = "vertebra_affine",
        output_key: str | None = None,
        spacing_mm: float = 1.0,
        margin_mm: float = 10.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if output_key is not None and len(self.keys) != 1:
            raise ValueError(f"`output_key` takes the stack of one key, got keys {list(self.keys)}.")
        self.stack = StackVertebrae(spacing_mm, margin_mm)
        self.labels_key, self.affine_key, self.output_key = labels_key, affine_key, output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Stack the predictions.

        Raises:
            KeyError: missing labels or affines.
            ValueError: see :class:`StackVertebrae`.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            labels = _require(d, self.labels_key, "the VerSe indices")
            affines = _require(d, self.affine_key, "the vertebra grid affines")
            d[self.output_key or key] = self.stack(d[key], labels, affines)
        return d
