from __future__ import annotations

import pytest
import torch
from monai.networks.nets import PatchDiscriminator

from transvert_monai.networks import TransVertDiscriminator

SHAPE_CASES = [
    ({}, 64, (6, 6, 6)),
    ({}, 32, (2, 2, 2)),
    ({}, 24, (1, 1, 1)),
    ({"num_layers_d": 2, "channels": 4}, 16, (2, 2, 2)),
]
SHAPE_IDS = ["default-64", "default-32", "default-min", "small-16"]

INVALID_INPUTS = [(1, 1, 23, 23, 23), (1, 2, 32, 32, 32), (1, 32, 32, 32)]
INVALID_INPUT_IDS = ["too-small", "two-channels", "4d"]


@pytest.mark.parametrize("kwargs,size,out", SHAPE_CASES, ids=SHAPE_IDS)
def test_output_is_the_final_patch_map(kwargs, size, out):
    y = TransVertDiscriminator(**kwargs)(torch.rand(2, 1, size, size, size) * 25)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1, *out)


def test_input_is_scaled_before_the_patch_discriminator():
    d = TransVertDiscriminator(channels=4, num_layers_d=2).eval()
    x = torch.randint(0, 26, (2, 1, 16, 16, 16)).float()
    with torch.no_grad():
        torch.testing.assert_close(d(x), PatchDiscriminator.forward(d, x / 25.0)[-1])


def test_smallest_size_is_reported():
    assert TransVertDiscriminator().min_spatial_size == 24


@pytest.mark.parametrize("shape", INVALID_INPUTS, ids=INVALID_INPUT_IDS)
def test_bad_input_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="TransVertDiscriminator expects"):
        TransVertDiscriminator()(torch.zeros(shape))


@pytest.mark.parametrize("scale", [0.0, -1.0], ids=["zero", "negative"])
def test_non_positive_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="input_scale"):
        TransVertDiscriminator(input_scale=scale)


def test_backward_reaches_input_and_parameters():
    d = TransVertDiscriminator(channels=4, num_layers_d=2)
    x = torch.rand(2, 1, 16, 16, 16, requires_grad=True)
    d(x).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())
