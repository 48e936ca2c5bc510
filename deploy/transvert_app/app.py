"""TransVert as a MONAI Deploy application: a DICOM study folder in, DICOM results out.

Three operators (:mod:`operators`), one flow::

    StudyLoaderOperator --studies--> TransVertInferenceOperator --results--> DICOMResultsWriterOperator

Paths come from the application context (``-i/--input``, ``-o/--output``, ``-m/--model``, or
``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH``, ``HOLOSCAN_MODEL_PATH`` as a MAP sets them); the model path
is the TransVert bundle folder (default: the bundle installed with ``transvert_monai``). The device is CUDA when
present, else the CPU (``TRANSVERT_DEVICE`` to choose).

Run it with ``python deploy/transvert_app -i <dicom folder> -o <output folder> [-m <bundle>]``; see README.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import AppContext, Application

try:  # as part of the package (tests), or from the application folder (python deploy/transvert_app, a MAP)
    from .operators import DICOMResultsWriterOperator, StudyLoaderOperator, TransVertInferenceOperator
    from .steps import resolve_bundle
except ImportError:  # pragma: no cover - run as a script folder
    from operators import DICOMResultsWriterOperator, StudyLoaderOperator, TransVertInferenceOperator  # type: ignore
    from steps import resolve_bundle  # type: ignore

import transvert_monai

__all__ = ["TransVertApp"]


class TransVertApp(Application):
    """The 3D spine (vertebra shapes, centres, meshes) from a lateral and an AP radiograph, as DICOM results.

    Args:
        argv: as :class:`holoscan.core.Application` (``[python, app.py, -i, ..., -o, ...]``; default ``sys.argv``).
        device: ``"cpu"``, ``"cuda"``, ... (default: ``TRANSVERT_DEVICE``, else CUDA when present).
    """

    name = "transvert_app"
    description = "TransVert: the 3D standing spine from a lateral and an AP radiograph (DICOM in, DICOM out)."
    version = transvert_monai.__version__

    def __init__(self, *args, device: str | None = None, **kwargs) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self.device = device or os.environ.get("TRANSVERT_DEVICE") or None
        self.app_context: AppContext | None = None
        self.writer: DICOMResultsWriterOperator | None = None
        self.bundle: Path | None = None
        super().__init__(*args, **kwargs)

    def run(self, *args, **kwargs):
        self._logger.info("Begin %s", self.run.__name__)
        result = super().run(*args, **kwargs)
        self._logger.info("End %s", self.run.__name__)
        return result

    def compose(self) -> None:
        self.app_context = Application.init_app_context(self.argv)
        input_path, output_path = Path(self.app_context.input_path), Path(self.app_context.output_path)
        bundle = self.bundle = resolve_bundle(self.app_context.model_path)
        self._logger.info("input %s, output %s, bundle %s", input_path, output_path, bundle)

        loader = StudyLoaderOperator(
            self, CountCondition(self, 1), input_folder=input_path, output_folder=output_path, name="study_loader"
        )
        inference = TransVertInferenceOperator(self, bundle_path=bundle, device=self.device, name="transvert_inference")
        self.writer = DICOMResultsWriterOperator(self, output_folder=output_path, name="dicom_results_writer")
        self.add_flow(loader, inference, {(loader.output_name, inference.input_name)})
        self.add_flow(inference, self.writer, {(inference.output_name, self.writer.input_name)})


if __name__ == "__main__":
    logging.info(f"Begin {__name__}")
    TransVertApp().run()
    logging.info(f"End {__name__}")
