"""Radiographs at deployment: one lateral or AP image with the distances and pixel spacing of its acquisition.

There is no CT at deployment, so the world is a patient frame in millimetres (RAS) whose origin is
the isocentre of both views, and each view is the nominal preset of
:mod:`transvert_monai.geometry.projection` (``lateral_view`` / ``ap_view``): source-to-detector and
source-to-isocentre distances from the radiograph's metadata, detector pixel spacing and size from
the image resampled to the network's *working spacing* (1.8 mm at the detector by default, 1.5 mm
at the isocentre for magnification 1.2, as in training).

Orientation. A :class:`Radiograph` holds its image the way the geometry expects (see the table in
:mod:`transvert_monai.geometry.projection`): rows run superior → inferior; the lateral's columns run
posterior → anterior (a left-lateral, source on the patient's right, seen from the source: the face
on the right); the AP's columns run from the patient's right to left (the patient's right on the
image's left, as radiographs are read). DICOM files are taken as stored under these assumptions
(a contradicting ``PatientOrientation`` tag is reported); a radiograph displayed the other way round
is read with ``flip_horizontal=True``.

Pixel maps. Resampling keeps the detector centre fixed: pixel ``(r, c)`` of an ``H × W`` image with
spacing ``(s_r, s_c)`` lies ``((r − (H − 1)/2)·s_r, (c − (W − 1)/2)·s_c)`` mm from the centre in
every resolution, so a point keeps its world ray (:meth:`Radiograph.to_working_px`).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from monai.utils import look_up_option

from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import ProjectionGeometry, View, ap_view, lateral_view

__all__ = [
    "DEFAULT_WORKING_SPACING_MM",
    "Radiograph",
    "read_radiograph",
    "resample_area",
    "check_pair",
]

logger = logging.getLogger(__name__)

#: Detector pixel spacing of the network's input (mm): 1.5 mm at the isocentre for magnification 1.2.
DEFAULT_WORKING_SPACING_MM = 1.8
# check_pair: relative differences above which two views are reported.
_HEIGHT_TOLERANCE = 0.2
_DISTANCE_TOLERANCE = 0.01


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number of mm, got {value!r}.")
    return float(value)


def _working_spacing(value: float) -> float:
    return _positive(value, "working_spacing_mm")


@dataclass(frozen=True, eq=False)
class Radiograph:
    """One radiograph in the orientation of the geometry module, with its acquisition distances.

    Args:
        pixels: (H, W) float32 image, rows superior → inferior, bone bright.
        pixel_spacing_mm: (row, col) pixel spacing at the detector.
        view: ``"lateral"`` or ``"ap"``.
        source_to_detector_mm: focal spot to detector distance.
        source_to_patient_mm: focal spot to patient distance, used as the source-to-isocentre distance.
        patient_id: the DICOM PatientID or the side-car's ``patient_id`` (None if unknown).
        source: the file it was read from.
        flipped_horizontal: whether ``pixels`` are the file's image mirrored left–right.
        input_checks: findings about the file that do not stop the job
            (:class:`~transvert_monai.io.plausibility.InputCheck`), carried into ``summary.json``.

    Raises:
        ValueError: a non-2D, empty or non-finite image; bad spacing or distances; an unknown view.

    Example:
        >>> lat = read_radiograph("lat.dcm", "lateral")
        >>> lat.geometry().detector_spacing_mm  # the working spacing
        (1.8, 1.8)
    """

    pixels: torch.Tensor
    pixel_spacing_mm: tuple[float, float]
    view: str
    source_to_detector_mm: float = 1800.0
    source_to_patient_mm: float = 1500.0
    patient_id: str | None = None
    source: str | None = None
    flipped_horizontal: bool = False
    spacing_origin: str = field(default="argument", compare=False)
    input_checks: tuple = field(default=(), compare=False)

    def __post_init__(self) -> None:
        where = f" of {self.source}" if self.source else ""
        pixels = torch.as_tensor(self.pixels)
        if pixels.ndim != 2 or min(pixels.shape) < 1:
            raise ValueError(f"a radiograph must be one 2D image (H, W), got shape {tuple(pixels.shape)}{where}.")
        pixels = pixels.detach().to(torch.float32)
        bad = int((~torch.isfinite(pixels)).sum())
        if bad:
            raise ValueError(
                f"the radiograph{where} has {bad} NaN/Inf pixels; repair or re-export the image (finite values only)."
            )
        raw = self.pixel_spacing_mm
        raw = raw.tolist() if isinstance(raw, (torch.Tensor, np.ndarray)) else raw
        spacing = tuple(raw) if isinstance(raw, Sequence) else (raw,) * 2
        if len(spacing) != 2:
            raise ValueError(f"`pixel_spacing_mm` must be (row, col) mm, got {self.pixel_spacing_mm!r}{where}.")
        spacing = tuple(_positive(float(s), "pixel_spacing_mm") for s in spacing)
        sdd = _positive(self.source_to_detector_mm, "source_to_detector_mm")
        sid = _positive(self.source_to_patient_mm, "source_to_patient_mm")
        if sid >= sdd:
            raise ValueError(
                f"source-to-patient distance ({sid} mm) must be shorter than source-to-detector distance ({sdd} mm){where}: "
                "the patient stands between source and detector; check the DICOM tags (0018,1110)/(0018,1111) or the side-car."
            )
        object.__setattr__(self, "view", look_up_option(self.view, View).value)
        object.__setattr__(self, "pixels", pixels)
        object.__setattr__(self, "pixel_spacing_mm", spacing)
        object.__setattr__(self, "source_to_detector_mm", sdd)
        object.__setattr__(self, "source_to_patient_mm", sid)

    # ------------------------------------------------------------------ sizes
    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def size_mm(self) -> tuple[float, float]:
        """(height, width) of the image at the detector in mm."""
        return self.shape[0] * self.pixel_spacing_mm[0], self.shape[1] * self.pixel_spacing_mm[1]

    def working_size_px(self, working_spacing_mm: float | None = DEFAULT_WORKING_SPACING_MM) -> tuple[int, int]:
        """(H, W) of the image resampled to ``working_spacing_mm`` (the same physical size, rounded)."""
        if working_spacing_mm is None:
            return self.shape
        ws = _working_spacing(working_spacing_mm)
        return tuple(max(1, round(n * s / ws)) for n, s in zip(self.shape, self.pixel_spacing_mm))  # type: ignore[return-value]

    # ------------------------------------------------------------------ geometry
    def geometry(self, working_spacing_mm: float | None = DEFAULT_WORKING_SPACING_MM) -> ProjectionGeometry:
        """The view of this radiograph after resampling to ``working_spacing_mm`` (None: as read).

        The nominal preset of the view, isocentre at the world origin, the radiograph's distances,
        the detector of the resampled image.
        """
        preset = lateral_view if self.view == View.LATERAL.value else ap_view
        spacing = self.pixel_spacing_mm if working_spacing_mm is None else (_working_spacing(working_spacing_mm),) * 2
        return preset(
            isocentre_mm=(0.0, 0.0, 0.0),
            source_to_detector_mm=self.source_to_detector_mm,
            source_to_isocentre_mm=self.source_to_patient_mm,
            detector_size_px=self.working_size_px(working_spacing_mm),
            detector_spacing_mm=spacing,
        )

    def file_to_image_px(self, rc: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """(..., 2) (row, col) in the file's pixels → the same point in ``pixels`` (undoes nothing unless flipped)."""
        rc = torch.as_tensor(rc, dtype=torch.float64).clone()
        if self.flipped_horizontal:
            rc[..., 1] = self.shape[1] - 1 - rc[..., 1]
        return rc

    def to_working_px(
        self, rc: torch.Tensor | Sequence[float], working_spacing_mm: float = DEFAULT_WORKING_SPACING_MM
    ) -> torch.Tensor:
        """(..., 2) (row, col) in ``pixels`` → the same detector point in the image resampled to ``working_spacing_mm``."""
        rc = torch.as_tensor(rc, dtype=torch.float64)
        ws = _working_spacing(working_spacing_mm)
        size = torch.tensor(self.shape, dtype=torch.float64)
        new_size = torch.tensor(self.working_size_px(ws), dtype=torch.float64)
        offset_mm = (rc - (size - 1) / 2) * torch.tensor(self.pixel_spacing_mm, dtype=torch.float64)
        return offset_mm / ws + (new_size - 1) / 2

    def resampled(self, working_spacing_mm: float = DEFAULT_WORKING_SPACING_MM) -> Radiograph:
        """The radiograph resampled to square pixels of ``working_spacing_mm`` (see :func:`resample_area`).

        The result describes its own pixel grid, so its ``flipped_horizontal`` is False.
        """
        ws = _working_spacing(working_spacing_mm)
        size = self.working_size_px(ws)
        pixels = resample_area(self.pixels, self.pixel_spacing_mm, (ws, ws), size)
        return replace(self, pixels=pixels, pixel_spacing_mm=(ws, ws), flipped_horizontal=False)


