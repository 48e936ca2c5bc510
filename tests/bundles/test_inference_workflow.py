"""inference.json as a standard MONAI inference workflow: the properties, batch inference over a data list, and
the same results as ``SpineReconstructor.run`` (``transvert-reconstruct``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
CONFIGS = BUNDLE / "configs"
WEIGHTS = BUNDLE / "models" / "model.pt"

#: three vertebrae per study keep the full-size network at a few seconds per study on CPU
SUBSETS = {"upper": ["T3", "T4", "T5"], "lower": ["T9", "T10", "T11"]}


def _workflow(config_files, workflow_type, **overrides):
    return ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in config_files],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type,
        **overrides,
    )


@pytest.mark.parametrize(
    "configs,workflow_type",
    [(["inference.json"], "infer"), (["inference.json", "stacking.json"], "infer"), (["train.json"], "train"),
     (["train.json", "evaluate.json"], "eval")],  # fmt: skip
    ids=["inference", "stacking", "train", "evaluate"],
)
def test_configs_have_monai_standard_properties(configs, workflow_type, tmp_path, example_dataset):
    datalist = tmp_path / "studies.json"
    datalist.write_text(json.dumps({"testing": [{"lateral": "l.nii.gz", "ap": "a.nii.gz", "centroids": "c.json"}]}))
    sources = {"data_list_file_path": str(datalist)} if workflow_type == "infer" else {"dataset_dir": str(example_dataset)}
    # init_id: parse without running `initialize` (weights, training statistics); the properties are then built
    wf = _workflow(configs, workflow_type, bundle_root=str(BUNDLE), init_id="no_initialize", output_dir=str(tmp_path / "out"),
                   model_path=str(WEIGHTS), **sources)  # fmt: skip
    wf.initialize()
    assert wf.check_properties() == []


def test_inference_properties_are_the_package_components(tmp_path):
    from transvert_monai.apps.workflow import StudyDataset, StudyOutputWriter
    from transvert_monai.engines import StudyEvaluator
    from transvert_monai.inferers import VertebraInferer

    item = {"lateral": "l.nii.gz", "ap": "a.nii.gz", "centroids": "c.json"}
    datalist = tmp_path / "studies.json"
    datalist.write_text(json.dumps({"testing": [item]}))
    wf = _workflow(["inference.json"], "infer", bundle_root=str(BUNDLE), data_list_file_path=str(datalist),
                   output_dir=str(tmp_path / "out"))  # fmt: skip
    wf.initialize()
    assert isinstance(wf.inferer, VertebraInferer)
    assert isinstance(wf.dataset, StudyDataset) and wf.dataset.data[0]["output"] == str(tmp_path / "out" / "study_0")
    assert isinstance(wf.evaluator, StudyEvaluator) and wf.evaluator.reconstructor.inferer is wf.inferer
    assert isinstance(wf.handlers[0], StudyOutputWriter)
    assert wf.dataset_dir == ""


@pytest.fixture(scope="module")
def studies(example_radiographs, tmp_path_factory):
    """Two good studies (three vertebrae each, the example DRR pair) and a broken one, as a data list."""
    folder = tmp_path_factory.mktemp("studies")
    centroids = json.loads(Path(example_radiographs["centroids"]).read_text())
    items = []
    for name, levels in SUBSETS.items():
        subset = {view: {k: v for k, v in points.items() if k in levels} for view, points in centroids.items()}
        (folder / f"{name}.json").write_text(json.dumps(subset))
        items.append({"id": name, "lateral": str(example_radiographs["lateral"]), "ap": str(example_radiographs["ap"]),
                      "centroids": f"{name}.json"})  # fmt: skip
    broken = {view: {"T3": [5000.0, 10.0]} for view in ("lateral", "ap")}  # outside the image
    (folder / "broken.json").write_text(json.dumps(broken))
    items.insert(1, {**items[0], "id": "broken", "centroids": "broken.json"})
    (folder / "studies.json").write_text(json.dumps({"testing": items}, indent=4))
    return folder


@pytest.mark.slow
@pytest.mark.skipif(not WEIGHTS.is_file(), reason="the bundle's weights (models/model.pt) are not here")
def test_batch_inference_gives_the_results_of_transvert_reconstruct_and_survives_a_broken_study(studies, tmp_path):
    from transvert_monai.apps.reconstruct import SpineReconstructor, load_bundle_network

    out = tmp_path / "batch"
    wf = _workflow(["inference.json"], "infer", bundle_root=str(BUNDLE), data_list_file_path=str(studies / "studies.json"),
                   output_dir=str(out), device="cpu", write_dicom=False)  # fmt: skip
    wf.initialize()
    wf.run()
    writer = wf.handlers[0]
    summary = json.loads((out / "batch_summary.json").read_text())
    assert [(r["id"], r["status"]) for r in summary["records"]] == [("upper", "ok"), ("broken", "failed"), ("lower", "ok")]
    assert "T3" in summary["records"][1]["error"] and summary["failed"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["batch_summary.json", "lower", "upper"]  # nothing of the broken one

    reconstructor = SpineReconstructor(load_bundle_network(BUNDLE, device="cpu"), stack=False, device="cpu")
    for record in summary["records"]:
        if record["status"] != "ok":
            continue
        name = record["id"]
        expected = reconstructor.run(
            wf.dataset.data[0]["lateral"], wf.dataset.data[0]["ap"], studies / f"{name}.json", tmp_path / f"cli_{name}",
        )
        got = writer.results[name]
        assert got.labels == expected.labels and [f"T{v - 7}" for v in got.labels] == SUBSETS[name]
        assert torch.allclose(got.centres_mm, expected.centres_mm, atol=1e-6, rtol=0)
        assert torch.allclose(torch.tensor(record["centres_mm"], dtype=torch.float64), expected.centres_mm.double(), atol=1e-6, rtol=0)
        assert torch.equal(got.shapes > got.shapes.new_tensor(got.labels).reshape(-1, 1, 1, 1, 1) / 2,
                           expected.shapes > expected.shapes.new_tensor(expected.labels).reshape(-1, 1, 1, 1, 1) / 2)  # fmt: skip
        mine = json.loads((out / name / "summary.json").read_text())["vertebrae"]
        theirs = json.loads((tmp_path / f"cli_{name}" / "summary.json").read_text())["vertebrae"]
        assert [(r["name"], r["centre_mm"], r["voxels"]) for r in mine] == [(r["name"], r["centre_mm"], r["voxels"]) for r in theirs]
    assert not [p for p in tmp_path.rglob(".*staging*")]  # no staging folder left behind
