"""SamplingGrid (the sampling a model was trained with) and scale-true patch pixels."""

from __future__ import annotations

import json

import pytest
import torch

from transvert_monai.geometry import SamplingGrid, TargetCoding, VOIMode, ap_view, lateral_view, scale_true_patch_pixels

# ----------------------------------------------------------------------------- SamplingGrid
INVALID_GRIDS = [
    ({"patch_size": 0}, "`patch_size` must be a positive whole number, got 0"),
    ({"patch_size": 63.5}, "`patch_size` must be a positive whole number"),
    ({"target_size": 64.0001}, "`target_size` must be a positive whole number"),
    ({"target_spacing_mm": -1.5}, "`target_spacing_mm` must be a positive finite number, got -1.5"),
    ({"target_spacing_mm": float("inf")}, "`target_spacing_mm` must be a positive finite number"),
    ({"pixel_mm_at_vertebra": 0.0}, "`pixel_mm_at_vertebra` must be a positive finite number"),
    ({"voi_radius_px": -1}, "`voi_radius_px` must be a non-negative number, got -1"),
    ({"voi_mode": "centroid"}, "disc"),  # look_up_option lists the choices
    ({"target_coding": "binary"}, "occupancy"),
]
INVALID_IDS = [
    "zero-patch",
    "fractional-patch",
    "fractional-target-size",
    "negative-spacing",
    "infinite-spacing",
    "zero-pixel",
    "negative-radius",
    "unknown-voi",
    "unknown-coding",
]