def _box_average_axis0(x: torch.Tensor, spacing_in: float, spacing_out: float, size_out: int) -> torch.Tensor:
    """Area average along axis 0 of ``x`` (N, M), centres aligned; float64."""
    n = x.shape[0]
    # cumulative integral at the input pixel edges (in pixel units): C[k] = Σ_{j<k} x_j
    cum = torch.cat((x.new_zeros(1, x.shape[1]), torch.cumsum(x, dim=0)))
    # output pixel edges in input edge coordinates (edge 0 at the first pixel's outer border)
    edges = (torch.arange(size_out + 1, dtype=torch.float64) - size_out / 2) * (spacing_out / spacing_in) + n / 2
    edges = edges.clamp(0, n)
    base = torch.floor(edges).long().clamp(max=n - 1)
    frac = (edges - base).unsqueeze(1)
    # the integral is piecewise linear between input edges
    integral = cum[base] + frac * x[base]
    width = (edges[1:] - edges[:-1]).unsqueeze(1)
    out = (integral[1:] - integral[:-1]) / width.clamp_min(1e-12)
    return torch.where(width > 0, out, torch.zeros_like(out))


def resample_area(
    pixels: torch.Tensor,
    spacing_mm: Sequence[float],
    new_spacing_mm: Sequence[float],
    new_size: Sequence[int],
) -> torch.Tensor:
    """Area-average (box filter) resampling of a 2D image with the image centre kept fixed.

    Each output pixel is the mean of the input over the output pixel's footprint, weighted by the
    overlap lengths (exact for a piecewise-constant image; a plain mean when downsampling by an
    integer factor, piecewise constant when upsampling). Footprints reaching past the image are
    averaged over the covered part only, so borders do not darken.

    Args:
        pixels: (H, W) image.
        spacing_mm: input (row, col) spacing.
        new_spacing_mm: output (row, col) spacing.
        new_size: output (H', W').

    Returns:
        (H', W') float32 tensor.
    """
    x = torch.as_tensor(pixels).to(torch.float64)
    x = _box_average_axis0(x, float(spacing_mm[0]), float(new_spacing_mm[0]), int(new_size[0]))
    x = _box_average_axis0(x.T.contiguous(), float(spacing_mm[1]), float(new_spacing_mm[1]), int(new_size[1])).T
    return x.to(torch.float32).contiguous()


