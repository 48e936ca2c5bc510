from __future__ import annotations

import io

import pytest
import torch
from monai.bundle import ConfigParser

from transvert_monai.geometry import SamplingGrid
from transvert_monai.networks import CHANNEL_PRESETS, VARIANT_SWITCHES, TransVert, TransVertVariant

VARIANTS = [v.value for v in TransVertVariant]

# tiny configurations: (spatial_size, channels, strides)
TINY = {16: ((4, 8), (2, 2)), 32: ((4, 8, 8), (2, 2, 2))}


def grid_of(size: int, **fields) -> SamplingGrid:
    """A sampling grid of ``size``-pixel patches and ``size``³ targets (the network's size comes from it)."""
    return SamplingGrid(patch_size=size, target_size=size, **fields)


def tiny(spatial_size: int = 32, **kwargs) -> TransVert:
    channels, strides = TINY[spatial_size]
    return TransVert(channels=channels, strides=strides, sampling_grid=grid_of(spatial_size), **kwargs)


SHAPE_CASES = [(variant, size, skips) for variant in VARIANTS for size in TINY for skips in (True, False)]
SHAPE_IDS = [f"{v}-{s}-{'skips' if k else 'noskips'}" for v, s, k in SHAPE_CASES]

SWITCH_CASES = [
    ({"variant": "transvert"}, ("both", "anisotropic", True)),
    ({"variant": "no_attention"}, ("both", "anisotropic", False)),
    ({"variant": "naive_fusion"}, ("both", "outer_product", False)),
    ({"variant": "sagittal_only"}, ("lateral", "anisotropic", False)),
    ({"variant": "sagittal_only", "attention": True}, ("lateral", "anisotropic", True)),
    ({"variant": "transvert", "fusion": "outer_product"}, ("both", "outer_product", True)),
    ({"views": "lateral"}, ("lateral", "anisotropic", True)),
]
SWITCH_IDS = [
    "transvert",
    "no_attention",
    "naive_fusion",
    "sagittal_only",
    "override-attention",
    "override-fusion",
    "views",
]

INVALID_CASES = [
    ({"variant": "sagital"}, "sagittal_only"),
    ({"views": "coronal"}, "coronal"),
    ({"fusion": "concat"}, "concat"),
    ({"views": "lateral", "fusion": "outer_product"}, "views='both'"),
    ({"in_channels": 2}, "in_channels"),
    ({"out_channels": 0}, "out_channels"),
    ({"channels": (4, 0, 8)}, "channels"),
    ({"channels": ()}, "channels"),
    ({"strides": (2, 2)}, "strides"),
    ({"strides": (2, 0, 2)}, "strides"),
    ({"sampling_grid": {"patch_size": 36, "target_size": 36}}, "divisible"),
    ({"sampling_grid": {"patch_size": 8, "target_size": 8}}, "bottleneck"),
    ({"spatial_size": 16}, "differs from the sampling grid's patch_size"),
    ({"sampling_grid": {"patch_size": 32, "target_size": 16}}, "must be equal"),
    ({"sampling_grid": {"patch_size": 32, "target_size": 32, "target_coding": "index"}, "shape_prior": True}, "occupancy"),
]
INVALID_IDS = [
    "unknown-variant",
    "unknown-views",
    "unknown-fusion",
    "outer-product-one-view",
    "in-channels",
    "out-channels",
    "zero-channel",
    "empty-channels",
    "strides-length",
    "zero-stride",
    "not-divisible",
    "bottleneck-too-small",
    "spatial-size-not-the-grid's",
    "patch-and-target-sizes-differ",
    "prior-with-index-coding",
]

BAD_INPUTS = [(2, 3, 32, 32), (2, 5, 32, 32), (2, 4, 16, 16), (2, 4, 32, 16), (4, 32, 32), (2, 4, 32, 32, 32)]
BAD_INPUT_IDS = ["3-channels", "5-channels", "wrong-size", "not-square", "unbatched", "3d"]

# axis mapping: input channel perturbed → (view-aligned axes it sees, axis it is blind along)
AXIS_CASES = [(v, ch) for v in VARIANTS for ch in (0, 2) if not (v == "sagittal_only" and ch == 2)]
AXIS_IDS = [f"{v}-{'lateral' if ch == 0 else 'ap'}" for v, ch in AXIS_CASES]
SEEN_AXES = {0: (0, 1), 2: (0, 2)}
BLIND_AXIS = {0: 2, 2: 1}


@pytest.mark.parametrize("variant,size,skips", SHAPE_CASES, ids=SHAPE_IDS)
def test_output_shape(variant, size, skips):
    net = tiny(size, variant=variant, skip_connections=skips)
    assert net(torch.randn(2, 4, size, size)).shape == (2, 1, size, size, size)


def test_spatial_size_equal_to_the_grid_is_accepted():
    assert TransVert(spatial_size=16, channels=(4, 8), strides=(2, 2), sampling_grid=grid_of(16)).spatial_size == 16


def test_default_network_maps_64_patches_to_64_cubes():
    net = TransVert().eval()
    assert tuple(net.lateral_encoder.stem.embed_image.conv.weight.shape[:1]) == (CHANNEL_PRESETS["small"][0],)
    with torch.no_grad():
        assert net(torch.randn(1, 4, 64, 64)).shape == (1, 1, 64, 64, 64)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANTS)
