"""The paper's generator and discriminator losses (index coding: L1 on the raw output, as in §2.1) and the occupancy terms."""

from __future__ import annotations

import math

import pytest
import torch

from transvert_monai.losses import TransVertDiscriminatorLoss, TransVertGeneratorLoss


def full(value: float, *shape: int) -> torch.Tensor:
    return torch.full(shape, float(value))


PRED, TARGET = full(10.5, 2, 1, 4, 4, 4), full(10.0, 2, 1, 4, 4, 4)  # |error| 0.5 everywhere, 128 voxels
INDEX = {"target_coding": "index"}  # the paper's {0, i} regression: L1 on the raw output

# generator: (kwargs, fake outputs, expected) — L_G = α_G·L1 + α_D·(D − 1)²
GENERATOR_CASES = [
    ({}, None, 10 * 0.5),
    ({}, full(0.0, 2, 1, 2, 2, 2), 10 * 0.5 + 0.1 * 1.0),
    ({}, full(-1.0, 2, 1, 2, 2, 2), 10 * 0.5 + 0.1 * 4.0),  # true LSGAN: no LeakyReLU in front of D's output
    ({}, full(3.0, 2, 1, 2, 2, 2), 10 * 0.5 + 0.1 * 4.0),
    ({"alpha_g": 1.0, "alpha_d": 1.0}, full(0.5, 2, 1, 2, 2, 2), 0.5 + 0.25),
    # multi-scale list: the mean of the per-output means, not the mean over all patches
    ({}, [full(0.0, 2, 1, 2, 2, 2), full(3.0, 2, 1, 1, 1, 1)], 10 * 0.5 + 0.1 * (1.0 + 4.0) / 2),
    ({"reduction": "sum"}, full(0.0, 2, 1, 2, 2, 2), 10 * 0.5 * 128 + 0.1 * 16),
    ({"reduction": "sum"}, [full(0.0, 2, 1, 2, 2, 2), full(3.0, 2, 1, 1, 1, 1)], 10 * 64 + 0.1 * (16 + 2 * 4)),
]
GENERATOR_IDS = ["l1-only", "fake-0", "fake-negative", "fake-3", "weights", "list-mean", "sum", "list-sum"]

# discriminator: (kwargs, real outputs, fake outputs, expected) — L_D = (D(y) − 1)² + D(G(x))²
DISCRIMINATOR_CASES = [
    ({}, full(1.0, 2, 1, 2, 2, 2), full(0.0, 2, 1, 2, 2, 2), 0.0),
    ({}, full(0.5, 2, 1, 2, 2, 2), full(0.5, 2, 1, 2, 2, 2), 0.5),
    ({}, full(-1.0, 2, 1, 2, 2, 2), full(2.0, 2, 1, 2, 2, 2), 8.0),
    (
        {},
        [full(1.0, 2, 1, 2, 2, 2), full(3.0, 2, 1, 1, 1, 1)],
        [full(0.0, 2, 1, 2, 2, 2), full(1.0, 2, 1, 1, 1, 1)],
        (0.0 + 4.0) / 2 + (0.0 + 1.0) / 2,
    ),
    ({"reduction": "sum"}, full(0.5, 2, 1, 2, 2, 2), full(0.5, 2, 1, 2, 2, 2), 16 * 0.25 * 2),
]
DISCRIMINATOR_IDS = ["perfect", "undecided", "wrong", "list-mean", "sum"]

INVALID_CASES = [
    ({"alpha_g": -1.0}, "alpha_g"),
    ({"alpha_d": -0.1}, "alpha_d"),
    ({"dice_weight": -1.0}, "dice_weight"),
    ({"bce_weight": float("nan")}, "bce_weight"),
    ({"reduction": "max"}, "max"),
    ({"target_coding": "indices"}, "occupancy"),
    ({"target_coding": "index", "dice_weight": 1.0}, "index"),
    ({"target_coding": "index", "bce_weight": 1.0}, "index"),
]
INVALID_IDS = [
    "negative-alpha-g",
    "negative-alpha-d",
    "negative-dice",
    "nan-bce",
    "unknown-reduction",
    "unknown-coding",
    "dice-with-index-coding",
    "bce-with-index-coding",
]


@pytest.mark.parametrize("kwargs,fake,expected", GENERATOR_CASES, ids=GENERATOR_IDS)
def test_generator_loss_matches_hand_computed_value(kwargs, fake, expected):
    loss = TransVertGeneratorLoss(**INDEX, **kwargs)(PRED, TARGET, fake)
    torch.testing.assert_close(loss, torch.tensor(expected))


@pytest.mark.parametrize("kwargs,real,fake,expected", DISCRIMINATOR_CASES, ids=DISCRIMINATOR_IDS)
def test_discriminator_loss_matches_hand_computed_value(kwargs, real, fake, expected):
    torch.testing.assert_close(TransVertDiscriminatorLoss(**kwargs)(real, fake), torch.tensor(expected))


def test_none_reduction_gives_one_value_per_sample():
    pred = TARGET.clone()
    pred[1] += 1.0  # sample 0 exact, sample 1 off by one
    fake = torch.stack([full(1.0, 1, 2, 2, 2), full(0.0, 1, 2, 2, 2)])
    loss = TransVertGeneratorLoss(reduction="none", **INDEX)(pred, TARGET, fake)
    torch.testing.assert_close(loss, torch.tensor([0.0, 10.0 + 0.1]))
    d_loss = TransVertDiscriminatorLoss(reduction="none")(fake, fake)
    torch.testing.assert_close(d_loss, torch.tensor([1.0, 1.0]))