def read_radiograph(
    path: str | os.PathLike,
    view: str,
    sidecar: str | os.PathLike | None = None,
    pixel_spacing_mm: float | Sequence[float] | None = None,
    source_to_detector_mm: float | None = None,
    source_to_patient_mm: float | None = None,
    flip_horizontal: bool = False,
) -> Radiograph:
    """Read a lateral or AP radiograph from DICOM, PNG/TIFF or 2D NIfTI.

    Geometry, by precedence: the arguments, then the JSON side-car, then (DICOM) the tags
    ImagerPixelSpacing (0018,1164) — else PixelSpacing (0028,0030) —, DistanceSourceToDetector
    (0018,1110) and DistanceSourceToPatient (0018,1111), then the defaults 1800 / 1500 mm (logged as
    warnings). The pixel spacing has no default. The side-car (see :mod:`transvert_monai.io.formats`)
    is ``{"pixel_spacing_mm": [r, c], "source_to_detector_mm": .., "source_to_patient_mm": ..}``;
    for PNG/TIFF/NIfTI it defaults to the image's name with ``.json`` (used when it exists), for
    DICOM it is read only when given.

    DistanceSourceToPatient is used as the source-to-isocentre distance, the point where the two
    views' central rays cross. DICOM measures it to the patient support or the nearest patient
    surface; if the central rays of your system cross elsewhere, give ``source_to_patient_mm``: the
    triangulated positions depend on where the two sources are relative to each other.

    Orientation: DICOM images are taken as stored (see the module docstring); a PatientOrientation
    (0020,0020) that contradicts the view's expected orientation (lateral columns towards A, AP
    columns towards L, rows towards F) is logged with the ``flip_horizontal`` to use.

    Intensities: DICOM RescaleSlope/Intercept applied, MONOCHROME1 inverted so that bone is bright.
    NIfTI array axis 0 is the image row (as ``transvert-drr`` writes DRRs).

    Args:
        path: the image file.
        view: ``"lateral"`` or ``"ap"``.
        sidecar: JSON side-car with the geometry.
        pixel_spacing_mm: detector pixel spacing, one number or (row, col).
        source_to_detector_mm: source-to-detector distance.
        source_to_patient_mm: source-to-patient distance (used as source-to-isocentre).
        flip_horizontal: mirror the image left–right (see the module docstring for the expected orientation).

    Returns:
        :class:`Radiograph`.

    Raises:
        FileNotFoundError: no such file (or side-car).
        UnreadableFileError: a corrupt, truncated or unrecognised file (or side-car).
        TransVertInputError: a DICOM of a non-radiographic modality, a 3D or colour image, NaN/Inf
            pixels, no pixel spacing, inconsistent distances.
        ValueError: an unknown view.
    """
    from transvert_monai.io.formats import read_image_file

    view = look_up_option(view, View).value
    path = Path(path)
    overrides = {
        "pixel_spacing_mm": pixel_spacing_mm,
        "source_to_detector_mm": source_to_detector_mm,
        "source_to_patient_mm": source_to_patient_mm,
    }
    image = read_image_file(path, view, None if sidecar is None else Path(sidecar), overrides, bool(flip_horizontal))
    pixels = image.pixels.flip(-1) if flip_horizontal else image.pixels
    try:
        radiograph = Radiograph(
            pixels=pixels,
            pixel_spacing_mm=image.pixel_spacing_mm,
            view=view,
            source_to_detector_mm=image.source_to_detector_mm,
            source_to_patient_mm=image.source_to_patient_mm,
            patient_id=image.patient_id,
            source=str(path),
            flipped_horizontal=bool(flip_horizontal),
            spacing_origin=image.spacing_origin,
        )
    except ValueError as err:
        message = str(err)
        raise TransVertInputError(message if str(path) in message else f"{path}: {message}") from None
    radiograph = replace(radiograph, input_checks=tuple(_plausibility_checks(radiograph, image.declared_view)))
    logger.info(
        "read %s radiograph %s: %d×%d px of %.4g×%.4g mm (%s), SDD %.1f mm, SID %.1f mm%s",
        view,
        path,
        *radiograph.shape,
        *radiograph.pixel_spacing_mm,
        image.spacing_origin,
        radiograph.source_to_detector_mm,
        radiograph.source_to_patient_mm,
        ", flipped left–right" if flip_horizontal else "",
    )
    return radiograph


