"""``multi_gpu_train.json``: DDP training layered on ``train.json``, run under torchrun on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver

from tests.bundles.test_transvert_bundle import BUNDLE, CONFIGS, TINY

MULTI_GPU = CONFIGS / "multi_gpu_train.json"
#: top-level keys the multi-GPU config adds; every other key it sets must exist in train.json, or its parent must
NEW_KEYS = {"dist_backend", "ddp_device_ids", "finalize"}


def _configs() -> tuple[dict, dict]:
    return json.loads((CONFIGS / "train.json").read_text()), json.loads(MULTI_GPU.read_text())


def _layered(dataset_dir: Path, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(MULTI_GPU)])
    parser.update({"dataset_dir": str(dataset_dir), **TINY, **overrides})
    parser.parse()
    return parser


def _leaf_strings(config) -> list[str]:
    if isinstance(config, dict):
        return [s for v in config.values() for s in _leaf_strings(v)]
    if isinstance(config, list):
        return [s for v in config for s in _leaf_strings(v)]
    return [config] if isinstance(config, str) else []


def test_multi_gpu_config_overrides_only_existing_keys_and_keeps_the_single_process_steps(example_dataset):
    train, multi = _configs()
    parser, single = _layered(example_dataset), ConfigParser(train)
    for key in set(multi) - NEW_KEYS:  # an override of a renamed train.json key would silently do nothing
        parent = key.rpartition("#")[0]
        assert key in single or (parent and single.get(parent) is not None), f"{key}: no such key in train.json"
    for ref in {r for s in _leaf_strings(multi) for r in ReferenceResolver.match_refs_pattern(s)}:
        assert ref in parser, f"multi_gpu_train.json refers to @{ref}, which train.json does not define"
    # the process group comes first; every single-process step follows, unchanged
    assert multi["initialize"][-len(train["initialize"]) :] == train["initialize"]
    assert "destroy_process_group" in multi["finalize"][-1]


def test_samplers_shard_training_and_validation_per_rank(example_dataset, monkeypatch):
    from monai.data import DistributedSampler

    def as_rank(rank: int) -> None:  # a two-process group, seen from `rank`, without creating one
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: rank)

    as_rank(1)
    parser = _layered(example_dataset, cache_rate=0.0)
    assert parser.get_parsed_content("is_main_process") is False
    loader = parser.get_parsed_content("train#dataloader")
    assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.shuffle
    # one validation item for two ranks: both validate it rather than one rank idling
    parser["validate#datalist"] = [{"case": "case0"}]
    parser.parse()
    assert parser.get_parsed_content("validate#sampler") is None

    shards = []
    for rank in (0, 1):
        as_rank(rank)
        parser = _layered(example_dataset, cache_rate=0.0)
        parser["validate#datalist"] = [{"case": f"case{i}"} for i in range(3)]
        parser.parse()
        sampler = parser.get_parsed_content("validate#dataloader").sampler
        assert isinstance(sampler, DistributedSampler) and not sampler.shuffle
        shards.append(list(sampler))
    assert shards == [[0, 2], [1]]  # uneven shards, nothing repeated or left out


def _dataset_with_three_validation_items(example_dataset: Path, folder: Path) -> Path:
    """The example, with three validation items (T8, and T1, T4 taken from testing) for uneven shards on two ranks."""
    (folder / "data_lists").mkdir(parents=True)
    (folder / "cases").symlink_to(example_dataset / "cases", target_is_directory=True)
    datalist = json.loads((example_dataset / "data_lists" / "example_fold0.json").read_text())
    item, moved = datalist["validation"][0], [8, 11]
    datalist["validation"] = [{**item, "vertebrae": [v]} for v in (15, *moved)]
    for test_item in datalist["testing"]:
        test_item["vertebrae"] = [v for v in test_item["vertebrae"] if v not in moved]
    (folder / "data_lists" / "example_fold0.json").write_text(json.dumps(datalist))
    return folder


def _rank_config(train: dict, multi: dict) -> dict:
    """Per-rank output folders, and each rank's initial and final weights and validation state in ``rank{R}*.pt``."""
    weights = "{'network': @network.module.state_dict(), 'discriminator': @discriminator.module.state_dict()}"
    state = "@validate#evaluator.state"
    final = (
        f"dict({weights}, loss=float(@train#trainer.state.output[0]['loss']), val_iterations={state}.iteration, "
        f"metrics={state}.metrics, dice_details={state}.metric_details['val_mean_dice'])"
    )

    def path(suffix: str) -> str:
        return f"os.path.join(@bundle_root, 'rank' + str(@test_rank) + '{suffix}.pt')"

    return {
        "test_rank": "$torch.distributed.get_rank()",
        "ckpt_dir": "$os.path.join(@bundle_root, 'models_rank' + str(@test_rank))",
        "log_dir": "$os.path.join(@bundle_root, 'logs_rank' + str(@test_rank))",
        "validate#dataset#cache_rate": 0.0,
        "run": [f"$torch.save({weights}, {path('_initial')})", *train["run"]],
        "finalize": [f"$torch.save({final}, {path('')})", *multi["finalize"]],
    }


