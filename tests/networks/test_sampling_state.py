"""What a TransVert model carries besides its weights: the sampling grid, the training volume ranges and the shape prior."""

from __future__ import annotations

import io
import math

import pytest
import torch

from transvert_monai.errors import CheckpointMismatchError
from transvert_monai.geometry import SamplingGrid
from transvert_monai.networks import TransVert
from transvert_monai.networks.shape_prior import ShapePrior, fit_training_statistics, nearest_level

SIZE = 16
GRID = SamplingGrid(patch_size=SIZE, target_size=SIZE)
L1, L2, T1, T2, T7, T12, T13 = 20, 21, 8, 9, 14, 19, 28


def tiny(grid: SamplingGrid = GRID, **kwargs) -> TransVert:
    return TransVert(channels=(4, 8), strides=(2, 2), sampling_grid=grid, **kwargs)


def box(lo: int, hi: int, size: int = SIZE) -> torch.Tensor:
    """A (1, S, S, S) 0/1 cube ``[lo, hi)`` along every axis."""
    t = torch.zeros(1, size, size, size)
    t[:, lo:hi, lo:hi, lo:hi] = 1.0
    return t


def fitted(grid: SamplingGrid = GRID) -> TransVert:
    """A prior network fitted on T1 (a 4³ cube, twice) and L1 (an 8³ cube) targets."""
    net = tiny(grid, shape_prior=True)
    return fit_training_statistics(net, [(T1, box(6, 10)), (T1, box(6, 10)), (L1, box(4, 12))])


def saved(net: torch.nn.Module) -> dict:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# ---------------------------------------------------------------------------- extra state
def test_state_dict_carries_grid_ranges_and_prior_through_weights_only_load():
    net = fitted()
    state = saved(net)
    assert state["_extra_state"]["sampling_grid"] == GRID.to_dict()
    other = tiny(shape_prior=True)
    other.load_state_dict(state)
    assert other.sampling_grid == GRID
    assert other.volume_ranges_ml == net.volume_ranges_ml  # floats survive torch.save exactly
    assert other.prior.trained_levels == [T1, L1]
    torch.testing.assert_close(other.prior.logits, net.prior.logits)


def test_volume_ranges_are_the_smallest_and_largest_training_volumes():
    net = fit_training_statistics(tiny(), [(T1, box(6, 10)), (T1, box(5, 10)), (L1, box(4, 12))])
    ml = GRID.target_spacing_mm**3 / 1000.0
    assert net.volume_ranges_ml[T1] == pytest.approx((64 * ml, 125 * ml))
    assert net.volume_ranges_ml[L1] == pytest.approx((512 * ml, 512 * ml))
    assert net.volume_range_ml(L2) == (L1, net.volume_ranges_ml[L1])  # an untrained level: the nearest one's


CHANGED_FIELDS = [
    ("pixel_mm_at_vertebra", 1.2),
    ("target_spacing_mm", 1.0),
    ("voi_mode", "none"),
    ("voi_radius_px", 2.0),
    ("target_coding", "index"),
]


@pytest.mark.parametrize("field,value", CHANGED_FIELDS, ids=[f for f, _ in CHANGED_FIELDS])
def test_weights_of_another_grid_are_refused_naming_the_field(field, value):
    other = SamplingGrid(**{**GRID.to_dict(), field: value})
    state = saved(tiny(other))
    with pytest.raises(CheckpointMismatchError, match=field):
        tiny(GRID).load_state_dict(state)


def test_weights_of_another_patch_size_are_refused_before_any_tensor():
    big = SamplingGrid(patch_size=32, target_size=32)
    state = saved(TransVert(channels=(4, 8), strides=(2, 2), sampling_grid=big))
    with pytest.raises(CheckpointMismatchError, match="patch_size"):
        tiny(GRID).load_state_dict(state)


def test_weights_without_a_grid_are_refused_with_a_clear_message():
    state = saved(tiny())
    del state["_extra_state"]
    with pytest.raises(CheckpointMismatchError, match="carry no sampling grid"):
        tiny().load_state_dict(state)


def test_non_strict_load_of_weights_without_a_grid_keeps_the_network_grid():
    state = saved(tiny())
    del state["_extra_state"]
    net = tiny()
    net.load_state_dict(state, strict=False)
    assert net.sampling_grid == GRID


# ---------------------------------------------------------------------------- shape prior
NEAREST_CASES = [
    (L1, [T1, L1], L1),
    (L2, [T1, L1], L1),  # absent lumbar level → the nearest trained one
    (T2, [T1, L1], T1),
    (T7, [T1, L1], T1),  # T7 is 6 levels from both: the cranial one
    (T13, [T12, L1], T12),  # T13 sits between T12 and L1: tie, cranial
    (T13, [T1, L1], L1),
]


