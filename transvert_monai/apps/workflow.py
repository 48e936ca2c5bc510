"""The inference workflow over radiograph-pair studies: what ``inference.json`` and ``transvert-reconstruct`` run.

MONAI's standard inference properties (:data:`monai.bundle.properties.InferProperties`), filled with
this package's pieces:

=================  =====================================================================================
``dataset``        :class:`StudyDataset` over a data list of studies (:func:`study_datalist`: a Decathlon-style
                   list of ``{"lateral", "ap", "centroids", "output", ...}`` items, or the studies
                   :func:`~transvert_monai.dicom.find_studies` finds in ``dataset_dir``)
``preprocessing``  :func:`study_preprocessing`: :class:`ResolveDicomStudyd` (a DICOM study folder → its
                   lateral/AP files and centroids), :class:`~transvert_monai.transforms.LoadRadiographPaird`
``inferer``        :class:`~transvert_monai.inferers.VertebraInferer` (the packed patches, the level passed)
``evaluator``      :class:`~transvert_monai.engines.StudyEvaluator`: per study,
                   :meth:`SpineReconstructor.reconstruct` (patches, inferer, placement, stacking)
``postprocessing`` :class:`StudyRecordd`: the study's record (vertebrae, centres, residuals) for the summary
``handlers``       :class:`StudyOutputWriter`: per study :func:`write_study` (``SpineReconstructor.write``,
                   the DICOM results, into a safe :class:`~transvert_monai.outputs.OutputFolder`), and
                   ``batch_summary.json``
=================  =====================================================================================

:meth:`SpineReconstructor.run` (so ``transvert-reconstruct``) runs the same evaluator on a one-study list
(:func:`run_studies`). A study that fails is reported in ``batch_summary.json`` with its error and writes
nothing; the other studies go on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import IgniteInfo
from monai.data import Dataset
from monai.transforms import Compose, MapTransform
from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = [
    "COMMAND",
    "ResolveDicomStudyd",
    "StudyDataset",
    "StudyOutputWriter",
    "StudyRecordd",
    "run_studies",
    "study_datalist",
    "keep_item",
    "study_loader",
    "study_preprocessing",
    "write_study",
]

logger = logging.getLogger(__name__)

#: the command whose outputs the workflow writes (the output folders' marker; ``--overwrite`` needs the same)
COMMAND = "transvert-reconstruct"
ERROR_KEY = "error"


def _root_cause(err: BaseException) -> BaseException:
    """The innermost cause: MONAI's Compose wraps a transform's error in a RuntimeError."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def describe_error(err: BaseException) -> str:
    """``"<type>: <message>"`` of an exception, for logs and ``batch_summary.json``."""
    return f"{type(err).__name__}: {str(err).strip()}"


