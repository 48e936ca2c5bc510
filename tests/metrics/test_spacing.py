from __future__ import annotations

import math

import pytest
import torch
from monai.data import MetaTensor, list_data_collate

from transvert_monai.metrics import per_item_spacing_mm, resolve_spacing_mm

VALID_CASES = [
    (1.5, 2, [(1.5, 1.5, 1.5)] * 2),
    ((1.0, 2.0, 2.5), 1, [(1.0, 2.0, 2.5)]),
    ([[1.0], [2.0]], 2, [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0)]),
    (torch.tensor([[1.0, 1.0, 2.0], [3.0, 3.0, 3.0]]), 2, [(1.0, 1.0, 2.0), (3.0, 3.0, 3.0)]),
]
INVALID_CASES = [
    (0.0, 1, "positive"),
    (-1.5, 1, "positive"),
    (float("nan"), 1, "positive"),
    ((1.0, 2.0), 1, "one number or three"),
    ([[1.0], [2.0], [3.0]], 2, "needs 2 entries"),
]


def rotated_affine(spacing):
    """Affine with a 30° rotation about axis 2 and the given column lengths."""
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = rotation * torch.tensor(spacing, dtype=torch.float64)
    affine[:3, 3] = torch.tensor([10.0, -20.0, 5.0])
    return affine


@pytest.mark.parametrize("spacing, batch, expected", VALID_CASES, ids=["scalar", "triple", "per-item", "tensor"])
def test_spacing_argument_gives_one_triple_per_item(spacing, batch, expected):
    assert [pytest.approx(t) for t in expected] == per_item_spacing_mm(spacing, batch)


@pytest.mark.parametrize("spacing, batch, message", INVALID_CASES, ids=["zero", "negative", "nan", "two", "count"])
def test_bad_spacing_is_rejected(spacing, batch, message):
    with pytest.raises(ValueError, match=message):
        per_item_spacing_mm(spacing, batch)


def test_spacing_comes_from_the_column_norms_of_a_rotated_affine():
    y = MetaTensor(torch.zeros(1, 1, 4, 4, 4), affine=rotated_affine((1.0, 1.5, 2.5)))
    assert resolve_spacing_mm(y, spacing_mm=9.0) == [pytest.approx((1.0, 1.5, 2.5))]


def test_collated_batch_gives_each_item_its_own_spacing():
    items = [MetaTensor(torch.zeros(1, 4, 4, 4), affine=rotated_affine((s, s, s))) for s in (1.0, 2.0)]
    y = list_data_collate(items)
    assert resolve_spacing_mm(y) == [pytest.approx((1.0,) * 3), pytest.approx((2.0,) * 3)]


def test_plain_tensor_uses_the_argument():
    assert resolve_spacing_mm(torch.zeros(1, 1, 4, 4, 4), spacing_mm=0.8) == [pytest.approx((0.8,) * 3)]


def test_affine_is_ignored_when_asked():
    y = MetaTensor(torch.zeros(1, 1, 4, 4, 4), affine=rotated_affine((2.0, 2.0, 2.0)))
    assert resolve_spacing_mm(y, spacing_mm=1.5, from_affine=False) == [pytest.approx((1.5,) * 3)]
