"""Every command of the bundle's docs/README.md runs, in the order the page gives them.

The commands are read from the page's ``bash`` blocks, not copied here, so a command changed in the
docs is the command tested. Each runs from the bundle folder with small settings appended (a coarse
CT, tiny widths, one or two short epochs), its placeholders (``N``, ``lat.dcm``, ``out``, the
schema file, ``models/model.ts``) replaced by real files in a temporary folder, and its outputs
checked.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
README = BUNDLE / "docs" / "README.md"
SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "monai" / "meta_schema_20240725.json"
TINY = [
    "--ct_spacing_mm", "[3.0,3.0,3.0]", "--channels", "[4,8,16,32]", "--discriminator_def#channels", "4",
    "--max_vertebrae_per_case", "2", "--max_epochs", "1", "--epoch_length", "2", "--val_interval", "1",
    "--val_poses_per_vertebra", "1", "--eval_poses_per_vertebra", "1",
]  # fmt: skip


def documented_commands(text: str) -> list[list[str]]:
    """The shell commands of the ``bash`` blocks of a markdown page (continuation lines joined)."""
    commands, block = [], None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            block = [] if line.strip() == "```bash" and block is None else None
            continue
        if block is not None:
            block.append(line)
            if not line.rstrip().endswith("\\"):
                joined = " ".join(part.rstrip().rstrip("\\") for part in block).strip()
                if joined and not joined.startswith("#"):
                    commands.append(shlex.split(joined))
                block = []
    return commands


def test_the_docs_show_the_commands_this_test_knows():
    commands = documented_commands(README.read_text())
    kinds = [_kind(c) for c in commands]
    assert kinds == [
        "install", "fetch", "cd", "train", "train_paper", "resume", "multi_gpu", "evaluate", "inference", "stacking",
        "verify_metadata", "verify_net_in_out", "ckpt_export",
    ]  # fmt: skip


def _kind(cmd: list[str]) -> str:
    text = " ".join(cmd)
    if cmd[0] == "cd":
        return "cd"
    if cmd[:2] == ["pip", "install"]:
        return "install"
    if "transvert_monai.apps.bundle_files" in cmd:
        return "fetch"
    if cmd[0] == "torchrun":
        return "multi_gpu"
    for verb in ("verify_metadata", "verify_net_in_out", "ckpt_export"):
        if verb in cmd:
            return verb
    if "--resume_checkpoint" in cmd:
        return "resume"
    if "train_paper.json" in text:
        return "train_paper"
    if "run" in cmd and "training" in cmd:
        return "train"
    if "evaluate.json" in text:
        return "evaluate"
    if "stacking.json" in text:
        return "stacking"
    if "inference.json" in text:
        return "inference"
    raise AssertionError(f"a documented command this test does not know how to run: {text}")


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path, example_dataset, example_radiographs):
    schema = tmp_path / "meta_schema_20240725.json"
    if SCHEMA.is_file():
        shutil.copy(SCHEMA, schema)
    roots = {"train": tmp_path / "run", "resume": tmp_path / "run", "evaluate": tmp_path / "run",
             "train_paper": tmp_path / "paper", "multi_gpu": tmp_path / "ddp"}  # fmt: skip
    swap = {
        "lat.dcm": str(example_radiographs["lateral"]), "ap.dcm": str(example_radiographs["ap"]),
        "centroids.json": str(example_radiographs["centroids"]), "meta_schema_20240725.json": str(schema),
        "models/model.ts": str(tmp_path / "model.ts"),
    }  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for cmd in documented_commands(README.read_text()):
        kind = _kind(cmd)
        if kind == "cd":
            assert (Path(__file__).resolve().parents[2] / cmd[1]).resolve() == BUNDLE
            continue
        if kind == "install":  # not run here: the wheel it names is the bundle's pinned package version
            meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
            assert cmd[2] == f"transvert_monai-{meta['required_packages_version']['transvert_monai']}-py3-none-any.whl"
            continue
        if kind == "verify_metadata" and not SCHEMA.is_file():
            raise AssertionError(f"MONAI's metadata schema is expected at {SCHEMA} (shared/ beside the clone)")
        argv = [swap.get(a, a) for a in cmd]
        if argv[0] == "python":
            argv[0] = sys.executable
        if argv[0] == "torchrun":
            argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
            argv = [a.replace("--nproc_per_node=N", "--nproc_per_node=2") for a in argv]
        if kind == "inference" or kind == "stacking":
            argv[argv.index("--output_dir") + 1] = str(tmp_path / kind)
        if kind in roots:
            argv += [*TINY, "--bundle_root", str(roots[kind]), "--dataset_dir", str(example_dataset)]
            if kind == "resume":  # one more epoch than the run it resumes
                argv[argv.index("--max_epochs", argv.index("--resume_checkpoint")) + 1] = "2"
        done = subprocess.run(argv, cwd=BUNDLE, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr[-3000:]}"
        log = done.stdout + done.stderr
        if kind in ("train", "train_paper", "multi_gpu"):
            assert (roots[kind] / "models" / "model.pt").is_file(), kind
        elif kind == "resume":
            assert "Restored all variables from" in log and "checkpoint_epoch=1.pt" in log
            assert (roots[kind] / "models" / "checkpoint_checkpoint_epoch=2.pt").is_file()
        elif kind == "evaluate":
            assert (roots[kind] / "eval" / "vertebra_metrics.csv").is_file()
        elif kind in ("inference", "stacking"):
            assert (tmp_path / kind / "summary.json").is_file()
            assert (tmp_path / kind / "spine.nii.gz").is_file() == (kind == "stacking")
        elif kind == "verify_metadata":
            assert "metadata is verified with no error" in log and "skipped downloading" in log
        elif kind == "verify_net_in_out":
            assert "data shape of network is verified with no error" in log
        elif kind == "fetch":  # the committed weights are present: checked against large_files.yml, not downloaded
            assert "checked" in log and "sha256 verified" in log
        elif kind == "ckpt_export":
            assert (tmp_path / "model.ts").is_file()
