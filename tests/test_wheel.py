"""The wheel carries the bundle as package data, so an installed ``transvert-reconstruct`` finds it.

The wheel is built from a copy of the sources (setup.py's ``build_py`` copies ``bundles/transvert`` into
``transvert_monai/bundle``) and read with ``zipfile``; it is not installed here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [
    "transvert_monai/bundle/configs/inference.json",
    "transvert_monai/bundle/configs/metadata.json",
    "transvert_monai/bundle/models/model.pt",
    "transvert_monai/bundle/docs/README.md",
    "transvert_monai/bundle/LICENSE",
    "transvert_monai/bundle/large_files.yml",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "eval", "logs", "checkpoint*.pt", "*.ts")
    shutil.copytree(ROOT / "transvert_monai", src / "transvert_monai", ignore=ignore)
    shutil.copytree(ROOT / "bundles" / "transvert", src / "bundles" / "transvert", ignore=ignore)
    out = tmp_path_factory.mktemp("wheels")
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("transvert_monai-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_the_bundle(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names
    bundle = [n for n in names if n.startswith("transvert_monai/bundle/")]
    assert not [n for n in bundle if "checkpoint" in n or n.endswith(".ts")]


@pytest.mark.slow
def test_wheel_weights_are_the_committed_weights(wheel):
    data = zipfile.ZipFile(wheel).read("transvert_monai/bundle/models/model.pt")
    committed = (ROOT / "bundles" / "transvert" / "models" / "model.pt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(committed).hexdigest()
