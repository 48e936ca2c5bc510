from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.data.meta_obj import set_track_meta

from transvert_monai.transforms import DRRAppearance, RandDRRAppearance, zscore

IMAGES, VOIS = [0, 2], [1, 3]


def assert_network_input(out: torch.Tensor, source: torch.Tensor) -> None:
    """Image channels z-scored per patch, VOI channels untouched, float32."""
    assert out.dtype == torch.float32 and out.shape == source.shape
    assert torch.equal(torch.as_tensor(out)[..., VOIS, :, :], source[..., VOIS, :, :])
    images = torch.as_tensor(out)[..., IMAGES, :, :]
    torch.testing.assert_close(images.mean(dim=(-2, -1)), torch.zeros(images.shape[:-2]), atol=1e-5, rtol=0)
    std = images.std(dim=(-2, -1), unbiased=False)
    torch.testing.assert_close(std, torch.ones(images.shape[:-2]), atol=1e-4, rtol=0)


def test_identity_setting_is_the_plain_zscore_of_the_image_channels(sample, batch):
    for x in (sample, batch):
        out = DRRAppearance()(x)
        assert_network_input(out, x)
        torch.testing.assert_close(out[..., IMAGES, :, :], zscore(x[..., IMAGES, :, :]))


def test_fixed_appearance_changes_the_images(sample):
    out = DRRAppearance(curve="beer_lambert", attenuation_k=0.5, gamma=1.3, blur_sigma_px=1.0)(sample)
    assert_network_input(out, sample)
    assert (out[IMAGES] - zscore(sample[IMAGES])).abs().max() > 0.05


@pytest.mark.parametrize("shape", ["single", "batch"])
def test_same_seed_same_output_other_seed_other_output(sample, batch, shape):
    x = sample if shape == "single" else batch
    a = RandDRRAppearance().set_random_state(seed=7)(x)
    b = RandDRRAppearance().set_random_state(seed=7)(x)
    c = RandDRRAppearance().set_random_state(seed=8)(x)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert_network_input(a, x)


def test_views_and_samples_draw_independently_unless_shared(batch):
    t = RandDRRAppearance().set_random_state(seed=0)
    t(batch)
    gamma = t.params["gamma"]
    assert gamma.shape == (3, 2) and gamma[0, 0] != gamma[0, 1] and gamma[0, 0] != gamma[1, 0]
    shared = RandDRRAppearance(independent_views=False, independent_samples=False).set_random_state(seed=0)
    shared(batch)
    for values in shared.params.values():
        assert np.all(values == values.flat[0])
    # with shared parameters the two (identical) views come out identical, noise aside
    twin = batch.clone()
    twin[:, 2] = twin[:, 0]
    t = RandDRRAppearance(independent_views=False, noise_std_range=None, poisson_std_range=None)
    out = t.set_random_state(seed=1)(twin)
    torch.testing.assert_close(out[:, 0], out[:, 2])


def test_prob_zero_is_the_plain_zscore_and_randomize_false_reuses_the_draw(batch):
    out = RandDRRAppearance(prob=0.0).set_random_state(seed=0)(batch)
    torch.testing.assert_close(out, DRRAppearance()(batch))
    t = RandDRRAppearance().set_random_state(seed=0)
    first = t(batch)
    assert torch.equal(t(batch, randomize=False), first) and not torch.equal(t(batch), first)
    with pytest.raises(ValueError, match="randomize=True"):
        t(batch[0], randomize=False)


def test_prob_is_drawn_per_sample():
    x = torch.stack([torch.stack([torch.rand(8, 8) + 1, torch.zeros(8, 8)] * 2) for _ in range(64)])
    t = RandDRRAppearance(prob=0.5).set_random_state(seed=0)
    t(x)
    untouched = (t.params["gamma"] == 1.0).all(axis=1) & (t.params["blur_sigma_px"] == 0).all(axis=1)
    assert 16 < int(untouched.sum()) < 48


def test_metatensor_keeps_its_meta_and_plain_tensors_stay_plain(sample):
    m = MetaTensor(sample, meta={"filename_or_obj": "case1"})
    out = RandDRRAppearance().set_random_state(seed=0)(m)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "case1"
    assert type(RandDRRAppearance()(sample)) is torch.Tensor
    set_track_meta(False)
    try:
        out = RandDRRAppearance().set_random_state(seed=0)(m)
    finally:
        set_track_meta(True)
    assert not isinstance(out, MetaTensor)
    out_np = DRRAppearance()(sample.numpy().astype(np.float64))
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_device_of_the_input(batch):
    out = RandDRRAppearance().set_random_state(seed=0)(batch.cuda())
    assert out.device.type == "cuda"
    assert torch.equal(out, RandDRRAppearance().set_random_state(seed=0)(batch.cuda()))
    assert_network_input(out.cpu(), batch)


BAD_INIT = [
    ({"prob": 1.5}, "`prob`"),
    ({"beer_lambert_prob": -0.1}, "`beer_lambert_prob`"),
    ({"blur_sigma_range_px": (-1.0, 1.0)}, "`blur_sigma_range_px`"),
    ({"gamma_range": (1.5, 0.5)}, "`gamma_range` is inverted"),
    ({"gamma_range": (0.0, 1.0)}, "`gamma_range`"),
    ({"noise_std_range": (0.1,)}, "`noise_std_range`"),
    ({"attenuation_k_range": None}, "`attenuation_k_range`"),
]


@pytest.mark.parametrize("kwargs,match", BAD_INIT, ids=[m for _, m in BAD_INIT])
def test_bad_parameters_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandDRRAppearance(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match", [({"blur_sigma_px": -1.0}, "blur_sigma_px"), ({"curve": "log"}, "line_integral")]
)
def test_bad_fixed_parameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DRRAppearance(**kwargs)


def test_wrong_layout_is_rejected(sample):
    with pytest.raises(ValueError, match=r"packed sample \(4, P, P\)"):
        DRRAppearance()(sample[:2])