def _tiny_network() -> torch.nn.Module:
    """The generator of ``train.json`` with the ``TINY`` overrides, not wrapped."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"dataset_dir": ".", **TINY})
    return parser.get_parsed_content("network_def")


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(_same(a[k], b[k]) for k in a), [k for k in a if not _same(a[k], b[k])]


@pytest.mark.slow
def test_two_processes_train_identical_weights_and_only_rank0_writes(tmp_path, example_dataset):
    train, multi = _configs()
    dataset = _dataset_with_three_validation_items(example_dataset, tmp_path / "dataset")
    rank_config = tmp_path / "ranks.json"
    rank_config.write_text(json.dumps(_rank_config(train, multi)))
    root = tmp_path / "bundle"
    root.mkdir()
    torch.manual_seed(123)
    start_weights = _tiny_network().state_dict()
    torch.save(start_weights, tmp_path / "start.pt")
    overrides = {**TINY, "max_epochs": 1, "epoch_length": 2, "num_threads": 1}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
        "-m", "monai.bundle", "run", "training", "--meta_file", "configs/metadata.json",
        "--config_file", f"['configs/train.json','configs/multi_gpu_train.json','{rank_config}']",
        "--logging_file", "configs/logging.conf", "--bundle_root", str(root), "--dataset_dir", str(dataset),
        "--initial_weights", str(tmp_path / "start.pt"),
        *[arg for key, value in overrides.items() for arg in (f"--{key}", json.dumps(value))],
    ]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    print(f"torchrun, 2 processes: {time.monotonic() - start:.1f} s")
    assert done.returncode == 0, done.stderr[-10000:]

    initial = [torch.load(root / f"rank{r}_initial.pt", weights_only=True) for r in (0, 1)]
    final = [torch.load(root / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # `initial_weights` loaded into the unwrapped generator; its shape statistics then fitted on the training list
    statistics = {"prior.logits", "_extra_state"}
    _assert_same({k: v for k, v in initial[0]["network"].items() if k not in statistics}, {k: v for k, v in start_weights.items() if k not in statistics})
    assert initial[0]["network"]["_extra_state"]["volume_ranges_ml"] and initial[0]["network"]["prior.logits"].abs().sum() > 0
    for net in ("network", "discriminator"):
        _assert_same(initial[0][net], initial[1][net])  # D: DDP broadcast rank 0's weights (the ranks seed differently)
        _assert_same(final[0][net], final[1][net])  # ... and kept them identical through training
        unchanged = [
            k
            for k, v in final[0][net].items()
            if k not in statistics and isinstance(v, torch.Tensor) and v.ndim > 1 and torch.equal(v, initial[0][net][k])
        ]  # the shape prior is fitted before training, not trained
        assert not unchanged, f"{net}: weights not trained: {unchanged}"
    assert final[0]["loss"] != final[1]["loss"]  # each rank trained on its own samples

    # validation: uneven shards (2 + 1 items), scores gathered so that both ranks see all three
    assert [f["val_iterations"] for f in final] == [2, 1]
    assert final[0]["dice_details"].shape == (3, 1) and torch.equal(final[0]["dice_details"], final[1]["dice_details"])
    assert final[0]["metrics"] == final[1]["metrics"]
    assert final[0]["metrics"]["val_mean_dice"] == pytest.approx(final[0]["dice_details"].nanmean().item())

    # only rank 0 saved checkpoints and logs, with plain (unwrapped) state-dict keys
    assert not (root / "models_rank1").exists() and not (root / "logs_rank1").exists()
    assert (root / "logs_rank0" / "loss_curve.csv").is_file()
    model = torch.load(root / "models_rank0" / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in model)
    _tiny_network().load_state_dict(model)  # strict
    _assert_same(model, final[0]["network"])  # validated after the last iteration
    checkpoint = torch.load(root / "models_rank0" / "checkpoint_final.pt", weights_only=True)
    _assert_same(checkpoint["network"], final[0]["network"])
    _assert_same(checkpoint["discriminator"], final[0]["discriminator"])
    out = done.stdout + done.stderr
    assert out.count("Iter: 1/2") == 1 and out.count("Epoch[1] Metrics") == 1  # StatsHandlers of rank 0 only
    assert out.count("TransVertTrainer - INFO - Engine run resuming") == 1  # the engines of rank 1 log warnings only


def _same(a, b) -> bool:
    """Equal state-dict entries: tensors bit for bit, the network's extra state (grid, volume ranges) by value."""
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