def study_datalist(
    data_list_file_path: str | os.PathLike | None = None,
    dataset_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "inference",
    data_list_key: str = "testing",
    lateral_path: str | os.PathLike | None = None,
    ap_path: str | os.PathLike | None = None,
    centroids_path: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """The studies to reconstruct, one dictionary each, from exactly one of three sources.

    * ``lateral_path`` + ``ap_path`` + ``centroids_path``: one study, written into ``output_dir`` itself;
    * ``data_list_file_path``: a JSON data list (``{data_list_key: [item, ...]}`` or a bare list) of items
      ``{"lateral", "ap", "centroids"}`` (paths relative to the list's folder), optional ``"output"``
      (relative to ``output_dir``; default ``"id"`` or ``study_<index>``), ``"lateral_sidecar"``,
      ``"ap_sidecar"``, ``"dicom_study"`` (a DICOM study folder: its lateral/AP files and centroids are found
      there, and the DICOM results link to it), ``"id"``;
    * ``dataset_dir``: a folder of DICOM studies, scanned with :func:`~transvert_monai.dicom.find_studies`; one
      output folder per study, named by its StudyInstanceUID; a study the scan refuses is an item whose
      ``"error"`` says why (reported, nothing written).

    Raises:
        ValueError: none or more than one source given, or a data list item that is not an object.
        FileNotFoundError: the data list or the folder does not exist.
    """
    single = [p for p in (lateral_path, ap_path, centroids_path) if p]
    sources = [bool(single), bool(data_list_file_path), bool(dataset_dir)]
    if sum(sources) != 1:
        raise ValueError(
            "give the studies one way: `lateral_path` + `ap_path` + `centroids_path` (one study), `data_list_file_path` "
            f"(a data list) or `dataset_dir` (a folder of DICOM studies); got {sum(sources)} of them."
        )
    output_dir = Path(output_dir)
    if single:
        if len(single) != 3:
            raise ValueError("one study needs all of `lateral_path`, `ap_path` and `centroids_path`.")
        return [{"id": output_dir.name, "lateral": str(lateral_path), "ap": str(ap_path),
                 "centroids": str(centroids_path), "output": str(output_dir)}]  # fmt: skip
    if data_list_file_path:
        path = Path(data_list_file_path)
        if not path.is_file():
            raise FileNotFoundError(f"the data list {path} does not exist.")
        content = json.loads(path.read_text())
        items = content.get(data_list_key) if isinstance(content, Mapping) else content
        if not isinstance(items, list):
            raise ValueError(f"the data list {path} has no list under '{data_list_key}'.")
        studies = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValueError(f"{path}: {data_list_key}[{i}] is a {type(item).__name__}, not an object.")
            study = dict(item)
            for key in ("lateral", "ap", "centroids", "lateral_sidecar", "ap_sidecar", "dicom_study"):
                if isinstance(study.get(key), str) and study[key]:
                    study[key] = str(path.parent / study[key])  # absolute paths stay as they are
            study.setdefault("id", f"study_{i}")
            study["output"] = str(output_dir / study.get("output", study["id"]))
            studies.append(study)
        return studies
    from transvert_monai.dicom import find_studies

    scan = find_studies(dataset_dir)
    studies = [
        {"id": s.study_uid, "dicom_study": s, "lateral": str(s.lateral_path), "ap": str(s.ap_path),
         "centroids": None if s.centroids is None else str(s.centroids), "output": str(output_dir / s.study_uid)}
        for s in scan
    ]  # fmt: skip
    for uid, err in scan.errors.items():
        studies.append({"id": uid, "output": str(output_dir / uid), ERROR_KEY: err})
    for path in scan.ignored:
        logger.info("ignored: %s", path)
    return studies


class ResolveDicomStudyd(MapTransform):
    """A study item's ``dicom_study`` folder (or :class:`~transvert_monai.dicom.Study`) → its lateral/AP files and centroids.

    A folder is read with :func:`~transvert_monai.dicom.find_study` (one study; the item's ``"study_uid"`` picks
    one of several); the :class:`Study` replaces it, so the DICOM results link to it. Items without one pass.
    Centroids given in the item win over the study's ``centroids.json``.

    Args:
        keys: the study item (default ``"dicom_study"``).
        allow_missing_keys: pass items without one (default True).

    Raises (when called):
        StudyError: the folder holds no usable study (see ``find_study``).
        FileNotFoundError: the study has no centroids.json and the item gives none.
    """

    def __init__(self, keys: Any = "dicom_study", allow_missing_keys: bool = True) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            study = d[key]
            if study is None or (isinstance(study, str) and study in ("", "auto")):
                continue
            if not isinstance(study, (str, os.PathLike)) and not hasattr(study, "lateral_path"):
                continue  # the (lateral, AP) DICOM files the results link to: nothing to resolve
            if isinstance(study, (str, os.PathLike)):
                from transvert_monai.dicom import find_study

                study = find_study(study, study_uid=d.get("study_uid"), centroids=d.get("centroids"))
                for note in study.notes:
                    logger.info("study %s: %s", study.study_uid, note)
            d[key] = study
            d["lateral"], d["ap"] = str(study.lateral_path), str(study.ap_path)
            if not d.get("centroids"):
                if study.centroids is None:
                    raise FileNotFoundError(
                        f"the study {study.study_uid} has no centroids.json beside its radiographs; give the 2D "
                        "centroids (--centroids, or the data list item's \"centroids\")."
                    )
                d["centroids"] = str(study.centroids)
        return d


def study_preprocessing() -> Compose:
    """The ``preprocessing`` of ``inference.json``: DICOM study → files, then the pair and centroids read and checked."""
    from transvert_monai.transforms.radiograph import LoadRadiographPaird

    return Compose([ResolveDicomStudyd(), LoadRadiographPaird()])


class StudyDataset(Dataset):
    """A :class:`monai.data.Dataset` of studies whose items never raise: a study that cannot be read comes back
    as the item with ``"error"`` set to the exception (the transform's own, unwrapped from MONAI's), and
    ``"timings_s": {"reading": seconds}``. Items that already carry an ``"error"`` are not transformed.

    Args:
        data, transform: see :class:`monai.data.Dataset` (``transform``: :func:`study_preprocessing`).
        error_key: the item that holds a study's exception.
    """

    def __init__(self, data: Sequence, transform: Callable | None = None, error_key: str = ERROR_KEY) -> None:
        super().__init__(data, transform)
        self.error_key = error_key

    def _transform(self, index: int) -> Any:
        item = dict(self.data[index])
        if item.get(self.error_key) is not None:
            return item
        t0 = time.perf_counter()
        try:
            out = dict(super()._transform(index))
        except Exception as err:  # reported per study by the handlers
            return {**item, self.error_key: _root_cause(err)}
        out["timings_s"] = {"reading": time.perf_counter() - t0}
        out["source"] = item  # the item as given (paths), for the outputs' provenance and the summary
        return out


def keep_item(item: Any) -> Any:
    """The ``collate_fn`` of the studies' loader (``DataLoader(batch_size=None)``): items stay as they are."""
    return item


def study_loader(dataset: Dataset, num_workers: int = 0) -> Any:
    """A ``DataLoader`` of one study per iteration, uncollated (radiographs of any size, Study objects)."""
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=keep_item)