def _plausibility_checks(radiograph: Radiograph, declared_view: str | None) -> list:
    """Refuse implausible geometry or content (:mod:`transvert_monai.io.plausibility`); return the findings."""
    from transvert_monai.io.plausibility import InputCheck, check_distances, check_radiograph_content, check_spacing

    where = f"{radiograph.view} radiograph {radiograph.source}"
    check_spacing(radiograph.pixel_spacing_mm, where)
    check_distances(radiograph.source_to_detector_mm, radiograph.source_to_patient_mm, where)
    checks = check_radiograph_content(radiograph.pixels, radiograph.pixel_spacing_mm, where)
    if declared_view is None:
        checks.append(
            InputCheck(
                "view_not_declared",
                f"{where}: the file does not say which view it is (no DICOM ViewPosition or side-car \"view\"), so a "
                "swapped lateral/AP pair cannot be detected; check the overlays.",
                subject=radiograph.view,
            )
        )
    return checks


def check_pair(lateral: Radiograph, ap: Radiograph) -> None:
    """Check that two radiographs can be used together as the lateral and AP views of one patient.

    Raises:
        TransVertInputError: the views are not (lateral, AP), or both carry a PatientID and they differ.

    Warns:
        UserWarning: image heights in mm differing by more than 20 %, or source distances by more than 1 %.
    """
    if lateral.view != View.LATERAL.value or ap.view != View.AP.value:
        raise TransVertInputError(
            f"expected a lateral and an AP radiograph, got {lateral.view!r} and {ap.view!r}; "
            "check the order of the files and the `view` given to read_radiograph."
        )
    if lateral.patient_id and ap.patient_id and lateral.patient_id.strip() != ap.patient_id.strip():
        raise TransVertInputError(
            f"the radiographs belong to different patients: PatientID {lateral.patient_id!r} ({lateral.source}) "
            f"and {ap.patient_id!r} ({ap.source}); use the lateral and AP views of one acquisition."
        )
    h_lat, h_ap = lateral.size_mm[0], ap.size_mm[0]
    if abs(h_lat - h_ap) > _HEIGHT_TOLERANCE * max(h_lat, h_ap):
        warnings.warn(
            f"the lateral and AP images cover very different heights ({h_lat:.0f} mm and {h_ap:.0f} mm at the detector); "
            "check the pixel spacing of both (ImagerPixelSpacing or the side-car).",
            stacklevel=2,
        )
    for name in ("source_to_detector_mm", "source_to_patient_mm"):
        a, b = getattr(lateral, name), getattr(ap, name)
        if abs(a - b) > _DISTANCE_TOLERANCE * max(a, b):
            warnings.warn(
                f"the views have different `{name}` ({a:.1f} mm lateral, {b:.1f} mm AP); both are used as given, "
                "check the DICOM tags or the side-cars if the acquisitions should match.",
                stacklevel=2,
            )
