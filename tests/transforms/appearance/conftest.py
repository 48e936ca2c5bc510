from __future__ import annotations

import pytest
import torch


def line_integral_patch(size: int = 32, seed: int = 0) -> torch.Tensor:
    """A DRR-like (size, size) patch of line integrals: a soft-tissue slope, a bright 'bone' block, fine texture."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0.0, 1.0, size)[:, None]
    cols = torch.linspace(0.0, 1.0, size)[None, :]
    image = 4.0 + 1.0 * cols + 0.5 * rows
    image[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] += 2.5
    return image + 0.3 * torch.rand(size, size, generator=g)


def packed_sample(size: int = 32, seed: int = 0) -> torch.Tensor:
    """A packed sample (4, P, P): [lat, lat_voi, ap, ap_voi] with raw line integrals and 0/1 VOI discs."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((rows - size / 2) ** 2 + (cols - size / 2) ** 2) < (size / 4) ** 2).float()
    return torch.stack([line_integral_patch(size, seed), disc, line_integral_patch(size, seed + 1).T, disc])


@pytest.fixture
def sample() -> torch.Tensor:
    return packed_sample()


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.stack([packed_sample(seed=s) for s in range(3)])