class StudyRecordd(MapTransform):
    """The ``postprocessing`` of ``inference.json``: a study's record for ``batch_summary.json``.

    Adds ``record_key``: ``{"id", "output", "status": "ok" | "failed", "error", "vertebrae": [names],
    "centres_mm", "residual_mm"}`` from ``pred_key`` (a :class:`SpineReconstruction`) and ``error_key``.
    """

    def __init__(self, keys: Any = "pred", error_key: str = ERROR_KEY, record_key: str = "record") -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.error_key, self.record_key = error_key, record_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from transvert_monai.data.labels import label_to_name

        d = dict(data)
        source = d.get("source") or d
        record: dict[str, Any] = {"id": source.get("id"), "output": source.get("output")}
        error = d.get(self.error_key)
        result = next((d[k] for k in self.key_iterator(d) if d[k] is not None), None)
        if error is not None or result is None:
            record.update(status="failed", error=describe_error(error) if error is not None else "no result")
        else:
            record.update(
                status="ok", error=None, vertebrae=[label_to_name(v) for v in result.labels],
                centres_mm=[[round(x, 6) for x in c] for c in result.centres_mm.tolist()],
                residual_mm=[round(r, 6) for r in result.residual_mm.tolist()],
            )  # fmt: skip
        d[self.record_key] = record
        return d


def _file_records(source: Mapping[str, Any]) -> dict[str, Any]:
    from transvert_monai.apps.reconstruct import _file_record

    records = {}
    for role in ("lateral", "ap", "centroids", "lateral_sidecar", "ap_sidecar"):
        path = source.get(role)
        if isinstance(path, (str, os.PathLike)) and path and Path(path).is_file():
            records[role] = _file_record(path)
    return records


def _input_paths(source: Mapping[str, Any]) -> list[Any]:
    from transvert_monai.io.formats import default_sidecar

    paths = [source.get(k) for k in ("lateral", "ap", "centroids", "lateral_sidecar", "ap_sidecar")]
    paths = [p for p in paths if isinstance(p, (str, os.PathLike)) and p]
    return paths + [default_sidecar(p) for p in paths[:2]]


def write_study(
    reconstructor: Any,
    result: Any,
    source: Mapping[str, Any],
    overwrite: bool = False,
    other_inputs: Sequence[Any] = (),
    dicom: bool = True,
) -> Path:
    """Write one study's result into its output folder, safely; the one writer of the workflow and the CLI.

    :meth:`SpineReconstructor.write` fills a staging folder of the study's
    :class:`~transvert_monai.outputs.OutputFolder` (``source["output"]``, refused if it is or holds an input, or is
    a non-empty folder not written by this command, or without ``overwrite``); with DICOM sources (a
    ``"dicom_study"`` :class:`~transvert_monai.dicom.Study`, or both radiographs DICOM files) the DICOM results
    are added (:func:`~transvert_monai.dicom.write_dicom_results`); then the folder is moved into place in one
    step. On any failure nothing is left behind.

    Returns:
        the output folder.
    """
    from transvert_monai.apps.reconstruct import _dicom_sources
    from transvert_monai.outputs import OutputFolder

    output_dir = source["output"]
    output = OutputFolder(output_dir, COMMAND, overwrite=overwrite, inputs=[*_input_paths(source), *other_inputs])
    staging = output.start()
    try:
        reconstructor._input_files = _file_records(source)
        reconstructor.write(result, staging, title=f"TransVert reconstruction: {Path(output_dir).name}")
        study = source.get("dicom_study")
        sources = _dicom_sources(study if study not in (None, "") else "auto", source["lateral"], source["ap"])
        if sources is not None and dicom:
            from transvert_monai.dicom import write_dicom_results

            t0 = time.perf_counter()
            write_dicom_results(staging, sources)
            result.timings_s["writing_dicom"] = time.perf_counter() - t0
        return output.commit(staging, inputs={k: v["path"] for k, v in reconstructor._input_files.items()})
    finally:
        output.discard(staging)


