"""Dictionary transforms of deployment: :class:`LoadRadiographd`, :class:`LoadRadiographPaird` and :class:`RadiographPatchesd`.

Typical use (one dictionary per radiograph pair)::

    Compose([
        LoadRadiographd(["lateral", "ap"]),
        RadiographPatchesd(["lateral", "ap"], centroids_key="centroids"),
    ])({"lateral": "lat.dcm", "ap": "ap.dcm", "centroids": "centroids2d.json"})
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import look_up_option

from transvert_monai.geometry import SamplingGrid, View
from transvert_monai.io.centroids2d import read_centroids_2d
from transvert_monai.io.radiograph import Radiograph, check_pair, read_radiograph
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.radiograph.array import RadiographPatches

__all__ = ["LoadRadiographd", "LoadRadiographPaird", "RadiographPatchesd"]

_K = TransVertKeys


class LoadRadiographd(MapTransform):
    """Replace paths to radiographs with :class:`~transvert_monai.io.Radiograph` objects (see ``read_radiograph``).

    Args:
        keys: the radiograph items.
        views: the view of each key, in order (default: the key names, which must then be ``"lateral"``/``"ap"``).
        flip_horizontal: per key (or one for all), mirror the image left–right.
        pixel_spacing_mm, source_to_detector_mm, source_to_patient_mm: geometry for all keys,
            overriding the files and side-cars (None: from the files).
        allow_missing_keys: don't raise if a key is absent.

    Raises:
        ValueError: an unknown view, or as many views/flips as keys not given.
    """

    def __init__(
        self,
        keys: KeysCollection,
        views: Sequence[str] | None = None,
        flip_horizontal: bool | Sequence[bool] = False,
        pixel_spacing_mm: float | Sequence[float] | None = None,
        source_to_detector_mm: float | None = None,
        source_to_patient_mm: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        views = [str(k) for k in self.keys] if views is None else list(views)
        flips = [flip_horizontal] * len(self.keys) if isinstance(flip_horizontal, bool) else list(flip_horizontal)
        if len(views) != len(self.keys) or len(flips) != len(self.keys):
            raise ValueError(
                f"give one view and one flip per key {list(self.keys)}, got views {views} and flips {flips}."
            )
        self.views = {k: look_up_option(v, View).value for k, v in zip(self.keys, views)}
        self.flips = dict(zip(self.keys, (bool(f) for f in flips)))
        self.geometry = {
            "pixel_spacing_mm": pixel_spacing_mm,
            "source_to_detector_mm": source_to_detector_mm,
            "source_to_patient_mm": source_to_patient_mm,
        }

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Read the radiographs of ``data`` (items that are already Radiographs are kept).

        Raises:
            KeyError: a missing key (unless allowed).
            TypeError: an item that is neither a path nor a Radiograph.
            FileNotFoundError, ValueError: see :func:`~transvert_monai.io.read_radiograph`.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], Radiograph):
                continue
            if not isinstance(d[key], (str, os.PathLike)):
                raise TypeError(
                    f"LoadRadiographd expects d[{key!r}] to be a path to a radiograph, got {type(d[key]).__name__}."
                )
            d[key] = read_radiograph(d[key], self.views[key], flip_horizontal=self.flips[key], **self.geometry)
        return d


class LoadRadiographPaird(MapTransform):
    """Read one study's radiograph pair and its 2D centroids, checked together: the reading step of inference.

    The lateral and AP paths become :class:`~transvert_monai.io.Radiograph` objects (each with its
    geometry side-car ``f"{key}_{sidecar_postfix}"`` when the item has one), the pair is checked
    (:func:`~transvert_monai.io.check_pair`: one lateral and one AP view of one patient), and the
    centroids path becomes a :class:`~transvert_monai.io.Centroids2D` checked against both image sizes.
    ``transvert-reconstruct`` and ``inference.json`` read their inputs with this transform.

    Args:
        keys: exactly two items, the lateral then the AP radiograph.
        centroids_key: the 2D centroid JSON file (a ``Centroids2D`` or its JSON object is kept as given).
        sidecar_postfix: the side-car item of each view is ``f"{key}_{sidecar_postfix}"`` (optional, may be None).
        allow_missing_keys: must stay False: both views are needed.

    Raises:
        ValueError: not exactly two keys.
    """

    def __init__(
        self,
        keys: KeysCollection = (_K.LATERAL.value, _K.AP.value),
        centroids_key: str = "centroids",
        sidecar_postfix: str = "sidecar",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"LoadRadiographPaird needs two keys, the lateral then the AP view, got {list(self.keys)}.")
        self.centroids_key, self.sidecar_postfix = centroids_key, sidecar_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Read and check the pair and the centroids of ``data``.

        Raises:
            KeyError: a missing view or centroids item.
            FileNotFoundError, TransVertInputError (a ``ValueError``): see :func:`~transvert_monai.io.read_radiograph`,
                :func:`~transvert_monai.io.check_pair` and :func:`~transvert_monai.io.read_centroids_2d`.
        """
        d = dict(data)
        for key in (*self.keys, self.centroids_key):
            if d.get(key) is None:
                raise KeyError(f"the study has no '{key}' item; it holds {sorted(map(str, d))}.")
        views = {}
        for key, view in zip(self.keys, ("lateral", "ap")):
            sidecar = d.get(f"{key}_{self.sidecar_postfix}")
            views[key] = d[key] if isinstance(d[key], Radiograph) else read_radiograph(d[key], view, sidecar=sidecar)
        lateral, ap = (views[k] for k in self.keys)
        check_pair(lateral, ap)
        centroids = d[self.centroids_key]
        if isinstance(centroids, (str, os.PathLike)):
            centroids = read_centroids_2d(centroids, image_sizes={"lateral": lateral.shape, "ap": ap.shape})
        d.update(views)
        d[self.centroids_key] = centroids
        return d


