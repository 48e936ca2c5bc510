"""``large_files.yml`` and :func:`fetch_bundle_weights`: weights fetched by URL and refused on a wrong hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from monai.apps.utils import HashCheckError

from transvert_monai.apps.bundle_files import fetch_bundle_weights, main, read_large_files
from transvert_monai.errors import TransVertInputError

pytest.importorskip("yaml")

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"


def make_bundle(root: Path, payload: bytes, hash_val: str, path: str = "models/model.pt") -> tuple[Path, Path]:
    """A bundle folder whose large_files.yml points at a ``file://`` copy of ``payload`` (the release asset)."""
    asset = root / "release" / "transvert_model.pt"
    asset.parent.mkdir(parents=True)
    asset.write_bytes(payload)
    bundle = root / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "large_files.yml").write_text(
        f'large_files:\n  - path: "{path}"\n    url: "{asset.as_uri()}"\n    hash_val: "{hash_val}"\n'
        '    hash_type: "sha256"\n'
    )
    return bundle, asset


PAYLOAD = b"weights" * 1000
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def test_large_files_lists_the_committed_weights_with_their_sha256():
    (entry,) = read_large_files(BUNDLE)
    weights = BUNDLE / entry["path"]
    assert entry["path"] == "models/model.pt" and entry["hash_type"] == "sha256"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == entry["hash_val"]
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert entry["url"].startswith("https://") and f"v{meta['version']}" in entry["url"]


def test_missing_weights_are_downloaded_and_verified(tmp_path):
    bundle, _ = make_bundle(tmp_path, PAYLOAD, SHA256)
    (path,) = fetch_bundle_weights(bundle)
    assert path == bundle / "models" / "model.pt" and path.read_bytes() == PAYLOAD


def test_present_weights_are_checked_not_downloaded(tmp_path):
    bundle, asset = make_bundle(tmp_path, PAYLOAD, SHA256)
    fetch_bundle_weights(bundle)
    asset.unlink()  # a second call must not need the URL
    assert fetch_bundle_weights(bundle)[0].read_bytes() == PAYLOAD


def test_a_download_with_another_hash_is_refused_and_not_kept(tmp_path):
    bundle, _ = make_bundle(tmp_path, PAYLOAD, "0" * 64)
    with pytest.raises(HashCheckError, match="hash check of downloaded file failed"):
        fetch_bundle_weights(bundle)
    assert not (bundle / "models" / "model.pt").exists()


def test_present_weights_with_another_hash_are_refused_and_left_alone(tmp_path):
    bundle, _ = make_bundle(tmp_path, PAYLOAD, SHA256)
    (bundle / "models").mkdir()
    (bundle / "models" / "model.pt").write_bytes(b"other weights")
    with pytest.raises(HashCheckError, match="existing file"):
        fetch_bundle_weights(bundle)
    assert (bundle / "models" / "model.pt").read_bytes() == b"other weights"


ENTRY = 'large_files:\n  - path: "{}"\n    url: "u"\n    hash_val: "h"\n    hash_type: "sha256"\n'
BAD_ENTRIES = [
    (ENTRY.format("../model.pt"), "without '..'"),
    (ENTRY.format("/tmp/model.pt"), "relative"),
    ('large_files:\n  - path: "models/model.pt"\n    url: "u"\n', "hash_val, hash_type"),
    ("files: []\n", "a list under `large_files`"),
]


@pytest.mark.parametrize("text,match", BAD_ENTRIES, ids=["dotdot", "absolute", "no-hash", "no-list"])
def test_bad_large_files_entries_are_refused(tmp_path, text, match):
    (tmp_path / "large_files.yml").write_text(text)
    with pytest.raises(TransVertInputError, match=match):
        fetch_bundle_weights(tmp_path)


def test_a_folder_without_large_files_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="large_files.yml"):
        fetch_bundle_weights(tmp_path)


def test_command_line_fetches(tmp_path):
    bundle, _ = make_bundle(tmp_path, PAYLOAD, SHA256)
    assert main([str(bundle)]) == 0 and (bundle / "models" / "model.pt").is_file()
