"""A training run killed mid-epoch resumes from its last checkpoint and continues the same curve, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from transvert_monai.handlers import TrainingState, read_loss_curve, resolve_checkpoint

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
CONFIGS = BUNDLE / "configs"
#: as the docs' resume command, small: coarse CT, tiny widths, 4 epochs of 2 iterations, a checkpoint per epoch
TINY = {
    "ct_spacing_mm": "[3.0,3.0,3.0]",
    "channels": "[4,8,16,32]",
    "discriminator_def#channels": "4",
    "max_vertebrae_per_case": "2",
    "max_epochs": "4",
    "epoch_length": "2",
    "val_interval": "1",
    "val_poses_per_vertebra": "1",
}


def _train(bundle_root: Path, dataset_dir: Path, extra_configs=(), **overrides) -> subprocess.CompletedProcess:
    configs = [str(CONFIGS / "train.json"), *map(str, extra_configs)]
    args = {**TINY, "bundle_root": str(bundle_root), "dataset_dir": str(dataset_dir), **overrides}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--meta_file", str(CONFIGS / "metadata.json"),
           "--config_file", json.dumps(configs), "--logging_file", str(CONFIGS / "logging.conf")]  # fmt: skip
    for k, v in args.items():
        cmd += [f"--{k}", v]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run(cmd, cwd=BUNDLE, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_killed_run_resumes_on_the_same_curve(tmp_path, example_dataset):
    reference = _train(tmp_path / "reference", example_dataset)
    assert reference.returncode == 0, reference.stderr[-3000:]
    # the same run, killed (SIGKILL, no clean-up) right after iteration 5: mid-epoch 3, after epoch 2's checkpoint
    kill = tmp_path / "kill.json"
    kill.write_text(json.dumps({
        "kill": "$lambda engine: os.kill(os.getpid(), 9)",
        "after_iteration_5": "$__import__('ignite.engine', fromlist=['Events']).Events.ITERATION_COMPLETED(once=5)",
        "run": ["$@train#trainer.add_event_handler(@after_iteration_5, @kill)", "$@train#trainer.run()"],
    }))  # fmt: skip
    killed = _train(tmp_path / "run", example_dataset, extra_configs=[kill])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    models = tmp_path / "run" / "models"
    assert not (models / "checkpoint_final.pt").exists()
    assert resolve_checkpoint("latest", models).endswith("checkpoint_epoch=2.pt")
    # resume as the docs show
    resumed = _train(tmp_path / "run", example_dataset, resume_checkpoint="latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    ref_curve = read_loss_curve(tmp_path / "reference" / "logs" / "loss_curve.csv")
    curve = read_loss_curve(tmp_path / "run" / "logs" / "loss_curve.csv")
    assert [r["iteration"] for r in ref_curve] == list(range(1, 9))
    # killed run: iterations 1–5; resumed run: epoch 3 again from its start, then epoch 4
    assert [r["iteration"] for r in curve] == [1, 2, 3, 4, 5, 5, 6, 7, 8]
    assert curve[:5] == ref_curve[:5]  # the seeded run repeats
    assert curve[5:] == ref_curve[4:]  # and the resumed part continues the same curve, bit for bit
    ref = torch.load(tmp_path / "reference" / "models" / "checkpoint_final.pt", weights_only=True)
    res = torch.load(models / "checkpoint_final.pt", weights_only=True)
    for key in ("network", "discriminator"):
        assert all(
            torch.equal(ref[key][k], res[key][k]) if isinstance(ref[key][k], torch.Tensor) else ref[key][k] == res[key][k]
            for k in ref[key]
        )
    assert res["training_state"]["epoch"] == 4 and res["training_state"]["iteration"] == 8


def test_resolve_checkpoint(tmp_path):
    assert resolve_checkpoint("", tmp_path) == ""
    with pytest.raises(FileNotFoundError, match="no '\\*_epoch=N.pt' checkpoint"):
        resolve_checkpoint("latest", tmp_path)
    for n in (2, 10, 9):
        (tmp_path / f"checkpoint_epoch={n}.pt").write_bytes(b"x")
    assert resolve_checkpoint("latest", tmp_path).endswith("checkpoint_epoch=10.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope.pt", tmp_path)


def test_training_state_round_trips_every_random_state():
    import random

    import numpy as np
    from monai.transforms import Compose, RandFlipd, RandGaussianNoised

    pipeline = Compose([RandFlipd("x", prob=0.5), Compose([RandGaussianNoised("x", prob=1.0)])])
    pipeline.set_random_state(3)
    state = TrainingState(pipeline)
    saved = state.state_dict()
    assert len(saved["transforms"]) == 2

    def draws():
        return (random.random(), float(np.random.rand()), float(torch.rand(1)), [float(t.R.rand()) for t in (pipeline.transforms[0], pipeline.transforms[1].transforms[0])])

    first = draws()
    # loads with weights_only=True (no pickled objects)
    import io

    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    state.load_state_dict(torch.load(buffer, weights_only=True))
    assert draws() == first
    with pytest.raises(ValueError, match="random states of 2 transforms"):
        TrainingState(Compose([RandFlipd("x", prob=0.5)])).load_state_dict(saved)
