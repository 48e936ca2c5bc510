"""The three steps of the TransVert MONAI Deploy application, as plain functions.

The operators of :mod:`operators` call these and nothing else, so the application's logic runs and is
tested without the MONAI Deploy / Holoscan runtime (this module imports neither):

1. :func:`load_studies`: a DICOM folder (PACS / DICOMweb export) → one item per study, its lateral and
   AP radiograph selected by :func:`transvert_monai.dicom.find_studies` (ViewPosition, then the stated
   fallbacks), with its ``centroids.json``; a study that cannot be used is an item with an ``"error"``.
2. :func:`reconstruct_studies`: the bundle's network through the standard inference workflow
   (:func:`transvert_monai.apps.workflow.run_studies`, what ``inference.json`` and
   ``transvert-reconstruct --dicom-study`` run): one output folder per study, ``<output>/<StudyInstanceUID>/``.
3. :func:`write_results`: the DICOM results of each reconstructed study
   (:func:`transvert_monai.dicom.write_dicom_results`: TID 1500 SR, Encapsulated STL, Secondary Capture, in
   the source study) into ``<output>/<StudyInstanceUID>/dicom/``, and ``<output>/batch_summary.json``.

A study that fails at any step is reported in ``batch_summary.json`` with its error, and nothing is left
of it in the output folder; the other studies go on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("transvert_app")

APP_NAME = "transvert_app"
SUMMARY_NAME = "batch_summary.json"
ERROR_KEY = "error"

__all__ = [
    "APP_NAME",
    "NoStudyError",
    "StudiesFailedError",
    "load_studies",
    "reconstruct_studies",
    "resolve_bundle",
    "run_pipeline",
    "write_results",
]


class NoStudyError(FileNotFoundError):
    """The input folder holds no radiograph study at all."""


class StudiesFailedError(RuntimeError):
    """Some studies failed (their errors are in the message and in ``batch_summary.json``); the others were written."""


def _describe(err: Any) -> str:
    if isinstance(err, BaseException):
        from transvert_monai.apps.workflow import describe_error

        return describe_error(err)
    return str(err)


def resolve_bundle(model_path: str | os.PathLike | None) -> Path:
    """The TransVert bundle folder to run.

    ``model_path`` is the application's model path (``-m``/``--model``, ``HOLOSCAN_MODEL_PATH``; in a MAP
    ``/opt/holoscan/models``): a bundle folder (``configs/inference.json``), or a folder holding exactly one
    bundle (how ``--models <bundle>`` is laid out in a MAP). Empty, or a path that does not exist: the bundle
    installed with ``transvert_monai`` (:func:`~transvert_monai.apps.reconstruct.default_bundle`).

    Raises:
        FileNotFoundError: ``model_path`` exists but is (or holds) no single bundle.
    """
    from transvert_monai.apps.reconstruct import default_bundle

    if not model_path or not Path(model_path).exists():
        return default_bundle()
    path = Path(model_path)
    if (path / "configs" / "inference.json").is_file():
        return path
    if path.is_dir():
        inner = [p for p in sorted(path.iterdir()) if (p / "configs" / "inference.json").is_file()]
        if len(inner) == 1:
            return inner[0]
    raise FileNotFoundError(
        f"the model path {path} is not a TransVert bundle (no configs/inference.json) and does not hold exactly one; "
        "give the bundle folder with -m/--model (or HOLOSCAN_MODEL_PATH)."
    )


def load_studies(input_path: str | os.PathLike, output_path: str | os.PathLike) -> list[dict[str, Any]]:
    """Step 1: the studies in ``input_path`` as items of the inference workflow's data list.

    Each usable study (:func:`transvert_monai.dicom.find_studies`) gives ``{"id": StudyInstanceUID,
    "dicom_study": Study, "lateral", "ap", "centroids", "output": <output_path>/<StudyInstanceUID>}`` (as
    :func:`transvert_monai.apps.workflow.study_datalist` builds them from a DICOM folder); a refused study
    (two laterals, no AP, two patients, no pixel spacing, ...) gives ``{"id", "output", "error"}``. Files that
    belong to no study, and the notes of each study, are logged.

    Raises:
        FileNotFoundError: ``input_path`` is not a folder.
        NoStudyError: it holds no study at all.
    """
    from transvert_monai.dicom import find_studies

    scan = find_studies(input_path)
    output = Path(output_path)
    items: list[dict[str, Any]] = []
    for study in scan:
        for note in study.notes:
            logger.info("study %s: %s", study.study_uid, note)
        logger.info("study %s: lateral %s, AP %s, centroids %s", study.study_uid, study.lateral_path, study.ap_path,
                    study.centroids)  # fmt: skip
        items.append({
            "id": study.study_uid, "dicom_study": study, "lateral": str(study.lateral_path), "ap": str(study.ap_path),
            "centroids": None if study.centroids is None else str(study.centroids),
            "output": str(output / study.study_uid),
        })  # fmt: skip
    for uid, err in scan.errors.items():
        logger.error("study %s refused: %s", uid, err)
        items.append({"id": uid, "output": str(output / uid), ERROR_KEY: err})
    for line in scan.ignored:
        logger.info("ignored: %s", line)
    if not items:
        raise NoStudyError(
            f"no radiograph study in {input_path}: it holds no DICOM DX/CR/RF image with a StudyInstanceUID "
            f"({len(scan.ignored)} file(s) ignored)."
        )
    return items


def reconstruct_studies(
    items: Sequence[Mapping[str, Any]],
    bundle: str | os.PathLike,
    device: str | None = None,
    placement: str = "cone_beam",
) -> list[dict[str, Any]]:
    """Step 2: the bundle's network over the studies, through the standard inference workflow.

    The network comes from the bundle's ``inference.json`` and ``models/model.pt``
    (:func:`~transvert_monai.apps.reconstruct.load_bundle_network`), and the studies run through
    :func:`~transvert_monai.apps.workflow.run_studies` with a
    :class:`~transvert_monai.apps.reconstruct.SpineReconstructor` set up as ``transvert-reconstruct`` sets it
    up, so both give the same vertebrae and centres. Each study's non-DICOM outputs (label maps, meshes,
    overlays, ``summary.json``, ``report.html``) go to its ``"output"`` folder; the DICOM results are step 3.

    Returns:
        per study ``{"record": <the workflow's record: id, output, status, error, vertebrae, centres_mm,
        residual_mm>, "dicom_study": Study or None}``, in the order of ``items``.
    """
    from transvert_monai.apps.reconstruct import SpineReconstructor, load_bundle_network
    from transvert_monai.apps.workflow import run_studies
    from transvert_monai.resources import resolve_device

    bundle = Path(bundle)
    model = bundle / "models" / "model.pt"
    torch_device = resolve_device(device)
    logger.info("loading the network from %s on %s", bundle, torch_device)
    network = load_bundle_network(bundle, None, str(torch_device))
    reconstructor = SpineReconstructor(network, placement=placement, device=torch_device)
    writer = run_studies(reconstructor, list(items), other_inputs=[model, bundle], dicom=False)
    by_id = {str(item["id"]): item for item in items}
    out = []
    for record in writer.records:
        item = by_id.get(str(record.get("id")), {})
        out.append({"record": dict(record), "dicom_study": item.get("dicom_study")})
    return out


def write_results(
    results: Sequence[Mapping[str, Any]],
    output_path: str | os.PathLike,
    raise_on_failure: bool = True,
) -> dict[str, Any]:
    """Step 3: the DICOM results of each reconstructed study, and ``<output_path>/batch_summary.json``.

    For each study whose reconstruction succeeded, :func:`~transvert_monai.dicom.write_dicom_results` writes its
    SR, STL and SC objects into ``<study output>/dicom/``, linked to the source study (same StudyInstanceUID, new
    series, references to the lateral and AP images). If that fails, the study's whole output folder (written by
    step 2 of this run) is removed and the study is reported failed.

    The summary is the workflow's (``{"studies", "ok", "failed", "records"}``), each record with ``"dicom"``:
    the DICOM files written (relative to ``output_path``), and ``"application"``: name and versions.

    Raises:
        StudiesFailedError: with ``raise_on_failure``, when any study failed (after the summary is written and
            the other studies' results are in place), so a MAP run ends with a non-zero exit status.
    """
    import transvert_monai
    from transvert_monai.data.atomic import atomic_write
    from transvert_monai.dicom import write_dicom_results

    output = Path(output_path)
    records = []
    for entry in results:
        record = dict(entry["record"])
        study = entry.get("dicom_study")
        if record.get("status") == "ok":
            folder = Path(record["output"])
            try:
                if study is None:
                    raise ValueError("the study has no DICOM sources to link the results to.")
                written = write_dicom_results(folder, study)
            except Exception as err:  # nothing is left of this study; the others go on
                shutil.rmtree(folder, ignore_errors=True)
                record.update(status="failed", error=_describe(err))
                for key in ("vertebrae", "centres_mm", "residual_mm"):
                    record.pop(key, None)
                logger.error("study %s: the DICOM results failed, nothing written for it: %s", record.get("id"),
                             record["error"])  # fmt: skip
            else:
                record["dicom"] = [str(p.relative_to(output) if p.is_relative_to(output) else p) for p in written]
                logger.info("study %s: %d DICOM objects in %s", record.get("id"), len(written), folder / "dicom")
        records.append(record)
    failed = [r for r in records if r.get("status") != "ok"]
    summary = {
        "application": {"name": APP_NAME, "version": transvert_monai.__version__,
                        "transvert_monai": transvert_monai.__version__},
        "studies": len(records), "ok": len(records) - len(failed), "failed": len(failed), "records": records,
    }  # fmt: skip
    output.mkdir(parents=True, exist_ok=True)
    summary_path = output / SUMMARY_NAME
    atomic_write(summary_path, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=4) + "\n"))
    logger.info("%d of %d studies done, %d failed; see %s", summary["ok"], len(records), len(failed), summary_path)
    if failed and raise_on_failure:
        lines = "; ".join(f"{r.get('id')}: {r.get('error')}" for r in failed)
        raise StudiesFailedError(f"{len(failed)} of {len(records)} studies failed ({lines}); see {summary_path}.")
    return summary


def run_pipeline(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model_path: str | os.PathLike | None = None,
    device: str | None = None,
    raise_on_failure: bool = True,
) -> dict[str, Any]:
    """The three steps in a row, without the MONAI Deploy runtime (what the application's operators do)."""
    items = load_studies(input_path, output_path)
    results = reconstruct_studies(items, resolve_bundle(model_path), device=device)
    return write_results(results, output_path, raise_on_failure=raise_on_failure)