@pytest.mark.parametrize("fields,match", INVALID_GRIDS, ids=INVALID_IDS)
def test_bad_grid_fields_are_rejected_with_the_field_named(fields, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        SamplingGrid(**fields)


TYPE_ERRORS = [
    ({"patch_size": "64"}, "`patch_size` must be a positive whole number, got '64' (str)"),
    ({"target_size": True}, "`target_size` must be a positive whole number, got True (bool)"),
    ({"pixel_mm_at_vertebra": "1.5"}, "`pixel_mm_at_vertebra` must be a positive finite number, got '1.5' (str)"),
    ({"voi_radius_px": None}, "`voi_radius_px` must be a non-negative number, got None"),
]


@pytest.mark.parametrize("fields,match", TYPE_ERRORS, ids=["str-patch", "bool-target", "str-pixel", "none-radius"])
def test_grid_fields_of_the_wrong_type_are_config_type_errors(fields, match):
    from transvert_monai.errors import ConfigTypeError

    with pytest.raises(ConfigTypeError, match=match.replace("(", r"\(").replace(")", r"\)")):
        SamplingGrid(**fields)
    with pytest.raises(TypeError):  # a ConfigTypeError is a TypeError
        SamplingGrid(**fields)


def test_default_grid_is_the_papers_sizes_with_occupancy():
    grid = SamplingGrid()
    assert (grid.patch_size, grid.target_size, grid.target_spacing_mm, grid.pixel_mm_at_vertebra) == (64, 64, 1.5, 1.5)
    assert grid.voi_mode == VOIMode.DISC and grid.voi_radius_px == 1.0 and grid.target_coding == TargetCoding.OCCUPANCY


def test_fields_are_normalised_to_plain_values():
    grid = SamplingGrid(patch_size=32.0, target_size=32, voi_mode=VOIMode.BODY, target_coding="index", voi_radius_px=2)
    assert type(grid.patch_size) is int and type(grid.voi_radius_px) is float
    assert grid.voi_mode == "body" and type(grid.voi_mode) is str and grid.target_coding == "index"


def test_dict_round_trip_is_exact_and_json_safe():
    grid = SamplingGrid(patch_size=32, target_size=48, target_spacing_mm=2.0, pixel_mm_at_vertebra=1.25, voi_mode="none", target_coding="index")
    data = json.loads(json.dumps(grid.to_dict()))
    assert SamplingGrid.from_dict(data) == grid
    assert SamplingGrid.from_dict(grid) is grid
    assert hash(SamplingGrid.from_dict(data)) == hash(grid)  # frozen: usable as a key


def test_from_dict_rejects_unknown_fields_and_non_mappings():
    with pytest.raises(ValueError, match=r"unknown sampling-grid fields \['detector_spacing_mm'\]"):
        SamplingGrid.from_dict({"patch_size": 64, "detector_spacing_mm": 1.8})
    with pytest.raises(ValueError, match="mapping"):
        SamplingGrid.from_dict([64, 64])


def test_grid_is_immutable():
    with pytest.raises(AttributeError):
        SamplingGrid().patch_size = 32  # type: ignore[misc]


def test_differences_name_each_differing_field_with_both_values():
    a = SamplingGrid()
    b = SamplingGrid(pixel_mm_at_vertebra=1.2, target_coding="index")
    assert a.differences(b) == {"pixel_mm_at_vertebra": (1.5, 1.2), "target_coding": ("occupancy", "index")}
    assert a.differences(SamplingGrid()) == {}


@pytest.mark.parametrize("sdd,sid,expected", [(1800, 1500, 1.8), (1800, 1300, 1.5 * 1800 / 1300), (1900, 1700, 1.5 * 1900 / 1700)])
def test_nominal_detector_spacing_is_the_grid_pixel_at_the_isocentre(sdd, sid, expected):
    assert SamplingGrid().nominal_detector_spacing_mm(sdd, sid) == pytest.approx(expected)
    assert SamplingGrid().detector_pixel_mm(sdd / sid) == pytest.approx(expected)


CROP = torch.tensor([[0, 20, 20], [0, 0, 20]], dtype=torch.uint8)[None]  # a {0, i} crop of L1 (20)


def test_occupancy_target_mask_and_probability():
    grid = SamplingGrid()
    target = grid.make_target(CROP)
    assert target.dtype == torch.float32 and torch.equal(target, (CROP > 0).float())
    logits = torch.tensor([[-3.0, 0.0, 2.0], [-0.1, 0.1, 5.0]])[None]
    assert torch.equal(grid.to_mask(logits, 20), logits > 0)  # the level plays no part
    assert torch.equal(grid.to_mask(logits, 8), logits > 0)
    torch.testing.assert_close(grid.to_probability(logits, 20), torch.sigmoid(logits))


def test_index_target_mask_and_probability():
    grid = SamplingGrid(target_coding="index")
    target = grid.make_target(CROP)
    assert target.dtype == torch.float32 and set(target.unique().tolist()) == {0.0, 20.0}
    out = torch.tensor([[[9.0, 10.5, 30.0]], [[3.0, 4.5, 8.0]]])  # L1 (threshold 10) then T1 (threshold 4)
    assert grid.to_mask(out, [20, 8]).tolist() == [[[False, True, True]], [[False, True, True]]]
    assert grid.to_mask(out[:1], 20).tolist() == [[[False, True, True]]]
    torch.testing.assert_close(grid.to_probability(out, [20, 8]), torch.tensor([[[0.45, 0.525, 1.0]], [[0.375, 0.5625, 1.0]]]))


def test_index_mask_needs_one_positive_level_per_output():
    grid = SamplingGrid(target_coding="index")
    with pytest.raises(ValueError, match="one positive VerSe index per output"):
        grid.to_mask(torch.zeros(3, 1, 2), [20, 21])
    with pytest.raises(ValueError, match="one positive VerSe index per output"):
        grid.to_mask(torch.zeros(1, 1, 2), 0)


# ----------------------------------------------------------------------------- scale-true patch pixels
# (view, SID, SDD, detector spacing (row, col)): magnifications 1.12–1.38, square and non-square pixels
VIEWS = [
    (lateral_view, 1500.0, 1800.0, (1.8, 1.8)),
    (lateral_view, 1300.0, 1800.0, (0.15, 0.2)),
    (ap_view, 1700.0, 1900.0, (1.2, 0.9)),
    (ap_view, 1000.0, 1200.0, (0.5, 0.5)),
]
VIEW_IDS = ["lateral-1.2", "lateral-1.38-nonsquare", "ap-1.12-nonsquare", "ap-1.2"]
DEPTHS = [-80.0, 0.0, 120.0]  # mm from the isocentre towards the detector
PATCH, PIXEL_MM = 64, 1.5


def point_at(geometry, depth_from_iso: float, offset_rc_mm=(0.0, 0.0)) -> torch.Tensor:
    """A world point ``depth_from_iso`` mm past the isocentre along the central ray, moved in the detector's plane."""
    size = geometry.detector_size_px
    centre = geometry.pixel_to_world(torch.tensor([(size[0] - 1) / 2, (size[1] - 1) / 2]))
    beam = (centre - geometry.source_mm) / torch.linalg.norm(centre - geometry.source_mm)
    row_dir, col_dir = (geometry.detector_affine()[:3, i] / torch.linalg.norm(geometry.detector_affine()[:3, i]) for i in (0, 1))
    iso = geometry.source_mm + beam * geometry.source_to_isocentre_mm
    return iso + beam * depth_from_iso + row_dir * offset_rc_mm[0] + col_dir * offset_rc_mm[1]


def patch_coordinates(pixels: torch.Tensor, rc: torch.Tensor) -> torch.Tensor:
    """Detector (row, col) → patch (row, col) of a patch with pixel grid ``pixels`` (P, P, 2) (axis-aligned, uniform)."""
    origin = pixels[0, 0]
    step = torch.stack((pixels[1, 0, 0] - pixels[0, 0, 0], pixels[0, 1, 1] - pixels[0, 0, 1]))
    return (rc - origin) / step


@pytest.mark.parametrize("preset,sid,sdd,spacing", VIEWS, ids=VIEW_IDS)
@pytest.mark.parametrize("depth_from_iso", DEPTHS)
@pytest.mark.parametrize("offset", [(0.0, 0.0), (-150.0, 40.0)], ids=["central-ray", "off-axis"])
def test_points_one_grid_pixel_apart_at_the_object_are_one_patch_pixel_apart(preset, sid, sdd, spacing, depth_from_iso, offset):
    g = preset(source_to_isocentre_mm=sid, source_to_detector_mm=sdd, detector_size_px=(2000, 1500), detector_spacing_mm=spacing)
    p = point_at(g, depth_from_iso, offset)
    rc, depth = g.project(p[None], return_depth=True)
    assert float(depth[0]) == pytest.approx(sid + depth_from_iso)
    pixels = scale_true_patch_pixels(g, rc, depth, PATCH, PIXEL_MM)[0]
    centre = torch.full((2,), (PATCH - 1) / 2, dtype=torch.float64)
    torch.testing.assert_close(patch_coordinates(pixels, rc[0]), centre, atol=1e-9, rtol=0)
    for axis in (0, 1):  # 1.5 mm along the detector rows / columns, at the same depth
        step = [0.0, 0.0]
        step[axis] = PIXEL_MM
        moved = point_at(g, depth_from_iso, (offset[0] + step[0], offset[1] + step[1]))
        expected = centre.clone()
        expected[axis] += 1.0
        torch.testing.assert_close(patch_coordinates(pixels, g.project(moved[None])[0]), expected, atol=1e-9, rtol=0)


def test_patch_step_is_pixel_length_times_magnification_over_detector_spacing():
    g = lateral_view(source_to_isocentre_mm=1300.0, source_to_detector_mm=1800.0, detector_spacing_mm=(0.15, 0.2))
    rc = torch.tensor([[100.0, 200.0], [50.25, 60.75]])
    depth = torch.tensor([1300.0, 1200.0])
    pixels = scale_true_patch_pixels(g, rc, depth, 5, 1.5)
    assert pixels.shape == (2, 5, 5, 2) and pixels.dtype == torch.float64
    for b in range(2):
        m = 1800.0 / float(depth[b])
        torch.testing.assert_close(pixels[b, 1:, 0, 0] - pixels[b, :-1, 0, 0], torch.full((4,), 1.5 * m / 0.15, dtype=torch.float64))
        torch.testing.assert_close(pixels[b, 0, 1:, 1] - pixels[b, 0, :-1, 1], torch.full((4,), 1.5 * m / 0.2, dtype=torch.float64))
        torch.testing.assert_close(pixels[b, 2, 2], rc[b].double())  # odd patch: the centre is a pixel


@pytest.mark.parametrize(
    "depth,size,pixel_mm", [([0.0], 8, 1.5), ([-10.0], 8, 1.5), ([1500.0, 1500.0], 8, 1.5), ([1500.0], 0, 1.5), ([1500.0], 8, 0.0)],
    ids=["zero-depth", "negative-depth", "depth-count", "zero-size", "zero-pixel"],
)
def test_bad_patch_arguments_are_rejected(depth, size, pixel_mm):
    with pytest.raises(ValueError, match="positive"):
        scale_true_patch_pixels(lateral_view(), torch.tensor([[10.0, 10.0]]), torch.tensor(depth), size, pixel_mm)