class RadiographPatchesd(MapTransform):
    """Dictionary-based wrapper of :class:`RadiographPatches`.

    Args:
        keys: exactly two items, the lateral then the AP radiograph (Radiograph objects, or paths
            read with default options).
        centroids_key: the 2D centroids (a path, a JSON object or a ``Centroids2D``).
        image_key: output item for the (B, 4, P, P) input.
        vertebrae_key: output item for the list of VerSe indices.
        geometry_postfix: the views go to ``f"{key}_{geometry_postfix}"`` as ``ProjectionGeometry``.
        centroid_px_key: output item for the (B, 2, 2) working-pixel centroids.
        missing_key: output item for ``{VerSe index: view}`` of skipped vertebrae.
        sampling_grid: see :class:`RadiographPatches`.
        allow_missing_keys: must stay False: both views are needed.

    Raises:
        ValueError: not exactly two keys.
    """

    def __init__(
        self,
        keys: KeysCollection = (_K.LATERAL.value, _K.AP.value),
        centroids_key: str = "centroids",
        image_key: str = _K.IMAGE.value,
        vertebrae_key: str = _K.VERTEBRAE.value,
        geometry_postfix: str = "geometry",
        centroid_px_key: str = TransVertKeys.CENTROID_PX.value,
        missing_key: str = "missing_vertebrae",
        sampling_grid: SamplingGrid | Mapping | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 2:
            raise ValueError(f"RadiographPatchesd needs two keys, the lateral then the AP view, got {list(self.keys)}.")
        self.patches = RadiographPatches(sampling_grid)
        self.centroids_key, self.image_key, self.vertebrae_key = centroids_key, image_key, vertebrae_key
        self.geometry_postfix, self.centroid_px_key, self.missing_key = geometry_postfix, centroid_px_key, missing_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add the network input and what placement and outputs need to ``data``.

        Raises:
            KeyError: a missing view or centroids item.
            TypeError, ValueError: see :class:`RadiographPatches`.
        """
        d = dict(data)
        for key in (*self.keys, self.centroids_key):
            if key not in d:
                raise KeyError(f"key '{key}' is not in the data; it holds {sorted(map(str, d))}.")
        lat_key, ap_key = self.keys
        views = {}
        for key, view in ((lat_key, "lateral"), (ap_key, "ap")):
            views[key] = d[key] if isinstance(d[key], Radiograph) else read_radiograph(d[key], view)
        s = self.patches.samples(views[lat_key], views[ap_key], d[self.centroids_key])
        d[lat_key], d[ap_key] = views[lat_key], views[ap_key]
        d[self.image_key] = self.patches.pack(s, views[lat_key].source)
        d[self.vertebrae_key] = list(s.labels)
        d[f"{lat_key}_{self.geometry_postfix}"] = s.lateral_geometry
        d[f"{ap_key}_{self.geometry_postfix}"] = s.ap_geometry
        d[self.centroid_px_key] = s.centroid_px
        d[self.missing_key] = dict(s.missing)
        return d
