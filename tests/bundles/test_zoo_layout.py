"""The bundle's files as a model-zoo reviewer reads them: JSON format, pins, licence, README sections."""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

import transvert_monai

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
CONFIGS = sorted((BUNDLE / "configs").glob("*.json"))
METADATA = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
#: what the configs and the package they compose import at run time (MONAI and torch have their own fields)
RUNTIME_PACKAGES = [
    "transvert_monai", "nibabel", "itk", "scikit-image", "pytorch-ignite", "scipy", "pydicom", "highdicom",
    "trimesh", "plotly", "pillow", "matplotlib", "fire", "pyyaml",
]  # fmt: skip
ZOO_SECTIONS = [
    "Model Overview", "Data", "Training configuration", "Performance", "Limitations", "References", "Authors",
]  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_in_the_zoo_json_format(path):
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=4) + "\n", f"reformat {path.name} with json.dumps(indent=4)"


def test_the_package_pin_is_the_package_version():
    assert METADATA["required_packages_version"]["transvert_monai"] == transvert_monai.__version__
    assert METADATA["version"] == transvert_monai.__version__


@pytest.mark.parametrize("name", RUNTIME_PACKAGES)
def test_every_runtime_package_is_pinned_to_an_exact_version(name):
    pin = METADATA["required_packages_version"].get(name)
    assert pin and re.fullmatch(r"\d+(\.\d+)+", pin), f"{name} must be pinned to an exact version, got {pin!r}"
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is pinned but not installed")
    # the pins are the versions the bundle was made with; a newer install may differ in the last parts only
    assert installed.split(".")[0] == pin.split(".")[0], f"{name} {installed} installed, {pin} pinned"


def test_monai_torch_and_numpy_fields_name_exact_versions():
    for key in ("monai_version", "pytorch_version", "numpy_version"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", METADATA[key]), key
    assert "transvert_monai" in METADATA["description"] and "pip install" in METADATA["description"]


def test_licence_is_the_full_apache_text_with_our_copyright():
    text = (BUNDLE / "LICENSE").read_text()
    assert text.startswith("Copyright 2026 the transvert_monai authors")
    clauses = [
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "1. Definitions.", "4. Redistribution.",
        "9. Accepting Warranty or Additional Liability.", "END OF TERMS AND CONDITIONS",
    ]  # fmt: skip
    for clause in clauses:
        assert clause in text
    assert len(text.splitlines()) > 190


def test_readme_has_the_zoo_sections_in_order():
    headings = re.findall(r"^## (.+)$", (BUNDLE / "docs" / "README.md").read_text(), flags=re.M)
    assert [h for h in headings if h in ZOO_SECTIONS] == ZOO_SECTIONS
