"""Model-zoo conformance of the transvert bundle, checked offline with MONAI's own bundle commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "monai" / "meta_schema_20240725.json"
SCHEMA_MD5 = "06954cad2cc5d3784e72077ac76f0fc8"


def _bundle(*args: str, cwd: Path = BUNDLE) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not SCHEMA.is_file(), reason=f"MONAI's metadata schema is expected at {SCHEMA} (shared/ beside the clone)")
def test_metadata_is_valid_against_monai_schema_without_download(tmp_path):
    schema = tmp_path / SCHEMA.name
    shutil.copy(SCHEMA, schema)
    out = _bundle(
        "verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", str(schema), "--hash_val", SCHEMA_MD5
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "metadata is verified with no error" in out.stdout + out.stderr
    assert "skipped downloading" in out.stdout + out.stderr


def test_network_input_and_output_match_the_metadata():
    out = _bundle(
        "verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json",
        "--config_file", "configs/train.json", "--device", "cpu", "--dataset_dir", ".",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "data shape of network is verified with no error" in out.stdout + out.stderr


def test_torchscript_export_gives_the_eager_output(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser["dataset_dir"] = "."
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def").eval()
    torch.save(network.state_dict(), tmp_path / "model.pt")
    out = _bundle(
        "ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"), "--ckpt_file", str(tmp_path / "model.pt"),
        "--meta_file", "configs/metadata.json", "--config_file", "configs/train.json", "--dataset_dir", ".",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.allclose(scripted(x), network(x), atol=1e-5)


def test_shipped_weights_match_the_checksum_in_the_docs_and_the_network():
    import hashlib
    import re

    from transvert_monai.apps.reconstruct import load_bundle_network

    weights = BUNDLE / "models" / "model.pt"
    assert weights.stat().st_size <= 25 * 2**20  # model-zoo limit for committed weights
    docs = (BUNDLE / "docs" / "README.md").read_text()
    documented = re.search(r"model\.pt` \(([\d.]+) MB, sha256\s+`([0-9a-f]{64})`", docs)
    assert documented, "docs/README.md must give the shipped weights' size and sha256"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == documented.group(2)
    assert abs(weights.stat().st_size / 1e6 - float(documented.group(1))) < 0.1
    network = load_bundle_network(BUNDLE)  # loads strictly, weights_only=True
    with torch.no_grad():
        assert network(torch.zeros(1, 4, 64, 64)).shape == (1, 1, 64, 64, 64)
