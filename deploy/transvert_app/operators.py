"""The TransVert application's operators (MONAI Deploy App SDK / Holoscan).

Each operator is a thin wrapper around one plain function of :mod:`steps`, which holds all the logic and
runs (and is tested) without the runtime:

==================================  ==========================  ====================================================
operator                            port(s)                     step
==================================  ==========================  ====================================================
:class:`StudyLoaderOperator`        in ``input_folder``         :func:`steps.load_studies`: find each study's
                                    (optional), out ``studies``   lateral and AP radiograph and its centroids.json
:class:`TransVertInferenceOperator` in ``studies``, out         :func:`steps.reconstruct_studies`: the bundle's
                                    ``results``                   network through the standard inference workflow
:class:`DICOMResultsWriterOperator` in ``results``              :func:`steps.write_results`: SR / STL / SC in the
                                                                  source study, ``batch_summary.json``
==================================  ==========================  ====================================================
"""

from __future__ import annotations

import logging
from pathlib import Path

from monai.deploy.core import ConditionType, Fragment, Operator, OperatorSpec

try:  # as part of the package (tests), or from the application folder (python deploy/transvert_app, a MAP)
    from . import steps
except ImportError:  # pragma: no cover - run as a script folder
    import steps  # type: ignore[no-redef]

__all__ = ["DICOMResultsWriterOperator", "StudyLoaderOperator", "TransVertInferenceOperator"]


class StudyLoaderOperator(Operator):
    """The DICOM studies in the input folder, their lateral and AP radiographs selected.

    Wraps :func:`transvert_monai.dicom.find_studies` (via :func:`steps.load_studies`): a folder (PACS or DICOMweb
    export) of one or more studies, each with a lateral and an AP DX/CR/RF image and its ``centroids.json``.

    Named input:
        input_folder: optional; a folder that overrides ``input_folder`` (as the SDK's DICOMDataLoaderOperator).

    Named output:
        studies: the data list of the inference workflow, one item per study (refused studies carry an ``"error"``).
    """

    def __init__(self, fragment: Fragment, *args, input_folder: Path, output_folder: Path, **kwargs) -> None:
        self.input_folder, self.output_folder = Path(input_folder), Path(output_folder)
        self.input_name, self.output_name = "input_folder", "studies"
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name).condition(ConditionType.NONE)  # optional: no upstream emitter needed
        spec.output(self.output_name)

    def compute(self, op_input, op_output, context) -> None:
        folder = None
        try:
            folder = op_input.receive(self.input_name)
        except Exception:  # nothing connected to the optional port
            pass
        folder = Path(folder) if folder else self.input_folder
        items = steps.load_studies(folder, self.output_folder)
        self._logger.info("%d stud%s in %s", len(items), "y" if len(items) == 1 else "ies", folder)
        op_output.emit(items, self.output_name)


class TransVertInferenceOperator(Operator):
    """The TransVert bundle over the studies, through the standard inference workflow (as ``transvert-reconstruct``).

    Named input:
        studies: the data list from :class:`StudyLoaderOperator`.

    Named output:
        results: per study the workflow's record and its DICOM study (see :func:`steps.reconstruct_studies`).
    """

    def __init__(self, fragment: Fragment, *args, bundle_path: Path, device: str | None = None, **kwargs) -> None:
        self.bundle_path, self.device = Path(bundle_path), device
        self.input_name, self.output_name = "studies", "results"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name)
        spec.output(self.output_name)

    def compute(self, op_input, op_output, context) -> None:
        items = op_input.receive(self.input_name)
        op_output.emit(steps.reconstruct_studies(items, self.bundle_path, device=self.device), self.output_name)


class DICOMResultsWriterOperator(Operator):
    """The DICOM results (TID 1500 SR, Encapsulated STL, Secondary Capture) of each study, in its source study.

    Wraps :func:`transvert_monai.dicom.write_dicom_results` (via :func:`steps.write_results`): written into
    ``<output_folder>/<StudyInstanceUID>/dicom/``, with ``<output_folder>/batch_summary.json``. Raises
    :class:`steps.StudiesFailedError` after writing when any study failed.

    Named input:
        results: from :class:`TransVertInferenceOperator`.
    """

    def __init__(self, fragment: Fragment, *args, output_folder: Path, **kwargs) -> None:
        self.output_folder = Path(output_folder)
        self.input_name = "results"
        self.summary: dict | None = None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name)

    def compute(self, op_input, op_output, context) -> None:
        results = op_input.receive(self.input_name)
        self.summary = steps.write_results(results, self.output_folder, raise_on_failure=False)
        if self.summary["failed"]:
            failed = [r for r in self.summary["records"] if r.get("status") != "ok"]
            lines = "; ".join(f"{r.get('id')}: {r.get('error')}" for r in failed)
            raise steps.StudiesFailedError(
                f"{len(failed)} of {self.summary['studies']} studies failed ({lines}); "
                f"see {self.output_folder / steps.SUMMARY_NAME}."
            )
