"""DRR transforms on one channel-first CT volume: :class:`RenderDRR` and its random-pose twin :class:`RandRenderDRR`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import RandomizableTransform, Transform
from monai.utils import TransformBackends, look_up_option

from transvert_monai.geometry import ProjectionGeometry, View, ap_view, as_affine, grid_centre_mm, lateral_view
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.functional import DRROutput, hu_to_mu, patch_origin, patch_pixels, render_drr

__all__ = ["RandCArmPose", "RenderDRR", "RandRenderDRR", "volume_and_affine", "sample_range", "draw_pose", "derived_meta_tensor"]


def volume_and_affine(img: NdarrayOrTensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (X, Y, Z) volume and its 4×4 affine from a channel-first MetaTensor (1, X, Y, Z).

    Raises:
        ValueError: not channel-first 3D with one channel, or a bad affine.
        TypeError: no affine (not a MetaTensor).
    """
    if not isinstance(img, MetaTensor):
        raise TypeError(
            f"{name} needs the volume's affine to place it in the world, but got a {type(img).__name__} without one; "
            "load it with `LoadImaged` (and `EnsureChannelFirstd`) or wrap it in `MetaTensor(x, affine=...)`."
        )
    if img.ndim != 4 or img.shape[0] != 1:
        raise ValueError(f"{name} expects a channel-first 3D volume (1, X, Y, Z), got shape {tuple(img.shape)}.")
    return img.as_tensor()[0], as_affine(img.affine, name=f"{name} input affine")


def derived_meta_tensor(
    data: torch.Tensor, affine: torch.Tensor, source: Any = None, meta: dict[str, Any] | None = None
) -> MetaTensor:
    """A new MetaTensor for an image derived from ``source``: its own affine, the source's non-geometric meta.

    Only ``filename_or_obj`` is carried over (the spatial meta of a volume does not describe a projection).
    """
    out = MetaTensor(data, affine=affine)
    if isinstance(source, MetaTensor) and "filename_or_obj" in source.meta:
        out.meta["filename_or_obj"] = source.meta["filename_or_obj"]
    out.meta.update(meta or {})
    return out


def sample_range(value: float | Sequence[float], name: str) -> tuple[float, float, float]:
    """Per-axis non-negative half-ranges ``(x, y, z)`` from one number or three.

    Raises:
        ValueError: negative values or a wrong count.
    """
    seq = (value,) * 3 if isinstance(value, (int, float)) else tuple(value)
    if len(seq) != 3 or any(float(v) < 0 for v in seq):
        raise ValueError(f"`{name}` must be one non-negative number or three (x, y, z), got {value!r}.")
    return tuple(float(v) for v in seq)  # type: ignore[return-value]


def draw_pose(
    rng: Any,
    rotation_range_rad: Sequence[float],
    translation_range_mm: Sequence[float],
    view_angle_range_rad: float = 0.0,
    apply: bool = True,
) -> dict[str, Any]:
    """C-arm pose offsets drawn uniformly within the half-ranges (all zero when ``apply`` is False).

    Args:
        rng: the transform's ``numpy.random.RandomState`` (``self.R``).
        rotation_range_rad, translation_range_mm: per-axis half-ranges (x, y, z).
        view_angle_range_rad: half-range of the deviation of the angle between the two views from 90°.
        apply: whether the transform perturbs this sample.

    Returns:
        ``{"rotation_rad": [3], "translation_mm": [3], "view_angle_rad": float}``.
    """
    if not apply:
        return {"rotation_rad": [0.0] * 3, "translation_mm": [0.0] * 3, "view_angle_rad": 0.0}
    return {
        "rotation_rad": [float(rng.uniform(-r, r)) for r in rotation_range_rad],
        "translation_mm": [float(rng.uniform(-t, t)) for t in translation_range_mm],
        "view_angle_rad": float(rng.uniform(-view_angle_range_rad, view_angle_range_rad)),
    }


