"""Stacking per-vertebra shapes into the spine label map: crop followed by stack returns the original."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor, set_track_meta

from tests.conftest import make_affine, reorient
from transvert_monai.geometry import biplanar_views, view_aligned_frame, world_to_voxel
from transvert_monai.transforms.stacking import StackVertebrae, StackVertebraed, stack_vertebrae
from transvert_monai.transforms.voi import crop_vertebra_target

# three box "vertebrae" (T12, L1, L2) as RAS voxel slices of an 80 × 70 × 60 grid of 1 × 1 × 2.5 mm
BOXES = {
    19: (slice(20, 60), slice(20, 50), slice(4, 16)),
    20: (slice(22, 58), slice(18, 52), slice(20, 34)),
    21: (slice(18, 62), slice(15, 55), slice(38, 54)),
}


def label_volume(axcodes: str):
    vol = torch.zeros(80, 70, 60, dtype=torch.uint8)
    for label, box in BOXES.items():
        vol[box] = label
    return reorient(vol, make_affine(origin=(-40.0, -35.0, -75.0)), axcodes)


def crop_all(vol, affine, lat, ap, size=64, spacing=1.5):
    shapes, affines = [], []
    for label in BOXES:
        idx = (vol == label).nonzero().double().mean(0)
        centre = idx @ affine[:3, :3].T + affine[:3, 3]
        grid = view_aligned_frame(lat, ap, centre, size, spacing)
        shapes.append(crop_vertebra_target(vol, affine, label, grid, (size,) * 3))
        affines.append(grid)
    return torch.stack(shapes)[:, None], torch.stack(affines)


def back_on_grid(out, out_affine, shape, affine):
    """The stacked label map sampled (nearest) at the voxel centres of the original grid."""
    ijk = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij"), -1)
    o = torch.round(world_to_voxel(out_affine, ijk @ affine[:3, :3].T + affine[:3, 3])).long()
    inside = ((o >= 0) & (o < torch.tensor(out.shape))).all(-1)
    o = torch.minimum(o.clamp(min=0), torch.tensor(out.shape) - 1)
    return out[o[..., 0], o[..., 1], o[..., 2]] * inside


ROUND_TRIP_CASES = [("RAS", (0.0, 0.0, 0.0)), ("PIR", (0.2, -0.15, 0.3)), ("LPS", (0.0, 0.0, 0.4))]


@pytest.mark.parametrize("axcodes,rotation", ROUND_TRIP_CASES, ids=["ras-nominal", "pir-rotated", "lps-rotated"])
def test_crop_then_stack_returns_the_original(axcodes, rotation):
    vol, affine = label_volume(axcodes)
    lat, ap = biplanar_views((0.0, 0.0, 0.0), rotation_rad=rotation)
    shapes, affines = crop_all(vol, affine, lat, ap)
    out, out_affine = stack_vertebrae(shapes, list(BOXES), affines, spacing_mm=1.0)
    assert out.dtype == torch.uint8 and set(out.unique().tolist()) == {0, *BOXES}
    assert torch.allclose(out_affine[:3, :3], torch.eye(3, dtype=torch.float64))  # RAS-aligned, 1 mm
    back = back_on_grid(out, out_affine, vol.shape, affine)
    for label in BOXES:
        a, b = vol == label, back == label
        dice = float(2 * (a & b).sum() / (a.sum() + b.sum()))
        assert dice > 0.95, (label, dice)


def test_output_grid_covers_every_vertebra_grid_plus_the_margin():
    vol, affine = label_volume("RAS")
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    shapes, affines = crop_all(vol, affine, lat, ap, size=16, spacing=4.0)
    out, out_affine = stack_vertebrae(shapes, list(BOXES), affines, spacing_mm=2.0, margin_mm=6.0)
    corners = torch.cat(
        [(a[:3, :3] @ torch.tensor([[-0.5, 15.5]] * 3, dtype=torch.float64)).T + a[:3, 3] for a in affines]
    )
    lo = out_affine[:3, 3] - 1.0  # outer border of voxel 0
    hi = lo + 2.0 * torch.tensor(out.shape, dtype=torch.float64)
    assert (lo <= corners.amin(0) - 6.0 + 1e-9).all() and (hi >= corners.amax(0) + 6.0 - 1e-9).all()


def overlap_pair(pred_a: float, pred_b: float):
    """Two vertebrae on the same grid whose masks overlap in the middle slab (axis 0 indices 8–11)."""
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    grid = view_aligned_frame(lat, ap, (0.0, 0.0, 0.0), 20, 1.0)
    shapes = torch.zeros(2, 1, 20, 20, 20)
    shapes[0, 0, 2:12] = pred_a * 20  # L1 (20), prediction relative to its index
    shapes[1, 0, 8:18] = pred_b * 21  # L2 (21)
    out, out_affine = stack_vertebrae(shapes, [20, 21], torch.stack([grid, grid]), spacing_mm=1.0, margin_mm=0.0)
    # the output grid is the vertebra grid re-indexed: read the slab through the affines
    centre_slab = torch.tensor([[9.5, 10.0, 10.0], [4.0, 10.0, 10.0], [15.0, 10.0, 10.0]], dtype=torch.float64)
    world = centre_slab @ grid[:3, :3].T + grid[:3, 3]
    idx = torch.round(world_to_voxel(out_affine, world)).long()
    return [int(out[i, j, k]) for i, j, k in idx]


# (L1 prediction / index, L2 prediction / index) → owner of the overlap
OVERLAP_CASES = [((0.9, 0.6), 20), ((0.6, 0.9), 21), ((1.2, 1.1), 20), ((0.7, 0.75), 21)]


@pytest.mark.parametrize("preds,owner", OVERLAP_CASES, ids=["l1-surer", "l2-surer", "both-above-one", "close-call"])
def test_overlap_goes_to_the_larger_relative_margin(preds, owner):
    overlap, only_a, only_b = overlap_pair(*preds)
    assert (overlap, only_a, only_b) == (owner, 20, 21)


def test_tie_goes_to_the_nearer_centre():
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    grids = torch.stack([view_aligned_frame(lat, ap, (0.0, 0.0, z), 20, 1.0) for z in (4.0, -4.0)])
    shapes = torch.stack([torch.full((1, 20, 20, 20), 20.0), torch.full((1, 20, 20, 20), 21.0)])  # {0, i} targets
    out, out_affine = stack_vertebrae(shapes, [20, 21], grids, margin_mm=0.0)
    for z, owner in ((3.0, 20), (1.2, 20), (-1.2, 21), (-3.0, 21)):
        i, j, k = torch.round(world_to_voxel(out_affine, torch.tensor([0.0, 0.0, z], dtype=torch.float64))).long()
        assert int(out[i, j, k]) == owner


def test_empty_prediction_is_left_out():
    lat, ap = biplanar_views((0.0, 0.0, 0.0))
    grid = view_aligned_frame(lat, ap, (0.0, 0.0, 0.0), 8, 1.0)
    shapes = torch.zeros(2, 1, 8, 8, 8)
    shapes[0] = 20.0
    shapes[1] = 21 * 0.4  # below the threshold everywhere
    out, _ = stack_vertebrae(shapes, [20, 21], torch.stack([grid, grid]))
    assert set(out.unique().tolist()) == {0, 20}


INVALID_CASES = [
    ({"shapes": torch.zeros(2, 2, 4, 4, 4)}, r"\(B, 1, S, S, S\)"),
    ({"labels": [20]}, "one label per shape"),
    ({"labels": [20, 20]}, "distinct"),
    ({"labels": [20, 26]}, "VerSe"),
    ({"affines": torch.eye(4).repeat(3, 1, 1)}, r"\(B, 4, 4\)"),
    ({"affines": torch.zeros(2, 4, 4)}, "singular"),
    ({"spacing_mm": 0.0}, "spacing_mm"),
    ({"margin_mm": -1.0}, "margin_mm"),
]


@pytest.mark.parametrize(
    "kw,match",
    INVALID_CASES,
    ids=["channels", "label-count", "duplicate", "not-verse", "affine-count", "singular", "spacing", "margin"],
)
def test_invalid_input_is_rejected(kw, match):
    args = {"shapes": torch.zeros(2, 1, 4, 4, 4), "labels": [20, 21], "affines": torch.eye(4).repeat(2, 1, 1), **kw}
    with pytest.raises(ValueError, match=match):
        stack_vertebrae(**args)


@pytest.mark.parametrize("track", [True, False], ids=["meta", "plain"])
def test_stack_transform_output_follows_track_meta(track):
    shapes = torch.zeros(1, 1, 6, 6, 6)
    shapes[0, 0, 1:5, 1:5, 1:5] = 20.0
    set_track_meta(track)
    try:
        out = StackVertebrae(spacing_mm=1.0, margin_mm=2.0)(shapes, labels=[20], affines=torch.eye(4)[None])
    finally:
        set_track_meta(True)
    assert out.ndim == 4 and out.shape[0] == 1 and out.dtype == torch.uint8
    assert isinstance(out, MetaTensor) is track
    if track:
        assert out.affine[0, 0] == 1.0 and float(out.affine[0, 3]) == pytest.approx(-2.0)  # -0.5 - 2 + 0.5


def test_stack_transform_reads_labels_and_affines_from_meta():
    shapes = MetaTensor(torch.full((1, 1, 4, 4, 4), 20.0), affine=torch.eye(4)[None], meta={"vertebrae": [20]})
    assert int(StackVertebrae()(shapes).max()) == 20


def test_stack_transform_without_labels_says_what_to_pass():
    with pytest.raises(ValueError, match="labels"):
        StackVertebrae()(torch.zeros(1, 1, 4, 4, 4), affines=torch.eye(4)[None])


def test_dictionary_wrapper_writes_the_output_key():
    d = {"pred": torch.full((1, 1, 4, 4, 4), 20.0), "vertebrae": [20], "vertebra_affine": torch.eye(4)[None]}
    out = StackVertebraed(output_key="spine")(d)
    assert out["spine"].shape[0] == 1 and int(out["spine"].max()) == 20 and out["pred"] is d["pred"]
    with pytest.raises(KeyError, match="vertebra_affine"):
        StackVertebraed()({"pred": d["pred"], "vertebrae": [20]})