@pytest.mark.parametrize("level,available,expected", NEAREST_CASES, ids=["own", "L2", "T2", "tie", "T13-tie", "T13"])
def test_nearest_level_follows_the_spine(level, available, expected):
    assert nearest_level(level, available) == expected


def test_nearest_level_needs_a_level():
    with pytest.raises(ValueError, match="no trained level"):
        nearest_level(L1, [])


def without_corners(lo: int, hi: int) -> torch.Tensor:
    """``box(lo, hi)`` less its 8 corner voxels: trilinear upsampling of the half-resolution prior rounds them off."""
    t = box(lo, hi).bool()
    for i in (lo, hi - 1):
        for j in (lo, hi - 1):
            for k in (lo, hi - 1):
                t[0, i, j, k] = False
    return t


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_prior_of_a_trained_level_is_its_mean_shape():
    net = fitted()
    with torch.no_grad():
        prior = net.prior(torch.tensor([T1, L1]), 2)
    assert torch.equal(prior[0] > 0, without_corners(6, 10))
    assert torch.equal(prior[1] > 0, without_corners(4, 12))
    # deep inside: the clipped certainty logit(0.98); far outside: logit(0.02)
    assert prior[1, 0, 8, 8, 8].item() == pytest.approx(logit(0.98), rel=1e-5)
    assert prior[1, 0, 0, 0, 0].item() == pytest.approx(logit(0.02), rel=1e-5)


def test_absent_level_takes_its_nearest_trained_levels_prior():
    net = fitted()
    with torch.no_grad():
        absent = net.prior(torch.tensor([L2, T2, 1]), 3)  # L2 → L1, T2 → T1, C1 → T1
        trained = net.prior(torch.tensor([L1, T1, T1]), 3)
    torch.testing.assert_close(absent, trained)


def test_prior_without_level_is_the_mean_over_all_training_vertebrae():
    net = fitted()
    with torch.no_grad():
        prior = net.prior(None, 1)[0]
    # mean occupancy: 1 inside the small cube (all three targets), 1/3 in the rest of the big one. Voxel (4, 8, 8)
    # lies a quarter into the empty coarse cell 1 and three quarters into coarse cell 2 along axis 0.
    assert prior[0, 8, 8, 8].item() == pytest.approx(logit(0.98), rel=1e-5)
    assert prior[0, 4, 8, 8].item() == pytest.approx(0.25 * logit(0.02) + 0.75 * logit(1 / 3), rel=1e-5)
    with torch.no_grad():
        lumbar = net.prior(torch.tensor([L1]), 1)[0]
    assert lumbar[0, 4, 8, 8].item() == pytest.approx(0.25 * logit(0.02) + 0.75 * logit(0.98), rel=1e-5)


def test_prior_fit_rejects_no_level_and_wrong_size():
    prior = ShapePrior(SIZE)
    with pytest.raises(ValueError, match="at least one trained level"):
        prior.fit({}, box(4, 12))
    with pytest.raises(ValueError, match="16"):
        prior.fit({L1: box(2, 6, size=8)}, box(2, 6, size=8))


def test_statistics_need_a_target():
    with pytest.raises(ValueError, match="no training target"):
        fit_training_statistics(tiny(shape_prior=True), [])


def test_zero_head_falls_back_to_the_prior():
    net = fitted().eval()
    with torch.no_grad():
        net.head.conv.weight.zero_()
        net.head.conv.bias.zero_()
        x = torch.randn(2, 4, SIZE, SIZE)
        level = torch.tensor([L1, L2])
        out = net(x, level)
        torch.testing.assert_close(out, net.prior(level, 2))
        assert torch.equal(GRID.to_mask(out, [L1, L2]), torch.stack([without_corners(4, 12)] * 2))


def test_network_without_prior_ignores_the_level():
    net = tiny().eval()
    x = torch.randn(1, 4, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(net(x, torch.tensor([L1])), net(x))


def test_prior_network_trains_through_the_correction():
    net = fitted()
    net(torch.randn(2, 4, SIZE, SIZE), torch.tensor([T1, L1])).abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert not net.prior.logits.requires_grad  # the prior is a buffer, fitted, not learnt


def test_torchscript_prior_network_equals_eager_with_and_without_level():
    net = fitted().eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 4, SIZE, SIZE)
    level = torch.tensor([T1, L2])
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, level), net(x, level))
        torch.testing.assert_close(scripted(x), net(x))
        assert not torch.allclose(net(x, level), net(x))  # the level matters
