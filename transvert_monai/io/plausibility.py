"""Plausible values of everything TransVert reads, in one place, and the checks that use them.

Well-formed input can still be physically wrong: distances written in centimetres, a 1 × 1 image,
the views swapped, a CT with voxels of a kilometre. Each check below either refuses the input with
the reason (:class:`~transvert_monai.errors.TransVertInputError`) or returns a named
:class:`InputCheck` that the reconstruction carries into ``summary.json`` (``input_checks``) and
the log. The ranges, with where they come from:

==============================  ===============  ====================================================================
quantity                        plausible        source / reasoning
==============================  ===============  ====================================================================
source-to-detector distance     500–5000 mm      radiography uses 1000–1830 mm (table and chest/long-cassette work,
                                                 ACR–SPR–SSR practice parameter for scoliosis radiography: 72 in),
                                                 up to ~3000 mm for teleradiography; C-arms 900–1200 mm. Values in
                                                 centimetres (150–300) fall below and are refused with that hint.
source-to-patient distance      300–4800 mm      as above, and shorter than the source-to-detector distance
magnification SDD / SID         1.02–2.0         the patient stands between source and detector, nearer the
                                                 detector: 1.05–1.4 in practice; 2 means the patient at mid-gap
detector pixel spacing          0.04–2.0 mm      flat panels and CR plates 0.1–0.2 mm (mammography 0.05), exports
                                                 downsampled up to ~1 mm; 2 mm leaves ~20 pixels per vertebra
radiograph size                 ≥ 64 px and      a vertebra spans ~20–50 mm; a smaller image cannot hold a spine
                                ≥ 60 mm a side
vertebra-to-vertebra distance   8–65 mm per      adult centroid spacing: cervical ~15–18 mm, thoracic 20–30 mm,
(cranio-caudal, at the patient) level            lumbar 35–45 mm (Panjabi et al., Spine 1991/1992 vertebral
                                                 dimension series); outside → flag ``implausible_centroid_spacing``
CT voxel spacing                0.05–20 mm       clinical CT 0.3–5 mm slices; micro-CT 0.05 mm
CT values                       finite           NaN/Inf voxels are refused (air is −1000 HU)
isocentre to CT                 ≤ 500 mm         the isocentre must lie within 500 mm of the CT's box, or the DRR
                                                 misses the CT
==============================  ===============  ====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import torch

from transvert_monai.errors import TransVertInputError

__all__ = [
    "PLAUSIBLE",
    "InputCheck",
    "PlausibleRange",
    "check_centroid_layout",
    "check_ct_geometry",
    "check_distances",
    "check_radiograph_content",
    "check_spacing",
]


@dataclass(frozen=True)
class PlausibleRange:
    """A closed range ``[low, high]`` of a physical quantity with its unit and the reason for it."""

    low: float
    high: float
    unit: str
    source: str

    def __contains__(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high

    def text(self) -> str:
        """``500–5000 mm``."""
        return f"{self.low:g}–{self.high:g} {self.unit}".strip()


#: The plausible ranges (see the module docstring for their sources).
PLAUSIBLE: dict[str, PlausibleRange] = {
    "source_to_detector_mm": PlausibleRange(500.0, 5000.0, "mm", "radiography 1000–1830 mm, C-arms 900–1200 mm"),
    "source_to_patient_mm": PlausibleRange(300.0, 4800.0, "mm", "shorter than the source-to-detector distance"),
    "magnification": PlausibleRange(1.02, 2.0, "", "patient nearer the detector than the source: 1.05–1.4"),
    "pixel_spacing_mm": PlausibleRange(0.04, 2.0, "mm", "flat panels / CR 0.1–0.2 mm, exports up to ~1 mm"),
    "image_side_px": PlausibleRange(64, 1e6, "px", "a spine needs more than a few dozen pixels"),
    "image_side_mm": PlausibleRange(60.0, 5000.0, "mm", "a vertebra spans 20–50 mm"),
    "level_spacing_mm": PlausibleRange(8.0, 65.0, "mm", "adult centroid spacing 15 (cervical) to 45 (lumbar) mm"),
    "ct_spacing_mm": PlausibleRange(0.05, 20.0, "mm", "clinical CT 0.3–5 mm, micro-CT 0.05 mm"),
    "isocentre_to_ct_mm": PlausibleRange(0.0, 500.0, "mm", "the DRR must see the CT"),
}


#: Share of pixels at the brightest value above which a radiograph is flagged as clipped (``saturated_image``).
SATURATED_SHARE = 0.1


@dataclass(frozen=True)
class InputCheck:
    """A named finding about the input that does not stop the job: it goes to ``summary.json`` and the log.

    Attributes:
        name: a stable identifier (``"implausible_centroid_spacing"``).
        message: the sentence for people, naming the values.
        subject: what it is about (a view, a vertebra name), or ``""``.
    """

    name: str
    message: str
    subject: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"name": self.name, "subject": self.subject, "message": self.message}


def check_distances(source_to_detector_mm: float, source_to_patient_mm: float, where: str) -> None:
    """Refuse source distances outside :data:`PLAUSIBLE` (with a centimetre hint) or a magnification outside its range."""
    for name, value in (("source_to_detector_mm", source_to_detector_mm), ("source_to_patient_mm", source_to_patient_mm)):
        plausible = PLAUSIBLE[name]
        if value not in plausible:
            hint = (
                f"; {value:g} looks like centimetres ({value * 10:g} mm?)"
                if value * 10 in plausible
                else "; is the unit millimetres?" if value > plausible.high else ""
            )
            raise TransVertInputError(
                f"{where}: `{name}` = {value:g} mm is outside the plausible {plausible.text()} "
                f"({plausible.source}){hint}. Give the distance in millimetres (DICOM tags (0018,1110)/(0018,1111) "
                "or the side-car)."
            )
    if source_to_patient_mm >= source_to_detector_mm:
        raise TransVertInputError(
            f"{where}: the source-to-patient distance ({source_to_patient_mm:g} mm) must be shorter than the "
            f"source-to-detector distance ({source_to_detector_mm:g} mm): the patient stands between source and detector."
        )
    magnification = source_to_detector_mm / source_to_patient_mm
    if magnification not in PLAUSIBLE["magnification"]:
        raise TransVertInputError(
            f"{where}: the magnification source-to-detector / source-to-patient = {source_to_detector_mm:g} / "
            f"{source_to_patient_mm:g} = {magnification:.3f} is outside the plausible {PLAUSIBLE['magnification'].text()} "
            "(the patient stands between source and detector, nearer the detector); check both distances."
        )


def check_spacing(pixel_spacing_mm: Sequence[float], where: str) -> None:
    """Refuse a detector pixel spacing outside :data:`PLAUSIBLE`."""
    plausible = PLAUSIBLE["pixel_spacing_mm"]
    for value in pixel_spacing_mm:
        if float(value) not in plausible:
            hint = "; is it in centimetres or inches?" if float(value) < plausible.low else "; is it in micrometres?" if float(value) > 10 else ""
            raise TransVertInputError(
                f"{where}: a pixel spacing of {float(value):g} mm is outside the plausible {plausible.text()} "
                f"({plausible.source}){hint}. Give the detector pixel size in mm (ImagerPixelSpacing or the side-car)."
            )


def check_radiograph_content(pixels: torch.Tensor, pixel_spacing_mm: Sequence[float], where: str) -> list[InputCheck]:
    """Refuse an image too small to hold a spine or without contrast; flag a saturated one.

    Returns:
        ``saturated_image`` when more than :data:`SATURATED_SHARE` of the pixels sit at the brightest (most
        attenuating) value: bone clipped by windowing. The darkest value is not tested: direct exposure
        around the body legitimately fills a third of a radiograph.
    """
    h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
    side_px, side_mm = PLAUSIBLE["image_side_px"], PLAUSIBLE["image_side_mm"]
    if min(h, w) < side_px.low:
        raise TransVertInputError(
            f"{where}: a {h}×{w}-pixel image is too small to be a radiograph of the spine (at least "
            f"{side_px.low:g} pixels a side); check that the right file was given."
        )
    height_mm, width_mm = h * float(pixel_spacing_mm[0]), w * float(pixel_spacing_mm[1])
    if min(height_mm, width_mm) < side_mm.low:
        raise TransVertInputError(
            f"{where}: the image covers {height_mm:.0f} × {width_mm:.0f} mm at the detector, too small for a spine "
            f"radiograph (at least {side_mm.low:g} mm a side); check the pixel spacing."
        )
    values = pixels.to(torch.float32)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-6 * max(1.0, abs(high)):
        raise TransVertInputError(
            f"{where}: every pixel has the value {low:g}; the image has no contrast and cannot be a radiograph "
            "(a blank export or a failed conversion?)."
        )
    checks = []
    share = float((values == high).float().mean())
    if share > SATURATED_SHARE:
        checks.append(
            InputCheck(
                "saturated_image",
                f"{where}: {share:.0%} of the pixels sit at the brightest value {high:g} (clipped: a windowed or "
                "over-compressed export?); bone there has lost its contrast. Use the unwindowed original if you can.",
            )
        )
    return checks


def check_centroid_layout(
    rows_mm: Mapping[str, Mapping[int, float]], names: Mapping[int, str], where: str
) -> list[InputCheck]:
    """Check the cranio-caudal order and spacing of the vertebrae in each view.

    Args:
        rows_mm: per view, {VerSe index: the centroid's cranio-caudal position in mm at the patient (detector
            row offset / magnification), increasing towards the feet}.
        names: {VerSe index: name} for messages.
        where: the centroid file, for messages.

    Returns:
        ``implausible_centroid_spacing`` for each pair of neighbours farther apart or closer per level than
        :data:`PLAUSIBLE` ``level_spacing_mm``.

    Raises:
        TransVertInputError: a vertebra above (or level with) the one cranial to it in a view: swapped labels,
            or an image upside down.
    """
    from transvert_monai.data.labels import level_order

    checks: list[InputCheck] = []
    plausible = PLAUSIBLE["level_spacing_mm"]
    for view, rows in rows_mm.items():
        labels = sorted(rows, key=level_order)
        for upper, lower in zip(labels, labels[1:]):
            gap = rows[lower] - rows[upper]
            if gap <= 0:
                raise TransVertInputError(
                    f"{where}: in the {view} view {names[lower]} lies {-gap:.1f} mm above {names[upper]}, but vertebrae "
                    "run from the head (row 0) down; check the labels of the two, or whether the image is upside down."
                )
            levels = max(1.0, level_order(lower) - level_order(upper))
            per_level = gap / levels
            if per_level not in plausible:
                checks.append(
                    InputCheck(
                        "implausible_centroid_spacing",
                        f"{where}: in the {view} view {names[upper]} and {names[lower]} are {gap:.1f} mm apart at the "
                        f"patient ({per_level:.1f} mm per level; plausible {plausible.text()}): a wrong label, a missing "
                        "level, or a wrong pixel spacing or source distance.",
                        subject=names[lower],
                    )
                )
    return checks


def check_ct_geometry(spacing_mm: Sequence[float], where: str) -> None:
    """Refuse a CT voxel spacing outside :data:`PLAUSIBLE` ``ct_spacing_mm``."""
    plausible = PLAUSIBLE["ct_spacing_mm"]
    bad = [float(s) for s in spacing_mm if float(s) not in plausible]
    if bad:
        raise TransVertInputError(
            f"{where}: voxel spacing {tuple(round(float(s), 6) for s in spacing_mm)} mm is outside the plausible "
            f"{plausible.text()} per axis ({plausible.source}); check the header's units (NIfTI xyzt_units) and pixdim."
        )

