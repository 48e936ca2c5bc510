from __future__ import annotations

import pytest
import torch

from transvert_monai.losses import TransVertDiscriminatorLoss, TransVertGeneratorLoss


def full(value: float, *shape: int) -> torch.Tensor:
    return torch.full(shape, float(value))


PRED, TARGET = full(10.5, 2, 1, 4, 4, 4), full(10.0, 2, 1, 4, 4, 4)  # |error| 0.5 everywhere, 128 voxels

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

INVALID_CASES = [({"alpha_g": -1.0}, "alpha_g"), ({"alpha_d": -0.1}, "alpha_d"), ({"reduction": "max"}, "max")]
INVALID_IDS = ["negative-alpha-g", "negative-alpha-d", "unknown-reduction"]


@pytest.mark.parametrize("kwargs,fake,expected", GENERATOR_CASES, ids=GENERATOR_IDS)
def test_generator_loss_matches_hand_computed_value(kwargs, fake, expected):
    loss = TransVertGeneratorLoss(**kwargs)(PRED, TARGET, fake)
    torch.testing.assert_close(loss, torch.tensor(expected))


@pytest.mark.parametrize("kwargs,real,fake,expected", DISCRIMINATOR_CASES, ids=DISCRIMINATOR_IDS)
def test_discriminator_loss_matches_hand_computed_value(kwargs, real, fake, expected):
    torch.testing.assert_close(TransVertDiscriminatorLoss(**kwargs)(real, fake), torch.tensor(expected))


def test_none_reduction_gives_one_value_per_sample():
    pred = TARGET.clone()
    pred[1] += 1.0  # sample 0 exact, sample 1 off by one
    fake = torch.stack([full(1.0, 1, 2, 2, 2), full(0.0, 1, 2, 2, 2)])
    loss = TransVertGeneratorLoss(reduction="none")(pred, TARGET, fake)
    torch.testing.assert_close(loss, torch.tensor([0.0, 10.0 + 0.1]))
    d_loss = TransVertDiscriminatorLoss(reduction="none")(fake, fake)
    torch.testing.assert_close(d_loss, torch.tensor([1.0, 1.0]))


def test_losses_are_zero_at_identity():
    ones = full(1.0, 2, 1, 2, 2, 2)
    assert TransVertGeneratorLoss()(TARGET, TARGET, ones).item() == 0.0
    assert TransVertDiscriminatorLoss()(ones, torch.zeros_like(ones)).item() == 0.0


def test_generator_gradients_flow_to_prediction_and_discriminator_output():
    pred = PRED.clone().requires_grad_(True)
    fake = full(0.0, 2, 1, 2, 2, 2).requires_grad_(True)
    TransVertGeneratorLoss()(pred, TARGET, fake).backward()
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
        TransVertGeneratorLoss()(PRED, TARGET[:, :, :2])


@pytest.mark.parametrize("kwargs,match", INVALID_CASES, ids=INVALID_IDS)
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransVertGeneratorLoss(**kwargs)