class StudyOutputWriter:
    """The output ``handler`` of ``inference.json``: each study's outputs via :func:`write_study`, and a batch summary.

    On every iteration the study's result is written (or its error, from reading, reconstructing or writing,
    logged and kept); on completion ``summary_path`` (``batch_summary.json`` in the output root) lists every
    study's record (:class:`StudyRecordd`) with its status and error. :attr:`records` and :attr:`errors`
    (``{study id: exception}``) hold the same for callers.

    Args:
        reconstructor: the evaluator's :class:`SpineReconstructor` (its ``write`` writes the outputs).
        overwrite: replace previous outputs of ``transvert-reconstruct`` (never anything else).
        summary_path: where to write the batch summary (None or "": not written).
        other_inputs: further files the outputs may not overlap (weights, bundle).
        dicom: write the DICOM results where the study has DICOM sources.
        pred_key, error_key, record_key: the output items (see :class:`~transvert_monai.engines.StudyEvaluator`).
    """

    def __init__(
        self,
        reconstructor: Any,
        overwrite: bool = False,
        summary_path: str | os.PathLike | None = None,
        other_inputs: Sequence[Any] = (),
        dicom: bool = True,
        pred_key: str = "pred",
        error_key: str = ERROR_KEY,
        record_key: str = "record",
    ) -> None:
        self.reconstructor, self.overwrite, self.dicom = reconstructor, bool(overwrite), bool(dicom)
        self.summary_path = Path(summary_path) if summary_path else None
        self.other_inputs = [p for p in other_inputs if p]
        self.pred_key, self.error_key, self.record_key = pred_key, error_key, record_key
        self.records: list[dict[str, Any]] = []
        self.errors: dict[str, BaseException] = {}
        self.results: dict[str, Any] = {}

    def attach(self, engine: Any) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def _reset(self, engine: Any) -> None:
        self.records, self.errors, self.results = [], {}, {}

    def iteration_completed(self, engine: Any) -> None:
        batch, output = engine.state.batch, engine.state.output
        source = batch.get("source") or batch
        record = dict(output.get(self.record_key) or StudyRecordd(self.pred_key, self.error_key)({**batch, **output})[self.record_key])
        study_id = str(record.get("id"))
        error, result = output.get(self.error_key), output.get(self.pred_key)
        t0 = time.perf_counter()
        if error is None and result is not None:
            try:
                write_study(self.reconstructor, result, source, self.overwrite, self.other_inputs, self.dicom)
            except Exception as err:  # nothing was written for this study (OutputFolder); the others go on
                error = _root_cause(err)
            result.timings_s["writing_total"] = time.perf_counter() - t0
            record["timings_s"] = {k: round(v, 4) for k, v in result.timings_s.items()}
        if error is not None:
            record.update(status="failed", error=describe_error(error))
            record.pop("vertebrae", None), record.pop("centres_mm", None), record.pop("residual_mm", None)
            self.errors[study_id] = error
            logger.error("study %s failed, nothing written for it: %s", study_id, describe_error(error))
        else:
            self.results[study_id] = result
            logger.info("study %s: %d vertebrae written to %s", study_id, len(result.labels), record.get("output"))
        self.records.append(record)

    def completed(self, engine: Any) -> None:
        if self.summary_path is None:
            return
        from transvert_monai.data.atomic import atomic_write

        failed = sum(r["status"] != "ok" for r in self.records)
        summary = {"studies": len(self.records), "ok": len(self.records) - failed, "failed": failed, "records": self.records}
        self.summary_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.summary_path, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=4) + "\n"))
        logger.info("%d of %d studies done, %d failed; see %s", summary["ok"], summary["studies"], failed, self.summary_path)


def run_studies(
    reconstructor: Any,
    datalist: Sequence[Mapping[str, Any]],
    overwrite: bool = False,
    summary_path: str | os.PathLike | None = None,
    other_inputs: Sequence[Any] = (),
    dicom: bool = True,
) -> StudyOutputWriter:
    """Run the inference workflow of ``inference.json`` on ``datalist`` with ``reconstructor``; return its writer.

    The same components the bundle config builds: :class:`StudyDataset` with :func:`study_preprocessing`,
    :class:`~transvert_monai.engines.StudyEvaluator` with the reconstructor's inferer, :class:`StudyRecordd`,
    :class:`StudyOutputWriter`. The writer's ``records``, ``errors`` and ``results`` tell what happened per study.
    """
    from transvert_monai.engines import StudyEvaluator

    writer = StudyOutputWriter(reconstructor, overwrite, summary_path, other_inputs, dicom)
    evaluator = StudyEvaluator(
        device=reconstructor.device,
        val_data_loader=study_loader(StudyDataset(list(datalist), study_preprocessing())),
        network=reconstructor.network,
        reconstructor=reconstructor,
        postprocessing=StudyRecordd(),
        val_handlers=[writer],
    )
    evaluator.run()
    return writer