def test_losses_are_zero_at_identity():
    ones = full(1.0, 2, 1, 2, 2, 2)
    assert TransVertGeneratorLoss(**INDEX)(TARGET, TARGET, ones).item() == 0.0
    assert TransVertDiscriminatorLoss()(ones, torch.zeros_like(ones)).item() == 0.0


def test_generator_gradients_flow_to_prediction_and_discriminator_output():
    pred = PRED.clone().requires_grad_(True)
    fake = full(0.0, 2, 1, 2, 2, 2).requires_grad_(True)
    TransVertGeneratorLoss(**INDEX)(pred, TARGET, fake).backward()
    # d/dpred of 10·mean|pred − y| = 10/N · sign; d/dD of 0.1·mean (D − 1)² = 0.2 (D − 1)/M
    torch.testing.assert_close(pred.grad, torch.full_like(pred, 10 / 128))
    torch.testing.assert_close(fake.grad, torch.full_like(fake, 0.2 * -1 / 16))


def test_discriminator_gradients_flow_to_both_outputs():
    real = full(0.0, 2, 1, 2, 2, 2).requires_grad_(True)
    fake = full(1.0, 2, 1, 2, 2, 2).requires_grad_(True)
    TransVertDiscriminatorLoss()(real, fake).backward()
    torch.testing.assert_close(real.grad, torch.full_like(real, 2 * -1 / 16))
    torch.testing.assert_close(fake.grad, torch.full_like(fake, 2 * 1 / 16))


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        TransVertGeneratorLoss(**INDEX)(PRED, TARGET[:, :, :2])


@pytest.mark.parametrize("kwargs,match", INVALID_CASES, ids=INVALID_IDS)
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransVertGeneratorLoss(**kwargs)


# ----------------------------------------------------------------------------- occupancy coding
# logits z against a 0/1 target: L1 on sigmoid(z), BCE and soft Dice on the logits

OCC_TARGET = torch.zeros(2, 1, 4, 4, 4)
OCC_TARGET[:, :, 1:3, 1:3, :] = 1.0  # 2 × 2 × 4 = 16 of 64 voxels per sample
PERFECT_LOGITS = torch.where(OCC_TARGET > 0, 20.0, -20.0)
ZERO_LOGITS = torch.zeros_like(OCC_TARGET)

# (kwargs, expected at logit 0 everywhere): σ(0) = 0.5, so L1 = 0.5, BCE = log 2, and the soft Dice
# 1 − 2·0.5·16 / (0.5·64 + 16) = 2/3 (up to MONAI's 1e-5 smoothing)
OCCUPANCY_CASES = [
    ({}, 10 * 0.5),
    ({"bce_weight": 1.0}, 10 * 0.5 + math.log(2)),
    ({"dice_weight": 1.0}, 10 * 0.5 + 2 / 3),
    ({"alpha_g": 0.0, "dice_weight": 2.0, "bce_weight": 3.0}, 2 * 2 / 3 + 3 * math.log(2)),
]
OCCUPANCY_IDS = ["l1-on-sigmoid", "with-bce", "with-dice", "overlap-only"]


@pytest.mark.parametrize("kwargs,expected", OCCUPANCY_CASES, ids=OCCUPANCY_IDS)
def test_occupancy_loss_at_zero_logits_matches_hand_computed_value(kwargs, expected):
    loss = TransVertGeneratorLoss(**kwargs)(ZERO_LOGITS, OCC_TARGET)
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float32), atol=1e-4, rtol=1e-4)


def test_occupancy_l1_compares_the_sigmoid_not_the_logits():
    logits = torch.full_like(OCC_TARGET, 2.0)
    expected = 10 * (torch.sigmoid(logits) - OCC_TARGET).abs().mean()
    torch.testing.assert_close(TransVertGeneratorLoss()(logits, OCC_TARGET), expected)


def test_occupancy_terms_are_near_zero_at_a_perfect_logit_prediction():
    loss = TransVertGeneratorLoss(dice_weight=1.0, bce_weight=1.0)(PERFECT_LOGITS, OCC_TARGET)
    assert 0.0 <= loss.item() < 1e-6


def test_occupancy_loss_is_default_and_index_keeps_the_raw_l1():
    # a logit of 10.5 against 10: occupancy squashes it (σ ≈ 1, far from 10), index regresses it (0.5)
    assert TransVertGeneratorLoss()(PRED, TARGET).item() == pytest.approx(10 * (10 - torch.sigmoid(PRED[0, 0, 0, 0, 0]).item()), rel=1e-5)
    assert TransVertGeneratorLoss(**INDEX)(PRED, TARGET).item() == pytest.approx(5.0)


def test_occupancy_gradients_push_logits_toward_the_target():
    logits = ZERO_LOGITS.clone().requires_grad_(True)
    fake = full(0.0, 2, 1, 2, 2, 2).requires_grad_(True)
    TransVertGeneratorLoss(dice_weight=1.0, bce_weight=1.0)(logits, OCC_TARGET, fake).backward()
    grad = logits.grad
    assert torch.isfinite(grad).all()
    assert (grad[OCC_TARGET > 0] < 0).all()  # descending raises the foreground logits
    assert (grad[OCC_TARGET == 0] > 0).all()  # and lowers the background ones
    torch.testing.assert_close(fake.grad, torch.full_like(fake, 0.2 * -1 / 16))


def test_occupancy_none_reduction_gives_one_value_per_sample():
    logits = PERFECT_LOGITS.clone()
    logits[1] = 0.0  # sample 0 perfect, sample 1 undecided
    loss = TransVertGeneratorLoss(dice_weight=1.0, bce_weight=1.0, reduction="none")(logits, OCC_TARGET)
    assert loss.shape == (2,)
    assert loss[0].item() < 1e-6
    assert loss[1].item() == pytest.approx(10 * 0.5 + math.log(2) + 2 / 3, rel=1e-4)