class RandCArmPose(RandomizableTransform):
    """Base of the random-pose transforms: draws one C-arm pose per call into ``self.pose``.

    With probability ``prob``, :meth:`randomize` draws a rotation uniform in ``±rotation_range_rad``
    about each world axis (about the isocentre), a translation uniform in ``±translation_range_mm``
    and a view-angle error uniform in ``±view_angle_range_rad`` (see :func:`draw_pose`); otherwise
    the pose is nominal (all zeros). Subclasses then apply it deterministically.

    Args:
        rotation_range_rad: half-range of the rotation about x, y, z (one number or three).
        translation_range_mm: half-range of the translation along x, y, z.
        view_angle_range_rad: half-range of the deviation of the angle between the two views from 90°.
        prob: probability of perturbing the pose.

    Raises:
        ValueError: negative ranges.
    """

    def __init__(
        self,
        rotation_range_rad: float | Sequence[float] = 0.05,
        translation_range_mm: float | Sequence[float] = 20.0,
        view_angle_range_rad: float = 0.0,
        prob: float = 1.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.rotation_range_rad = sample_range(rotation_range_rad, "rotation_range_rad")
        self.translation_range_mm = sample_range(translation_range_mm, "translation_range_mm")
        if not view_angle_range_rad >= 0:
            raise ValueError(f"`view_angle_range_rad` must be non-negative, got {view_angle_range_rad!r}.")
        self.view_angle_range_rad = float(view_angle_range_rad)
        self.pose: dict[str, Any] = draw_pose(None, (), (), apply=False)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandCArmPose:
        super().set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the pose of this call (nominal when the transform is not applied)."""
        super().randomize(None)
        self.pose = draw_pose(
            self.R, self.rotation_range_rad, self.translation_range_mm, self.view_angle_range_rad, self._do_transform
        )


class RenderDRR(Transform):
    """Render a DRR of a CT volume in HU with a cone-beam view (the whole detector or a patch of it).

    The output is a MetaTensor (1, H, W) whose affine maps ``(row, col, 0)`` to the pixel's world
    position on the detector (``ProjectionGeometry.detector_affine``), and whose meta holds the
    view under ``TransVertKeys.GEOMETRY`` and the patch's top-left pixel under ``"patch_origin_px"``.

    Args:
        view: ``"lateral"`` or ``"ap"`` (conventions in :mod:`transvert_monai.geometry.projection`).
        source_to_detector_mm: focal spot to detector distance.
        source_to_isocentre_mm: focal spot to isocentre distance.
        detector_size_px: detector (rows, cols).
        detector_spacing_mm: pixel spacing (rows, cols) or one number.
        isocentre_mm: world isocentre; default the centre of the CT's voxel grid.
        mu_water_per_mm: linear attenuation of water (see :func:`hu_to_mu`).
        output: ``"line_integral"`` or ``"beer_lambert"``.
        patch_size: render only a (rows, cols) window around the projection of ``centre_mm`` given at call time.
        plane_binning: CT planes averaged per ray sample (1: plain Joseph; 2, the default, halves the
            cost with NCC > 0.9999 against exact ray paths; see ``AttenuationVolume``).

    Raises:
        ValueError: bad view name or geometry values.

    Example:
        >>> drr = RenderDRR("lateral", detector_size_px=(256, 256), detector_spacing_mm=2.0)
        >>> image = drr(ct)  # ct: MetaTensor (1, X, Y, Z) in HU → (1, 256, 256)
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        view: View | str = View.LATERAL,
        source_to_detector_mm: float = 1800.0,
        source_to_isocentre_mm: float = 1500.0,
        detector_size_px: Sequence[int] = (256, 256),
        detector_spacing_mm: float | Sequence[float] = 2.0,
        isocentre_mm: Sequence[float] | None = None,
        mu_water_per_mm: float = 0.02,
        output: DRROutput | str = DRROutput.LINE_INTEGRAL,
        patch_size: Sequence[int] | None = None,
        plane_binning: int = 2,
    ) -> None:
        self.view = look_up_option(view, View)
        if int(plane_binning) != plane_binning or plane_binning < 1:
            raise ValueError(f"`plane_binning` must be a whole number ≥ 1, got {plane_binning!r}.")
        self.plane_binning = int(plane_binning)
        self.output = look_up_option(output, DRROutput)
        if not mu_water_per_mm > 0:
            raise ValueError(f"`mu_water_per_mm` must be positive, got {mu_water_per_mm!r}.")
        self.mu_water_per_mm = float(mu_water_per_mm)
        self.isocentre_mm = None if isocentre_mm is None else tuple(float(x) for x in isocentre_mm)
        # validate the distances and the detector now, whatever the isocentre will be
        self.template = self._preset(self.view)(
            source_to_detector_mm=source_to_detector_mm,
            source_to_isocentre_mm=source_to_isocentre_mm,
            detector_size_px=tuple(detector_size_px),
            detector_spacing_mm=detector_spacing_mm,
        )
        if patch_size is not None and (len(patch_size) != 2 or min(patch_size) <= 0):
            raise ValueError(f"`patch_size` must be two positive numbers (rows, cols), got {patch_size!r}.")
        self.patch_size = None if patch_size is None else tuple(int(s) for s in patch_size)

    @staticmethod
    def _preset(view: View) -> Any:
        return lateral_view if view == View.LATERAL else ap_view

    def geometry_for(self, img: MetaTensor) -> ProjectionGeometry:
        """The view for this volume: the configured one, centred on ``isocentre_mm`` or the grid centre."""
        volume, affine = volume_and_affine(img, type(self).__name__)
        iso = self.isocentre_mm if self.isocentre_mm is not None else tuple(grid_centre_mm(affine, volume.shape).tolist())
        return ProjectionGeometry.from_dict({**self.template.to_dict(), "isocentre_mm": iso})

    def __call__(
        self,
        img: NdarrayOrTensor,
        geometry: ProjectionGeometry | None = None,
        centre_mm: Sequence[float] | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render ``img`` (MetaTensor (1, X, Y, Z), HU).

        Args:
            img: the CT.
            geometry: a view to use instead of the configured one (e.g. with a random pose).
            centre_mm: with ``patch_size``, the world point whose projection the patch is centred on.

        Raises:
            TypeError: ``img`` has no affine.
            ValueError: wrong shape; ``patch_size`` without ``centre_mm``.
        """
        # no convert_to_tensor: with meta tracking off it would strip the affine this transform needs
        volume, affine = volume_and_affine(img, type(self).__name__)
        geometry = geometry if geometry is not None else self.geometry_for(img)
        origin = torch.zeros(2, dtype=torch.float64)
        size = geometry.detector_size_px
        if self.patch_size is not None:
            if centre_mm is None:
                raise ValueError("RenderDRR with `patch_size` needs `centre_mm`, the point the patch is centred on.")
            size = self.patch_size
            origin = patch_origin(geometry.project(torch.as_tensor(centre_mm, dtype=torch.float64)[None])[0], size)
        mu = hu_to_mu(volume.to(torch.float32), self.mu_water_per_mm)
        image = render_drr(mu, affine, geometry, patch_pixels(origin, size), self.output, self.plane_binning)[None]
        out_affine = geometry.detector_affine()
        out_affine[:3, 3] += out_affine[:3, :2] @ origin
        if not get_track_meta():
            return image
        meta = {TransVertKeys.GEOMETRY.value: geometry.to_dict(), TransVertKeys.PATCH_ORIGIN_PX.value: origin.tolist()}
        return derived_meta_tensor(image, out_affine, img, meta)


class RandRenderDRR(RandCArmPose):
    """:class:`RenderDRR` with a random C-arm pose: rotation about each world axis and translation.

    The pose is drawn by :class:`RandCArmPose` (without a view-angle error: one view), then the
    deterministic :class:`RenderDRR` renders with the moved view.

    Args:
        rotation_range_rad: half-range of the rotation about x, y, z (one number or three).
        translation_range_mm: half-range of the translation along x, y, z.
        prob: probability of perturbing the pose.
        kwargs: the arguments of :class:`RenderDRR`.
    """

    backend = RenderDRR.backend

    def __init__(
        self,
        rotation_range_rad: float | Sequence[float] = 0.05,
        translation_range_mm: float | Sequence[float] = 20.0,
        prob: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(rotation_range_rad, translation_range_mm, 0.0, prob)
        self.renderer = RenderDRR(**kwargs)

    def __call__(
        self, img: NdarrayOrTensor, centre_mm: Sequence[float] | torch.Tensor | None = None, randomize: bool = True
    ) -> torch.Tensor:
        """Render ``img`` with a newly drawn (or, with ``randomize=False``, the last) pose."""
        if randomize:
            self.randomize()
        geometry = self.renderer.geometry_for(img).with_pose(self.pose["rotation_rad"], self.pose["translation_mm"])
        out = self.renderer(img, geometry=geometry, centre_mm=centre_mm)
        if isinstance(out, MetaTensor):
            out.meta[TransVertKeys.POSE.value] = dict(self.pose)
        return out
