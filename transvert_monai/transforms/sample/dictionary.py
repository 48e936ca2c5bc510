"""Per-vertebra training samples from a case dictionary: :class:`ExtractVertebraSamplesd` and its random-pose twin.

Both take one case (CT, vertebra mask, centroids, the vertebrae to use) and return a list with one
dictionary per vertebra, which MONAI's ``Compose`` and ``list_data_collate`` treat like the output of
``RandCropByPosNegLabeld``: later transforms see each sample, the loader flattens them into batches.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform

from transvert_monai.errors import ConfigTypeError, TransVertInputError
from transvert_monai.geometry import SamplingGrid, VOIMode, biplanar_views, grid_centre_mm
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms.drr.array import RandCArmPose, derived_meta_tensor, volume_and_affine
from transvert_monai.transforms.drr.functional import AttenuationVolume, hu_to_mu
from transvert_monai.transforms.sample.functional import extract_vertebra_samples

__all__ = ["ExtractVertebraSamplesd", "RandExtractVertebraSamplesd"]

_K = TransVertKeys


class ExtractVertebraSamplesd(MapTransform):
    """Render, for each vertebra of a case, the packed 4-channel input and the 3D target.

    Reads the CT (HU) under ``ct_key``, the label map under ``mask_key`` (VerSe indices, same grid),
    the centroids ``{index: world mm}`` under ``centroids_key`` and, if present, the vertebrae to use
    under ``vertebrae_key`` (default: every vertebra with a centroid). The views are the nominal
    lateral and AP views with the isocentre at ``isocentre_mm`` (default: the CT grid centre);
    :class:`RandExtractVertebraSamplesd` perturbs them.

    Each returned sample holds the case's other items (the volumes and centroids dropped) plus:

    * ``image_key``: (4, P, P) ``[lat, lat_voi, ap, ap_voi]``; as a MetaTensor its affine is the
      lateral patch's detector affine and its meta holds both views (``"lateral_geometry"``,
      ``"ap_geometry"``), the patch origins and the projected centroids.
    * ``label_key``: (1, S, S, S) target in the grid's coding (0/1, or 0 and the VerSe index); as a
      MetaTensor its affine is the vertebra's view-aligned grid.
    * ``TransVertKeys.VERTEBRA`` (int) and ``TransVertKeys.CENTROID`` ((3,) world mm).

    Args:
        keys: unused by the logic beyond MONAI's key checks; pass the CT key.
        ct_key, mask_key, centroids_key, vertebrae_key: input items.
        image_key, label_key: output items.
        sampling_grid: the model's :class:`~transvert_monai.geometry.SamplingGrid` (or its fields as a
            mapping): patch and target sizes, target spacing and coding, VOI annotation, and the
            length one patch pixel spans at the vertebra (patches are scale-true). Default ``SamplingGrid()``.
        detector_size_px: detector (rows, cols) of the nominal views (their pixel is the grid's pixel
            at the isocentre).
        source_to_detector_mm, source_to_isocentre_mm: the cone-beam distances.
        isocentre_mm: world isocentre; default the CT grid centre.
        mu_water_per_mm: attenuation of water (``hu_to_mu``).
        body_mask_key: optional item with a vertebral-body label map for ``"body"``.
        pose_key: optional item with a fixed C-arm pose ``{"rotation_rad", "translation_mm", "view_angle_rad"}``,
            or a list of them (samples for every pose, pose by pose), e.g. drawn once for a validation set
            by :func:`with_fixed_poses`; the random twin ignores it.
        plane_binning: CT planes averaged per ray sample (1: plain Joseph; 2, the default, halves the
            cost with NCC > 0.9999 against exact ray paths; see ``AttenuationVolume``).
        with_target: crop the targets (False at inference on DRRs without ground truth).
        normalize: z-score the image channels (False: raw line integrals for ``RandDRRAppearanced``).
        allow_missing_keys: as MONAI.

    Raises:
        ValueError: a bad sampling grid (unknown VOI mode or coding, bad sizes).
        ConfigTypeError: an attenuation that is not a number (also a ``TypeError``).
        TransVertInputError: a CT with NaN/Inf voxels (when called).
        KeyError: a required item is missing.
    """

    def __init__(
        self,
        keys: Any = _K.CT.value,
        ct_key: str = _K.CT.value,
        mask_key: str = _K.MASK.value,
        centroids_key: str = _K.CENTROIDS.value,
        vertebrae_key: str = _K.VERTEBRAE.value,
        image_key: str = _K.IMAGE.value,
        label_key: str = _K.LABEL.value,
        sampling_grid: SamplingGrid | Mapping[str, Any] | None = None,
        detector_size_px: Sequence[int] = (512, 512),
        source_to_detector_mm: float = 1800.0,
        source_to_isocentre_mm: float = 1500.0,
        isocentre_mm: Sequence[float] | None = None,
        mu_water_per_mm: float = 0.02,
        body_mask_key: str | None = None,
        pose_key: str = _K.POSE.value,
        plane_binning: int = 2,
        with_target: bool = True,
        normalize: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.pose_key = pose_key
        self.ct_key, self.mask_key, self.centroids_key, self.vertebrae_key = ct_key, mask_key, centroids_key, vertebrae_key
        self.image_key, self.label_key, self.body_mask_key = image_key, label_key, body_mask_key
        self.grid = SamplingGrid() if sampling_grid is None else SamplingGrid.from_dict(sampling_grid)
        if isinstance(mu_water_per_mm, bool) or not isinstance(mu_water_per_mm, numbers.Real):
            raise ConfigTypeError(f"`mu_water_per_mm` must be a number, got {mu_water_per_mm!r} ({type(mu_water_per_mm).__name__}).")
        if not mu_water_per_mm > 0:
            raise ValueError(f"`mu_water_per_mm` must be positive, got {mu_water_per_mm!r}.")
        self.mu_water_per_mm, self.with_target, self.normalize = float(mu_water_per_mm), with_target, bool(normalize)
        self.isocentre_mm = isocentre_mm
        if int(plane_binning) != plane_binning or plane_binning < 1:
            raise ValueError(f"`plane_binning` must be a whole number ≥ 1, got {plane_binning!r}.")
        self.plane_binning = int(plane_binning)
        self._prepared: tuple[tuple, AttenuationVolume] | None = None
        self.view_kwargs = {
            "source_to_detector_mm": source_to_detector_mm,
            "source_to_isocentre_mm": source_to_isocentre_mm,
            "detector_size_px": tuple(detector_size_px),
        }
        biplanar_views((0.0, 0.0, 0.0), **self.view_kwargs)  # validate distances and detector now
        # the detector pixel only sets the detector's extent; patches are scale-true (SamplingGrid)
        self.view_kwargs["detector_spacing_mm"] = self.grid.nominal_detector_spacing_mm(
            float(source_to_detector_mm), float(source_to_isocentre_mm)
        )

    def _require(self, d: Mapping, key: str, role: str) -> Any:
        if key not in d:
            raise KeyError(f"key '{key}' ({role}) is not in the data; it holds {sorted(map(str, d))}.")
        return d[key]

    def _attenuation(self, ct: torch.Tensor, affine: torch.Tensor, source: Any = None) -> AttenuationVolume:
        """μ of the CT with its plane stacks, reused while the same, unmodified CT array comes back.

        A cached dataset hands the same CT tensor to every call, so the HU → μ conversion and the plane
        stacks are built once per case instead of once per sample. The key holds the storage address,
        shape, strides and in-place version counter of the array; the world placement (affine) is not
        part of it, since the stacks depend only on the voxels.
        """
        key = (ct.device, ct.data_ptr(), tuple(ct.shape), ct.stride(), ct._version, self.mu_water_per_mm)
        if self._prepared is None or self._prepared[0] != key:
            bad = int((~torch.isfinite(ct)).sum())
            if bad:
                raise TransVertInputError(
                    f"the CT{f' {source}' if source else ''} has {bad} NaN/Inf voxels; repair the CT file (finite HU "
                    "only, air is -1000 HU) and prepare the case again."
                )
            self._prepared = (key, AttenuationVolume(hu_to_mu(ct, self.mu_water_per_mm), affine, self.plane_binning))
        return self._prepared[1].with_affine(affine)

    def extract(
        self, data: Mapping[Hashable, Any], pose: Mapping[str, Any] | None = None, labels: Sequence[int] | None = None
    ) -> list[dict[Hashable, Any]]:
        """The samples of one case with the C-arm pose ``pose`` (rotation_rad, translation_mm, view_angle_rad)."""
        ct, affine = volume_and_affine(self._require(data, self.ct_key, "the CT in HU"), type(self).__name__)
        centroids = self._require(data, self.centroids_key, "the vertebral centroids")
        if not isinstance(centroids, Mapping):
            raise TypeError(
                f"'{self.centroids_key}' must hold {{VerSe index: world mm}}, got {type(centroids).__name__}; "
                "load the centroid file with `transvert_monai.transforms.LoadCentroidsd`."
            )
        centroids = {int(k): torch.as_tensor(v, dtype=torch.float64) for k, v in centroids.items()}
        mask = None
        if self.with_target or self.grid.voi_mode in (VOIMode.BODY, VOIMode.VERTEBRA):
            mask, mask_affine = volume_and_affine(self._require(data, self.mask_key, "the vertebra mask"), type(self).__name__)
            if mask.shape != ct.shape or not torch.allclose(mask_affine, affine, atol=1e-3):
                raise ValueError(
                    f"the mask (shape {tuple(mask.shape)}) and the CT (shape {tuple(ct.shape)}) must share one voxel grid; "
                    "resample the mask onto the CT (e.g. with `ResampleToMatchd`, mode 'nearest')."
                )
        body = None
        if self.body_mask_key is not None and self.body_mask_key in data:
            body = volume_and_affine(data[self.body_mask_key], type(self).__name__)[0]
        labels = [int(v) for v in (labels if labels is not None else data.get(self.vertebrae_key, sorted(centroids)))]
        pose = dict(pose or {})
        iso = self.isocentre_mm if self.isocentre_mm is not None else grid_centre_mm(affine, ct.shape)
        lateral, ap = biplanar_views(
            iso,
            pose.get("rotation_rad", (0.0, 0.0, 0.0)),
            pose.get("translation_mm", (0.0, 0.0, 0.0)),
            pose.get("view_angle_rad", 0.0),
            **self.view_kwargs,
        )
        samples = extract_vertebra_samples(
            self._attenuation(ct, affine, getattr(data[self.ct_key], "meta", {}).get("filename_or_obj")),
            affine,
            centroids,
            lateral,
            ap,
            mask=mask,
            labels=labels,
            grid=self.grid,
            body_mask=body,
            with_target=self.with_target,
            plane_binning=self.plane_binning,
            normalize=self.normalize,
        )
        dropped = {self.ct_key, self.mask_key, self.centroids_key, self.vertebrae_key, self.body_mask_key, self.pose_key}
        shared = {k: v for k, v in data.items() if k not in dropped}
        track = get_track_meta()
        out = []
        for i, label in enumerate(samples.labels):
            item = dict(shared)
            item[_K.VERTEBRA.value] = label
            item[_K.CENTROID.value] = centroids[label].to(torch.float32)
            image = samples.image[i]
            if track:
                image_affine = lateral.detector_affine()
                image_affine[:3, 3] += image_affine[:3, :2] @ samples.patch_origin_px[i, 0]
                image_affine[:3, :2] *= samples.patch_step_px[i, 0]  # scale-true patch pixels
                image = derived_meta_tensor(
                    image,
                    image_affine,
                    data.get(self.ct_key),
                    {
                        _K.LATERAL_GEOMETRY.value: lateral.to_dict(),
                        _K.AP_GEOMETRY.value: ap.to_dict(),
                        _K.PATCH_ORIGIN_PX.value: samples.patch_origin_px[i].tolist(),
                        "patch_step_px": samples.patch_step_px[i].tolist(),
                        _K.CENTROID_PX.value: samples.centroid_px[i].tolist(),
                        _K.POSE.value: dict(pose),
                    },
                )
            item[self.image_key] = image
            if samples.label is not None:
                target = samples.label[i]
                item[self.label_key] = derived_meta_tensor(target, samples.target_affine[i], data.get(self.mask_key)) if track else target
            out.append(item)
        return out

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:  # type: ignore[override]
        poses = data.get(self.pose_key)
        if isinstance(poses, Sequence) and not isinstance(poses, (str, Mapping)):
            return [sample for pose in poses for sample in self.extract(data, pose)]
        return self.extract(data, poses)


class RandExtractVertebraSamplesd(RandCArmPose, ExtractVertebraSamplesd):
    """:class:`ExtractVertebraSamplesd` with a random C-arm pose, one per case and call.

    :meth:`randomize` draws a rotation uniform in ``±rotation_range_rad`` about each world axis
    (about the isocentre), a translation uniform in ``±translation_range_mm``, and a view-angle error
    uniform in ``±view_angle_range_rad`` (the AP view turned about the superior axis); all vertebrae,
    both views and the targets share them. Then the deterministic extraction runs with that pose, so
    a sample is reproducible from its seed.

    Args:
        rotation_range_rad: half-range about x, y, z (one number or three); default 0.05 rad ≈ 3°.
        translation_range_mm: half-range along x, y, z; default 20 mm.
        view_angle_range_rad: default 0.03 rad ≈ 1.7°.
        prob: probability of perturbing the pose.
        max_samples: at most this many vertebrae per call, drawn at random (None: all); bounds the batch.
        kwargs: the arguments of :class:`ExtractVertebraSamplesd`.
    """

    def __init__(
        self,
        rotation_range_rad: float | Sequence[float] = 0.05,
        translation_range_mm: float | Sequence[float] = 20.0,
        view_angle_range_rad: float = 0.03,
        prob: float = 1.0,
        max_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        ExtractVertebraSamplesd.__init__(self, **kwargs)
        if max_samples is not None and (int(max_samples) != max_samples or max_samples <= 0):
            raise ValueError(f"`max_samples` must be a positive whole number or None, got {max_samples!r}.")
        self.max_samples = max_samples
        self.labels: list[int] | None = None
        RandCArmPose.__init__(self, rotation_range_rad, translation_range_mm, view_angle_range_rad, prob)

    def randomize(self, data: Any = None) -> None:
        """Draw the pose of this call and, with ``max_samples``, its vertebrae (``data``: the vertebra list)."""
        RandCArmPose.randomize(self)
        self.labels = None
        if data is not None and self.max_samples is not None and len(data) > self.max_samples:
            self.labels = sorted(int(v) for v in self.R.choice(list(data), self.max_samples, replace=False))

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:  # type: ignore[override]
        centroids = data.get(self.centroids_key)
        self.randomize(data.get(self.vertebrae_key, sorted(centroids) if isinstance(centroids, Mapping) else None))
        return self.extract(data, self.pose, self.labels)
