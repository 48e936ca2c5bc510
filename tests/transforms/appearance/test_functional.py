from __future__ import annotations

import math

import pytest
import torch

from tests.transforms.appearance.conftest import line_integral_patch
from transvert_monai.transforms import drr_appearance, gaussian_blur, intensity_ramp, minmax_normalise, zscore

# one variation at a time, each away from the identity setting
SWITCHES = [
    {"beer_lambert": True, "attenuation_k": 0.5},
    {"gamma": 0.7},
    {"gamma": 1.4},
    {"blur_sigma_px": 1.0},
    {"noise_std": 0.05},
    {"poisson_std": 0.05},
    {"gradient_amplitude": 0.3, "gradient_angle_rad": 1.0},
]
SWITCH_IDS = ["beer-lambert", "gamma-low", "gamma-high", "blur", "noise", "poisson", "gradient"]


@pytest.fixture
def images() -> torch.Tensor:
    return torch.stack([line_integral_patch(seed=0), line_integral_patch(seed=1)])


def high_frequency_energy(image: torch.Tensor) -> float:
    """Mean squared difference of neighbouring pixels (both axes) of a z-scored image."""
    return float((image.diff(dim=-1) ** 2).mean() + (image.diff(dim=-2) ** 2).mean())


def test_identity_setting_is_the_plain_zscore(images):
    torch.testing.assert_close(drr_appearance(images), zscore(images))


@pytest.mark.parametrize("params", SWITCHES, ids=SWITCH_IDS)
def test_each_switch_changes_the_output_and_keeps_it_zscored(images, params):
    out = drr_appearance(images, generator=torch.Generator().manual_seed(0), **params)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert (out - zscore(images)).abs().max() > 0.05
    torch.testing.assert_close(out.mean(dim=(-2, -1)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(-2, -1), unbiased=False), torch.ones(2), atol=1e-4, rtol=0)


def test_beer_lambert_is_the_zscored_absorbed_fraction_and_monotone_in_the_line_integral():
    ramp = torch.linspace(0.0, 10.0, 64 * 64).reshape(1, 64, 64)
    out = drr_appearance(ramp, beer_lambert=True, attenuation_k=0.4)
    torch.testing.assert_close(out, zscore(1 - torch.exp(-0.4 * ramp)))
    assert bool((out.reshape(-1).diff() > 0).all())  # strictly increasing: bone stays brighter
    # the curve saturates: thick regions are compressed relative to the linear image
    linear = zscore(ramp).reshape(-1)
    assert float(out.reshape(-1).diff()[-1]) < float(linear.diff()[-1]) < float(out.reshape(-1).diff()[0])


def test_gamma_acts_on_the_min_max_normalised_patch(images):
    out = drr_appearance(images, gamma=0.6)
    torch.testing.assert_close(out, zscore(minmax_normalise(images) ** 0.6))
    assert float(minmax_normalise(images).amin()) == 0.0 and float(minmax_normalise(images).amax()) == 1.0


def test_blur_reduces_high_frequency_energy(images):
    before = high_frequency_energy(drr_appearance(images))
    after = [high_frequency_energy(drr_appearance(images, blur_sigma_px=s)) for s in (0.5, 1.0, 2.0)]
    assert before > after[0] > after[1] > after[2]


def test_blur_keeps_a_constant_image_and_the_mean_of_a_periodic_one():
    flat = torch.full((1, 16, 16), 3.0)
    torch.testing.assert_close(gaussian_blur(flat, torch.tensor(1.5).reshape(1, 1, 1)), flat)
    # a per-image sigma of zero leaves that image alone while its neighbour is blurred
    pair = torch.stack([line_integral_patch(16), line_integral_patch(16, seed=2)])
    out = gaussian_blur(pair, torch.tensor([0.0, 1.0]).reshape(2, 1, 1))
    torch.testing.assert_close(out[0], pair[0])
    assert not torch.allclose(out[1], pair[1])


def test_gradient_ramp_rises_in_its_direction():
    along_cols = intensity_ramp((8, 8), torch.tensor(0.0).reshape(1, 1))
    along_rows = intensity_ramp((8, 8), torch.tensor(math.pi / 2).reshape(1, 1))
    assert float(along_cols[:, 0].max()) == pytest.approx(0.0, abs=1e-6)
    assert float(along_cols[:, -1].min()) == pytest.approx(1.0, abs=1e-6)
    assert float(along_rows[-1].min()) == pytest.approx(1.0, abs=1e-6)
    diagonal = intensity_ramp((8, 8), torch.tensor(math.pi / 4).reshape(1, 1))
    assert float(diagonal.min()) == pytest.approx(0.0, abs=1e-6) and float(diagonal[-1, -1]) == pytest.approx(1.0)
    flat = torch.full((1, 8, 8), 5.0)
    flat[0, 0, 0] = 6.0  # a non-zero spread, so the ramp has a height
    out = drr_appearance(flat, gradient_amplitude=1.0, gradient_angle_rad=0.0)
    assert float(out[0, 4, -1]) > float(out[0, 4, 0])


def test_noise_follows_the_generator(images):
    kw = {"noise_std": 0.05, "poisson_std": 0.05}
    a = drr_appearance(images, generator=torch.Generator().manual_seed(3), **kw)
    b = drr_appearance(images, generator=torch.Generator().manual_seed(3), **kw)
    c = drr_appearance(images, generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    # the added noise is about 5 % of the image's spread, not more
    assert 0.01 < float((a - zscore(images)).std()) < 0.15


def test_per_image_parameters_equal_separate_calls(images):
    both = drr_appearance(
        images,
        beer_lambert=torch.tensor([1.0, 0.0]),
        gamma=torch.tensor([0.8, 1.2]),
        blur_sigma_px=torch.tensor([0.0, 1.0]),
    )
    first = drr_appearance(images[:1], beer_lambert=True, gamma=0.8)
    second = drr_appearance(images[1:], gamma=1.2, blur_sigma_px=1.0)
    torch.testing.assert_close(both, torch.cat([first, second]))


BAD = [
    ({"blur_sigma_px": -0.5}, "blur_sigma_px"),
    ({"gamma": 0.0}, "gamma"),
    ({"attenuation_k": -1.0}, "attenuation_k"),
    ({"noise_std": float("nan")}, "noise_std"),
    ({"poisson_std": -0.1}, "poisson_std"),
    ({"gradient_amplitude": -1.0}, "gradient_amplitude"),
    ({"gamma": torch.ones(3)}, "gamma"),
]


@pytest.mark.parametrize("params,name", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_parameters_name_themselves(images, params, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        drr_appearance(images, **params)


def test_zscored_input_is_rejected_with_the_fix(images):
    with pytest.raises(ValueError, match="without z-scoring"):
        drr_appearance(zscore(images))
    with pytest.raises(ValueError, match="finite"):
        drr_appearance(torch.full((1, 4, 4), float("nan")))
