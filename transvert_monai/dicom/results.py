"""The reconstruction as DICOM objects in the source study: SR measurements, STL meshes, SC overlays.

:func:`write_dicom_results` reads what the reconstruction wrote into its output folder
(``summary.json``, ``meshes/<name>.stl``, ``overlay_lateral.png``, ``overlay_ap.png``) and writes
into ``<output_folder>/dicom/``:

==================================  ===========================================================
file                                object
==================================  ===========================================================
``sr_measurements.dcm``             Comprehensive 3D SR, TID 1500: one group per vertebra (centre,
                                    volume, residual, quality), see :mod:`~transvert_monai.dicom.sr`
``stl_spine.dcm``, ``stl_<V>.dcm``  Encapsulated STL of the spine and each vertebra (LPS mm), see
                                    :mod:`~transvert_monai.dicom.stl`
``sc_overlay_lateral.dcm``,         Secondary Capture (RGB) of each overlay, see
``sc_overlay_ap.dcm``               :mod:`~transvert_monai.dicom.sc`
==================================  ===========================================================

Every object belongs to the source study (its StudyInstanceUID and patient attributes) and
references the two source radiographs by SOP Instance UID. Each kind is one new series (SR, STL,
SC, numbered ``series_number``, +1, +2). The SR and the meshes share one new Frame of Reference,
the reconstruction's patient frame (LPS mm; its origin is the isocentre of the two views, not a
point of the radiographs' own frame). Provenance (model name and version, weights SHA-256,
software version) goes into the SR's algorithm identification and device observer, and into every
object's ManufacturerModelName / SoftwareVersions (and the SR's and STL's DeviceSerialNumber: the
first 16 hex digits of the weights' SHA-256).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transvert_monai.dicom.sr import read_vertebra_measurements, ras_to_lps
from transvert_monai.dicom.stl import ENCAPSULATED_STL_SOP_CLASS
from transvert_monai.errors import TransVertInputError

__all__ = [
    "ENCAPSULATED_STL_SOP_CLASS",
    "provenance_from_summary",
    "ras_to_lps",
    "read_vertebra_measurements",
    "write_dicom_results",
]

logger = logging.getLogger(__name__)

_MESH_SUFFIXES = (".stl", ".ply", ".obj")


def _source_headers(study: Any) -> tuple[Any, Any]:
    """(lateral, AP) datasets from a Study or a pair of datasets / paths."""
    import pydicom
    from pydicom.dataset import Dataset

    from transvert_monai.dicom.study import Study

    if isinstance(study, Study):
        pair: Sequence[Any] = (study.lateral.path, study.ap.path)
    elif isinstance(study, Sequence) and not isinstance(study, (str, bytes)) and len(study) == 2:
        pair = study
    else:
        raise TypeError(
            "`study` must be a transvert_monai.dicom.Study or a (lateral, AP) pair of datasets or paths, "
            f"got {type(study).__name__}."
        )
    out = []
    for item in pair:
        out.append(item if isinstance(item, Dataset) else pydicom.dcmread(str(item), stop_before_pixels=True))
    lateral, ap = out
    for ds in out:
        for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"):
            if not ds.get(keyword):
                raise TransVertInputError(
                    f"a source dataset has no {keyword}; pass the lateral and AP DICOM radiographs."
                )
    if lateral.StudyInstanceUID != ap.StudyInstanceUID:
        raise TransVertInputError(
            f"the lateral and AP sources belong to different studies ({lateral.StudyInstanceUID} and "
            f"{ap.StudyInstanceUID}); "
            "the results are written into one study."
        )
    return lateral, ap


def _mesh_files(meshes_dir: Path, names: Sequence[str]) -> list[tuple[str, Path]]:
    out = []
    for name in ["spine", *names]:
        found = next((meshes_dir / f"{name}{s}" for s in _MESH_SUFFIXES if (meshes_dir / f"{name}{s}").is_file()), None)
        if found is None:
            logger.warning("no mesh for %s in %s; no STL object written for it.", name, meshes_dir)
        else:
            out.append((name, found))
    return out


def provenance_from_summary(summary: Mapping[str, Any]) -> dict[str, str]:
    """The flat provenance of :func:`write_dicom_results` from ``summary.json``'s ``provenance`` block.

    ``transvert-reconstruct`` writes ``{"software": {"name", "version", ...}, "model": {"name", "version",
    "weights_sha256", ...}, ...}``; missing parts are left out (their defaults apply).
    """
    block = summary.get("provenance") or {}
    model = block.get("model") or {} if isinstance(block, Mapping) else {}
    software = block.get("software") or {} if isinstance(block, Mapping) else {}
    out = {
        "model_name": model.get("name"),
        "model_version": model.get("version"),
        "weights_sha256": model.get("weights_sha256"),
        "software_version": " ".join(str(software[k]) for k in ("name", "version") if software.get(k)) or None,
    }
    return {k: str(v) for k, v in out.items() if v}


def _save(ds: Any, path: Path) -> Path:
    from transvert_monai.data.atomic import atomic_write

    return atomic_write(path, lambda tmp: ds.save_as(str(tmp), enforce_file_format=True))


def write_dicom_results(
    output_folder: str | os.PathLike,
    study: Any,
    *,
    summary: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    manufacturer: str = "transvert_monai",
    series_number: int = 901,
    overwrite: bool = False,
) -> list[Path]:
    """Write the reconstruction in ``output_folder`` as DICOM objects into ``<output_folder>/dicom/``.

    See the module docstring for the objects and files.

    Args:
        output_folder: the reconstruction's output folder (``summary.json``, ``meshes/``, overlays).
        study: the source :class:`~transvert_monai.dicom.Study`, or its (lateral, AP) datasets or files.
        summary: the ``summary.json`` content (read from ``output_folder`` when None).
        provenance: ``model_name``, ``model_version``, ``weights_sha256``, ``software_version``
            (default ``transvert_monai <version>``); other keys are written as SR algorithm parameters.
            None: taken from the summary's ``provenance`` block (:func:`provenance_from_summary`).
        manufacturer: Manufacturer (0008,0070) of the new objects.
        series_number: SeriesNumber of the SR series; the STL and SC series take the next two.
        overwrite: replace an existing ``dicom/`` folder's files; otherwise it must be empty or absent.

    Returns:
        the files written: the SR, the STL objects (spine first, then the vertebrae cranial to
        caudal), the SC overlays (those whose PNG exists).

    Raises:
        FileNotFoundError: no ``summary.json`` (and no ``summary`` given).
        FileExistsError: ``dicom/`` exists and is not empty, without ``overwrite``.
        TransVertInputError: a summary without vertebrae, sources of two studies or without identifiers.
        ImportError: highdicom, pydicom or trimesh is not installed.
    """
    try:
        import highdicom  # noqa: F401
    except ImportError as err:
        raise ImportError("writing DICOM results needs highdicom: pip install 'transvert_monai[dicom]'.") from err
    from pydicom.uid import generate_uid

    from transvert_monai.dicom.sc import overlay_sc_image, png_rgb
    from transvert_monai.dicom.sr import provenance_fields, measurement_report_sr
    from transvert_monai.dicom.stl import lps_stl_bytes, stl_dataset

    folder = Path(output_folder)
    if summary is None:
        summary_path = folder / "summary.json"
        if not summary_path.is_file():
            raise FileNotFoundError(f"{summary_path} does not exist; run the reconstruction into {folder} first.")
        summary = json.loads(summary_path.read_text())
    rows = list(summary.get("vertebrae") or [])
    if not rows:
        raise TransVertInputError(f"the summary of {folder} lists no vertebra; there is nothing to write as DICOM.")
    if str(summary.get("coordinate_system", "RAS")).upper() != "RAS":
        raise TransVertInputError(
            f"the summary's coordinate_system is {summary.get('coordinate_system')!r}; RAS is expected."
        )
    lateral, ap = _source_headers(study)
    out_dir = folder / "dicom"
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose another output folder or pass overwrite=True.")
    out_dir.mkdir(parents=True, exist_ok=True)
    p = provenance_fields(provenance_from_summary(summary) if provenance is None else provenance)
    frame_of_reference_uid = generate_uid()
    written: list[Path] = []

    sr = measurement_report_sr(
        rows,
        (lateral, ap),
        frame_of_reference_uid=frame_of_reference_uid,
        series_uid=generate_uid(),
        series_number=series_number,
        sop_uid=generate_uid(),
        manufacturer=manufacturer,
        provenance=p,
        placement=summary.get("placement"),
    )
    written.append(_save(sr, out_dir / "sr_measurements.dcm"))

    stl_series = generate_uid()
    for number, (name, mesh_path) in enumerate(_mesh_files(folder / "meshes", [str(r["name"]) for r in rows]), start=1):
        stl, _ = lps_stl_bytes(mesh_path)
        ds = stl_dataset(
            stl,
            lateral,
            (lateral, ap),
            title=f"TransVert mesh {name}",
            frame_of_reference_uid=frame_of_reference_uid,
            series_uid=stl_series,
            series_number=series_number + 1,
            instance_number=number,
            manufacturer=manufacturer,
            provenance=p,
        )
        written.append(_save(ds, out_dir / f"stl_{name}.dcm"))

    sc_series, number = generate_uid(), 0
    for view, source in (("lateral", lateral), ("ap", ap)):
        png = folder / f"overlay_{view}.png"
        if not png.is_file():
            logger.warning("no %s; no Secondary Capture written for it.", png)
            continue
        number += 1
        image = overlay_sc_image(
            png_rgb(png),
            source,
            view=view,
            series_uid=sc_series,
            series_number=series_number + 2,
            instance_number=number,
            manufacturer=manufacturer,
            provenance=p,
        )
        written.append(_save(image, out_dir / f"sc_overlay_{view}.dcm"))
    return written
