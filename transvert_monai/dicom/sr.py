"""The reconstruction's per-vertebra numbers as a Comprehensive 3D SR measurement report (TID 1500).

One TID 1411 volumetric measurement group per vertebra (highdicom
:class:`~highdicom.sr.VolumetricROIMeasurementsAndQualitativeEvaluations`):

* tracking identifier: the vertebra's name (``"T1"``) and a new UID;
* finding type SCT 51282000 "Vertebra"; finding site the vertebra's SNOMED CT code (C1–L5), or a
  code of the private scheme ``99TRANSVERT`` for the VerSe levels SNOMED lacks here (T13, L6);
* the region: a volume surface of graphic type POINT at the vertebra's 3D centre, geometric purpose
  DCM 111010 "Center", in DICOM patient coordinates (LPS mm = RAS with x and y negated) of the
  reconstruction's own Frame of Reference, referencing the lateral and AP source images;
* measurements: SCT 118565006 "Volume" in UCUM ``ml``; ``99TRANSVERT residual`` "Triangulation
  residual" in UCUM ``mm``;
* qualitative evaluations: ``99TRANSVERT quality`` = ``ok`` ("No quality check failed") or ``check``
  ("Quality check failed"), and one ``99TRANSVERT failedcheck`` per failed check whose value's code
  is the check's name in ``summary.json`` (e.g. ``large_residual``);
* algorithm identification: the model name and version, parameters ``weights_sha256=…``,
  ``software_version=…``, ``placement=…``.

The observer is a device (DeviceObserverIdentifyingAttributes: name, manufacturer, model name and
version, serial number = the first 16 hex digits of the weights' SHA-256).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["PRIVATE_SCHEME", "measurement_report_sr", "read_vertebra_measurements"]

#: Coding scheme designator of the codes TransVert defines itself (private: starts with "99").
PRIVATE_SCHEME = "99TRANSVERT"
_PRIVATE_SCHEME_NAME = "TransVert reconstruction codes"


def _private(value: str, meaning: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value, PRIVATE_SCHEME, meaning)


def _codes() -> dict[str, Any]:
    from highdicom.sr import CodedConcept

    return {
        "residual": _private("residual", "Triangulation residual"),
        "quality": _private("quality", "Reconstruction quality"),
        "ok": _private("ok", "No quality check failed"),
        "check": _private("check", "Quality check failed"),
        "failed": _private("failedcheck", "Failed quality check"),
        "ml": CodedConcept("ml", "UCUM", "milliliter"),
        "mm": CodedConcept("mm", "UCUM", "millimeter"),
    }


def _vertebra_site(name: str) -> Any:
    from pydicom.sr.codedict import codes

    try:
        return getattr(codes.SCT, f"{name}Vertebra")
    except AttributeError:  # T13, L6: no SNOMED CT concept in pydicom's dictionary
        return _private(name, f"{name} vertebra")


def ras_to_lps(points_mm: Any) -> np.ndarray:
    """(..., 3) RAS millimetres → DICOM patient (LPS) millimetres: x and y negated (its own inverse)."""
    out = np.array(points_mm, dtype=np.float64)
    out[..., :2] *= -1
    return out


def provenance_fields(provenance: Mapping[str, Any] | None) -> dict[str, str]:
    from transvert_monai import __version__

    p = {str(k): str(v) for k, v in (provenance or {}).items() if v is not None}
    p.setdefault("model_name", "TransVert")
    p.setdefault("model_version", "unknown")
    p.setdefault("software_version", f"transvert_monai {__version__}")
    return p


def measurement_report_sr(
    rows: Sequence[Mapping[str, Any]],
    sources: Sequence[Any],
    *,
    frame_of_reference_uid: str,
    series_uid: str,
    series_number: int,
    sop_uid: str,
    manufacturer: str,
    provenance: Mapping[str, Any] | None = None,
    placement: str | None = None,
) -> Any:
    """A Comprehensive 3D SR of the vertebrae in ``rows`` (``summary.json``'s ``vertebrae``).

    Args:
        rows: per vertebra ``name``, ``centre_mm`` (RAS), ``residual_mm``, ``volume_ml``, ``quality``,
            ``quality_checks``.
        sources: the lateral and AP source datasets (headers are enough); the evidence.
        frame_of_reference_uid: the reconstruction's Frame of Reference.
        series_uid, series_number, sop_uid: the SR's identifiers.
        manufacturer: Manufacturer of the SR.
        provenance: ``model_name``, ``model_version``, ``weights_sha256``, ``software_version``, and any
            other key (written as an algorithm parameter ``key=value``).
        placement: the summary's placement rule (an algorithm parameter).

    Returns:
        :class:`highdicom.sr.Comprehensive3DSR`.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    c = _codes()
    p = provenance_fields(provenance)
    sha = p.get("weights_sha256", "")
    parameters = [f"{k}={v}" for k, v in p.items() if k not in ("model_name", "model_version")]
    if placement:
        parameters.append(f"placement={placement}")
    algorithm = hd.sr.AlgorithmIdentification(
        name=p["model_name"][:64], version=p["model_version"][:64], parameters=parameters
    )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=[p["model_name"], p["model_version"], sha]),
        name=p["model_name"][:64],
        manufacturer_name=manufacturer,
        model_name=f"{p['model_name']} {p['model_version']}"[:64],
        serial_number=sha[:16] or None,
    )
    observation = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    source_images = [hd.sr.SourceImageForSegmentation.from_source_image(ds) for ds in sources]
    groups = []
    for row in rows:
        name = str(row["name"])
        centre = ras_to_lps(np.asarray(row["centre_mm"], dtype=np.float64).reshape(1, 3))
        checks = [str(v) for v in row.get("quality_checks") or []]
        ok = not checks and str(row.get("quality", "ok")) == "ok"
        evaluations = [hd.sr.QualitativeEvaluation(c["quality"], c["ok"] if ok else c["check"])]
        evaluations += [hd.sr.QualitativeEvaluation(c["failed"], _private(v, v.replace("_", " ")[:64])) for v in checks]
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=name),
                referenced_volume_surface=hd.sr.VolumeSurface(
                    graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                    graphic_data=centre,
                    frame_of_reference_uid=frame_of_reference_uid,
                    source_images=source_images,
                ),
                finding_type=codes.SCT.Vertebra,
                finding_sites=[hd.sr.FindingSite(_vertebra_site(name))],
                geometric_purpose=codes.DCM.Center,
                algorithm_id=algorithm,
                measurements=[
                    hd.sr.Measurement(name=codes.SCT.Volume, value=float(row["volume_ml"]), unit=c["ml"]),
                    hd.sr.Measurement(name=c["residual"], value=float(row["residual_mm"]), unit=c["mm"]),
                ],
                qualitative_evaluations=evaluations,
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=observation,
        procedure_reported=codes.SCT.PlainRadiography,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    scheme = hd.coding_schemes.CodingSchemeIdentificationItem(
        designator=PRIVATE_SCHEME, name=_PRIVATE_SCHEME_NAME, responsible_organization="transvert_monai"
    )
    now = datetime.datetime.now()
    return hd.sr.Comprehensive3DSR(
        evidence=list(sources),
        content=report,
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=manufacturer,
        is_complete=True,
        series_description="TransVert 3D spine measurements",
        manufacturer_model_name=f"{p['model_name']} {p['model_version']}"[:64],
        software_versions=p["software_version"][:64],
        device_serial_number=sha[:16] or None,
        coding_schemes=[scheme],
        content_date=now.date(),
        content_time=now.time(),
    )


