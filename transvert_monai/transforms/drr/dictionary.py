"""Dictionary-based wrappers of the DRR transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import ensure_tuple

from transvert_monai.geometry import View, biplanar_views, grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import RandCArmPose, RenderDRR, volume_and_affine

__all__ = ["RenderDRRd", "RandRenderDRRd"]


def _centre(d: Mapping, centre_key: str | None) -> Any:
    if centre_key is None:
        return None
    if centre_key not in d:
        raise KeyError(f"key '{centre_key}' (`centre_key`, the world point patches are centred on) is not in the data.")
    return d[centre_key]


class RenderDRRd(MapTransform):
    """Dictionary-based wrapper of :class:`RenderDRR`.

    Args:
        keys: CT items (HU) to render.
        output_keys: where to store each DRR (default: replace the CT item).
        centre_key: item holding the world point (3,) patches are centred on (with ``patch_size``).
        allow_missing_keys: skip missing keys instead of raising.
        kwargs: the arguments of :class:`RenderDRR`.
    """

    backend = RenderDRR.backend

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        centre_key: str | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = ensure_tuple(output_keys) if output_keys is not None else self.keys
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"`output_keys` must name one output per key: {len(self.keys)} keys, {len(self.output_keys)} outputs.")
        self.centre_key = centre_key
        self.renderer = RenderDRR(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.renderer(d[key], centre_mm=_centre(d, self.centre_key))
        return d


class RandRenderDRRd(RandCArmPose, MapTransform):
    """Render each CT item in both views (lateral and AP) with one random C-arm pose per call.

    One :meth:`randomize` per sample draws a rotation (``±rotation_range_rad`` about each world
    axis, about the isocentre), a translation (``±translation_range_mm``) and a view-angle error
    (``±view_angle_range_rad``, the AP view turned about the superior axis): every key and both
    views share them, and the draw is stored in each output's meta under ``TransVertKeys.POSE``.
    See :class:`RenderDRR` for the output layout.

    Args:
        keys: CT items (HU) to render.
        output_keys: per key, the (lateral, AP) output keys; default ``(f"{key}_lateral", f"{key}_ap")``.
        rotation_range_rad: half-range of the C-arm rotation about x, y, z.
        translation_range_mm: half-range of the C-arm translation along x, y, z.
        view_angle_range_rad: half-range of the deviation of the angle between the views from 90°.
        prob: probability of perturbing the pose (else the nominal views).
        centre_key: item holding the world point patches are centred on (with ``patch_size``).
        isocentre_mm: world isocentre; default the centre of the CT grid.
        allow_missing_keys: skip missing keys instead of raising.
        kwargs: distances, detector, ``mu_water_per_mm``, ``output``, ``patch_size`` of :class:`RenderDRR`.
    """

    backend = RenderDRR.backend

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: Sequence[Sequence[str]] | None = None,
        rotation_range_rad: float | Sequence[float] = 0.05,
        translation_range_mm: float | Sequence[float] = 20.0,
        view_angle_range_rad: float = 0.03,
        prob: float = 1.0,
        centre_key: str | None = None,
        isocentre_mm: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandCArmPose.__init__(self, rotation_range_rad, translation_range_mm, view_angle_range_rad, prob)
        if output_keys is None:
            output_keys = [(f"{k}_{View.LATERAL.value}", f"{k}_{View.AP.value}") for k in self.keys]
        self.output_keys = [tuple(pair) for pair in output_keys]
        if len(self.output_keys) != len(self.keys) or any(len(p) != 2 for p in self.output_keys):
            raise ValueError("`output_keys` must hold one (lateral, ap) pair of output keys per key.")
        self.centre_key = centre_key
        self.isocentre_mm = isocentre_mm
        self.renderers = {v: RenderDRR(view=v, **kwargs) for v in (View.LATERAL, View.AP)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        template = self.renderers[View.LATERAL].template
        for key, (lat_key, ap_key) in self.key_iterator(d, self.output_keys):
            volume, affine = volume_and_affine(d[key], type(self).__name__)
            iso = self.isocentre_mm if self.isocentre_mm is not None else grid_centre_mm(affine, volume.shape)
            views = biplanar_views(
                iso,
                self.pose["rotation_rad"],
                self.pose["translation_mm"],
                self.pose["view_angle_rad"],
                source_to_detector_mm=template.source_to_detector_mm,
                source_to_isocentre_mm=template.source_to_isocentre_mm,
                detector_size_px=template.detector_size_px,
                detector_spacing_mm=template.detector_spacing_mm,
            )
            for out_key, view, geometry in zip((lat_key, ap_key), (View.LATERAL, View.AP), views):
                out = self.renderers[view](d[key], geometry=geometry, centre_mm=_centre(d, self.centre_key))
                if isinstance(out, MetaTensor):
                    out.meta[TransVertKeys.POSE.value] = dict(self.pose)
                d[out_key] = out
        return d