def test_backward_reaches_every_parameter(variant):
    net = tiny(32, variant=variant)
    net(torch.randn(2, 4, 32, 32)).abs().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANTS)
def test_eval_mode_is_deterministic_with_dropout(variant):
    net = tiny(16, variant=variant, dropout=0.5)
    x = torch.randn(2, 4, 16, 16)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANTS)
def test_torchscript_round_trip_gives_same_output(variant):
    net = tiny(32, variant=variant).eval()
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_torchscript_model_still_checks_input():
    scripted = torch.jit.script(tiny(16).eval())
    with pytest.raises(torch.jit.Error, match="lat, lat_voi, ap, ap_voi"):
        scripted(torch.randn(1, 3, 16, 16))


def _centroid(delta: torch.Tensor) -> torch.Tensor:
    """Mass-weighted centroid (3,) of a non-negative (S, S, S) map."""
    grid = torch.arange(delta.shape[0], dtype=delta.dtype)
    mass = delta.sum()
    return torch.stack([(delta.sum(dims) * grid).sum() / mass for dims in ((1, 2), (0, 2), (0, 1))])


@pytest.mark.parametrize("variant,channel", AXIS_CASES, ids=AXIS_IDS)
def test_view_pixels_map_to_view_aligned_axes(variant, channel):
    """Moving a perturbation along a view's rows/columns moves the output change along the axes it sees only.

    A pixel at (r, c) of the lateral image affects a tube at (axis0≈r, axis1≈c) spread along axis 2;
    of the AP image a tube at (axis0≈r, axis2≈c) spread along axis 1. Comparing the centroid of
    |Δ output| for perturbations at (6, 6) and (25, 25) cancels border and content biases: it shifts
    by many voxels along the seen axes and hardly along the blind axis.
    """
    torch.manual_seed(0)
    net = tiny(32, variant=variant).eval()
    x = torch.randn(1, 4, 32, 32)
    centroids = []
    with torch.no_grad():
        reference = net(x)
        for rc in (6, 25):
            perturbed = x.clone()
            perturbed[0, channel, rc, rc] += 5.0
            centroids.append(_centroid((net(perturbed) - reference).abs()[0, 0]))
    shift = centroids[1] - centroids[0]
    for axis in SEEN_AXES[channel]:
        assert shift[axis] > 3.0, shift
    assert shift[BLIND_AXIS[channel]].abs() < 2.0, shift


def test_sagittal_only_ignores_ap_channels():
    net = tiny(16, variant="sagittal_only").eval()
    x = torch.randn(2, 4, 16, 16)
    y = x.clone()
    y[:, 2:] = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(y))
    assert net.ap_encoder is None


@pytest.mark.parametrize("kwargs,expected", SWITCH_CASES, ids=SWITCH_IDS)
def test_variant_sets_switches_and_explicit_switches_override(kwargs, expected):
    net = tiny(16, **kwargs)
    assert (net.views, net.fusion, net.attention) == expected


def test_every_variant_has_switches():
    assert set(VARIANT_SWITCHES) == set(TransVertVariant)


@pytest.mark.parametrize("kwargs,match", INVALID_CASES, ids=INVALID_IDS)
def test_bad_hyper_parameters_are_rejected(kwargs, match):
    params = {"sampling_grid": grid_of(32), "channels": (4, 8, 8), "strides": (2, 2, 2), **kwargs}
    with pytest.raises(ValueError, match=match):
        TransVert(**params)


def test_unknown_variant_lists_valid_names():
    with pytest.raises(ValueError) as error:
        tiny(16, variant="adversarial")
    for name in VARIANTS:
        assert name in str(error.value)


@pytest.mark.parametrize("shape", BAD_INPUTS, ids=BAD_INPUT_IDS)
def test_bad_input_shape_is_rejected(shape):
    with pytest.raises(ValueError, match=r"in_channels=4.*\[lat, lat_voi, ap, ap_voi\]"):
        tiny(32)(torch.randn(*shape))


def test_bundle_config_instantiates_by_dotted_path():
    config = {
        "network_def": {
            "_target_": "transvert_monai.networks.TransVert",
            "sampling_grid": {"patch_size": 16, "target_size": 16},
            "channels": [4, 8],
            "strides": [2, 2],
            "variant": "naive_fusion",
        }
    }
    net = ConfigParser(config).get_parsed_content("network_def")
    assert isinstance(net, TransVert) and net.fusion == "outer_product"


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANTS)
def test_every_variant_learns_a_box(variant):
    """Each ablation switch fits a {0, i} box from fixed inputs (32³ for speed): a variant that cannot learn shows here."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 32, 32)
    y = torch.zeros(2, 1, 32, 32, 32)
    y[:, :, 10:22, 12:20, 8:24] = 10.0
    net = TransVert(channels=(4, 8, 16, 32), variant=variant, sampling_grid=grid_of(32, target_coding="index"))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = (net(x) - y).abs().mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        fg = net(x) > 5.0
    dice = 2 * (fg & (y > 5)).sum() / (fg.sum() + (y > 5).sum())
    assert dice > 0.9