def read_vertebra_measurements(path: Any) -> list[dict[str, Any]]:
    """Read back the vertebrae of an SR written by :func:`measurement_report_sr`.

    Returns:
        one dict per measurement group, in file order: ``name``, ``tracking_uid``, ``centre_lps_mm``,
        ``centre_mm`` (RAS), ``frame_of_reference_uid``, ``volume_ml``, ``residual_mm``, ``quality``
        (``"ok"`` or ``"check"``), ``quality_checks`` (the failed checks' names), ``finding_site``
        (the code meaning), ``source_sop_uids``.

    Raises:
        ValueError: not a TID 1500 measurement report (highdicom's message).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    c = _codes()
    sr = hd.sr.srread(str(path))
    out = []
    for group in sr.content.get_volumetric_roi_measurement_groups():
        surface = group.roi
        lps = np.asarray(surface.graphic_data[0], dtype=np.float64).reshape(-1, 3)[0]
        volume = group.get_measurements(name=codes.SCT.Volume)
        residual = group.get_measurements(name=c["residual"])
        quality = group.get_qualitative_evaluations(name=c["quality"])
        failed = group.get_qualitative_evaluations(name=c["failed"])
        sources = [str(item.referenced_sop_instance_uid) for item in surface.source_images_for_segmentation]
        out.append(
            {
                "name": str(group.tracking_identifier),
                "tracking_uid": str(group.tracking_uid),
                "centre_lps_mm": [float(v) for v in lps],
                "centre_mm": [float(v) for v in ras_to_lps(lps)],
                "frame_of_reference_uid": str(surface.frame_of_reference_uid),
                "volume_ml": float(volume[0].value) if volume else None,
                "residual_mm": float(residual[0].value) if residual else None,
                "quality": str(quality[0].value.value) if quality else None,
                "quality_checks": [str(e.value.value) for e in failed],
                "finding_site": str(group.finding_sites[0].value.meaning) if group.finding_sites else None,
                "source_sop_uids": sources,
            }
        )
    return out
