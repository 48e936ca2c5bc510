from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.data.meta_obj import set_track_meta

from tests.conftest import make_affine
from transvert_monai.geometry import ProjectionGeometry
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms import ExtractVertebraSamplesd, RandExtractVertebraSamplesd

K = TransVertKeys
GRID = {"patch_size": 32, "target_size": 24, "target_spacing_mm": 2.0, "pixel_mm_at_vertebra": 2.0}
SMALL = {"sampling_grid": GRID}


def small(**fields) -> dict:
    """The small test grid with some fields changed, as ``ExtractVertebraSamplesd`` arguments."""
    return {"sampling_grid": {**GRID, **fields}}

VOI_MODES = ["disc", "body", "vertebra", "none"]


@pytest.fixture
def case():
    """Two box 'vertebrae' (labels 20 and 21) in soft tissue, RAS 1 × 1 × 2.5 mm, with their centroids."""
    hu = torch.full((80, 80, 40), -1000.0)
    hu[10:70, 10:70, 2:38] = 40.0
    mask = torch.zeros(80, 80, 40, dtype=torch.uint8)
    mask[30:50, 35:55, 8:16] = 21  # lower
    mask[30:50, 35:55, 22:30] = 20  # upper
    hu[mask > 0] = 700.0
    affine = make_affine()
    centroids = {}
    for label in (20, 21):
        idx = (mask == label).nonzero().double().mean(0)
        centroids[label] = affine[:3, :3] @ idx + affine[:3, 3]
    return {
        K.CASE.value: "phantom",
        K.CT.value: MetaTensor(hu[None], affine=affine, meta={"filename_or_obj": "ct.nii.gz"}),
        K.MASK.value: MetaTensor(mask[None], affine=affine),
        K.CENTROIDS.value: centroids,
        K.VERTEBRAE.value: [20, 21],
    }


def test_one_sample_per_vertebra_with_packed_input_and_occupancy_target(case):
    samples = ExtractVertebraSamplesd(**SMALL)(case)
    assert [s[K.VERTEBRA.value] for s in samples] == [20, 21]
    for s in samples:
        image, label = s[K.IMAGE.value], s[K.LABEL.value]
        assert image.shape == (4, 32, 32) and label.shape == (1, 24, 24, 24)
        assert set(label.unique().tolist()) == {0.0, 1.0}  # occupancy: the level is not in the target
        for c in (0, 2):  # image channels are z-scored per patch
            assert abs(float(image[c].mean())) < 1e-4 and float(image[c].std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
        for c in (1, 3):  # VOI channels are 0/1 discs of radius 1 around the patch centre
            assert set(image[c].unique().tolist()) == {0.0, 1.0} and 1 <= image[c].sum() <= 5
            r, c_ = image[c].nonzero().float().mean(0).tolist()
            assert abs(r - 15.5) <= 1.0 and abs(c_ - 15.5) <= 1.0
        assert s[K.CASE.value] == "phantom" and K.CT.value not in s and K.MASK.value not in s


def test_index_coding_gives_the_papers_index_valued_target(case):
    occupancy = ExtractVertebraSamplesd(**SMALL)(case)
    index = ExtractVertebraSamplesd(**small(target_coding="index"))(case)
    for o, i in zip(occupancy, index):
        assert set(i[K.LABEL.value].unique().tolist()) == {0.0, float(i[K.VERTEBRA.value])}
        assert torch.equal(i[K.LABEL.value] > 0, o[K.LABEL.value] > 0)
        assert torch.equal(i[K.IMAGE.value], o[K.IMAGE.value])


def test_target_is_centred_on_the_vertebra(case):
    for s in ExtractVertebraSamplesd(**SMALL)(case):
        com = (s[K.LABEL.value][0] > 0).nonzero().float().mean(0)
        assert torch.allclose(com, torch.full((3,), 11.5), atol=0.75)


def test_image_meta_holds_both_views_and_the_label_affine_the_target_grid(case):
    s = ExtractVertebraSamplesd(**SMALL)(case)[0]
    image, label = s[K.IMAGE.value], s[K.LABEL.value]
    lat = ProjectionGeometry.from_dict(image.meta["lateral_geometry"])
    ap = ProjectionGeometry.from_dict(image.meta["ap_geometry"])
    assert lat.view == "lateral" and ap.view == "ap"
    centre = label.affine.double()[:3, :3] @ torch.full((3,), 11.5, dtype=torch.float64) + label.affine.double()[:3, 3]
    assert torch.allclose(centre, case[K.CENTROIDS.value][20], atol=1e-4)
    assert image.meta["filename_or_obj"] == "ct.nii.gz"


@pytest.mark.parametrize("mode", VOI_MODES)
def test_every_voi_mode_gives_the_same_shapes(case, mode):
    samples = ExtractVertebraSamplesd(**small(voi_mode=mode))(case)
    assert all(s[K.IMAGE.value].shape == (4, 32, 32) for s in samples)
    voi = samples[0][K.IMAGE.value][1]
    if mode == "none":
        assert not voi.any()
    else:
        assert voi.any()


def test_vertebra_shadow_is_larger_than_the_disc(case):
    disc = ExtractVertebraSamplesd(**small(voi_mode="disc"))(case)[0][K.IMAGE.value]
    whole = ExtractVertebraSamplesd(**small(voi_mode="vertebra"))(case)[0][K.IMAGE.value]
    assert whole[1].sum() > 20 * disc[1].sum() and whole[3].sum() > 20 * disc[3].sum()


def test_vertebrae_key_selects_the_vertebrae(case):
    case[K.VERTEBRAE.value] = [21]
    assert [s[K.VERTEBRA.value] for s in ExtractVertebraSamplesd(**SMALL)(case)] == [21]


def test_plain_tensors_when_meta_tracking_is_off(case):
    set_track_meta(False)
    try:
        s = ExtractVertebraSamplesd(**SMALL)(case)[0]
    finally:
        set_track_meta(True)
    assert type(s[K.IMAGE.value]) is torch.Tensor and type(s[K.LABEL.value]) is torch.Tensor


def test_random_pose_repeats_with_the_seed_and_is_shared_by_all_vertebrae(case):
    kwargs = dict(rotation_range_rad=0.1, translation_range_mm=10.0, view_angle_range_rad=0.05, **SMALL)
    a = RandExtractVertebraSamplesd(**kwargs).set_random_state(11)(case)
    b = RandExtractVertebraSamplesd(**kwargs).set_random_state(11)(case)
    c = RandExtractVertebraSamplesd(**kwargs).set_random_state(12)(case)
    for x, y in zip(a, b):
        assert torch.equal(x[K.IMAGE.value], y[K.IMAGE.value]) and torch.equal(x[K.LABEL.value], y[K.LABEL.value])
    assert not torch.equal(a[0][K.IMAGE.value], c[0][K.IMAGE.value])
    poses = [s[K.IMAGE.value].meta[K.POSE.value] for s in a]
    assert poses[0] == poses[1] and poses[0]["rotation_rad"] != [0.0, 0.0, 0.0]
    # the target follows the pose: its grid axes are the lateral view's axes
    lat = ProjectionGeometry.from_dict(a[0][K.IMAGE.value].meta["lateral_geometry"])
    axes = a[0][K.LABEL.value].affine.double()[:3, :3] / 2.0
    assert torch.allclose(axes[:, 0], lat.rotation[:, 1], atol=1e-6) and torch.allclose(axes[:, 1], lat.rotation[:, 0], atol=1e-6)


BAD_INPUTS = [
    ("empty_mask", ValueError, "empty"),
    ("centroid_outside", ValueError, "outside the CT"),
    ("missing_mask", KeyError, "mask"),
    ("unknown_vertebra", KeyError, "no centroid"),
    ("no_affine", TypeError, "affine"),
    ("centroids_path", TypeError, "LoadCentroidsd"),
    ("mask_grid", ValueError, "voxel grid"),
]


@pytest.mark.parametrize("what,error,match", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_problem(case, what, error, match):
    if what == "empty_mask":
        case[K.MASK.value] = MetaTensor(torch.zeros_like(case[K.MASK.value].as_tensor()), affine=case[K.MASK.value].affine)
    elif what == "centroid_outside":
        case[K.CENTROIDS.value][20] = torch.tensor([900.0, 0.0, 0.0], dtype=torch.float64)
    elif what == "missing_mask":
        del case[K.MASK.value]
    elif what == "unknown_vertebra":
        case[K.VERTEBRAE.value] = [20, 22]
    elif what == "no_affine":
        case[K.CT.value] = case[K.CT.value].as_tensor()
    elif what == "centroids_path":
        case[K.CENTROIDS.value] = "centroids.json"
    elif what == "mask_grid":
        case[K.MASK.value] = MetaTensor(case[K.MASK.value].as_tensor()[:, :-1], affine=case[K.MASK.value].affine)
    with pytest.raises(error, match=match):
        ExtractVertebraSamplesd(**SMALL)(case)


INVALID_INIT = [
    (small(voi_mode="centroid"), "disc"),
    (small(patch_size=0), "patch_size"),
    (small(target_spacing_mm=-1.0), "target_spacing_mm"),
    (small(target_coding="binary"), "occupancy"),
    ({"sampling_grid": {**GRID, "detector_spacing_mm": 1.8}}, "unknown sampling-grid fields"),
    ({"source_to_detector_mm": 100.0}, "shorter"),
]


@pytest.mark.parametrize("kwargs,match", INVALID_INIT, ids=["voi_mode", "patch_size", "target_spacing_mm", "coding", "unknown-field", "distances"])
def test_bad_parameters_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExtractVertebraSamplesd(**kwargs)


def test_fixed_poses_in_the_data_are_applied_pose_by_pose(case):
    from transvert_monai.transforms import with_fixed_poses

    items = with_fixed_poses([case], poses_per_item=3, seed=0, rotation_range_rad=0.1)
    poses = items[0][K.POSE.value]
    assert len(items) == 1 and len(poses) == 3
    assert poses[0]["rotation_rad"] == [0.0, 0.0, 0.0]  # the first pose is nominal
    samples = ExtractVertebraSamplesd(**SMALL)(items[0])
    assert len(samples) == 3 * 2  # poses × vertebrae
    assert [s[K.IMAGE.value].meta[K.POSE.value] for s in samples[::2]] == poses
    assert torch.equal(samples[0][K.IMAGE.value], ExtractVertebraSamplesd(**SMALL)(case)[0][K.IMAGE.value])
    assert not torch.equal(samples[2][K.IMAGE.value], samples[0][K.IMAGE.value])
    single = ExtractVertebraSamplesd(**SMALL)({**case, K.POSE.value: poses[1]})
    assert torch.equal(single[0][K.IMAGE.value], samples[2][K.IMAGE.value])
    again = with_fixed_poses([case], poses_per_item=3, seed=0, rotation_range_rad=0.1)
    assert again[0][K.POSE.value] == poses


def test_max_samples_draws_a_seeded_subset_of_vertebrae(case):
    kwargs = dict(max_samples=1, **SMALL)
    picks = {RandExtractVertebraSamplesd(**kwargs).set_random_state(s)(case)[0][K.VERTEBRA.value] for s in range(8)}
    assert picks == {20, 21}
    assert len(RandExtractVertebraSamplesd(**kwargs).set_random_state(0)(case)) == 1


def test_prepared_attenuation_is_reused_but_follows_voxel_edits_and_affine_changes(case):
    from transvert_monai.transforms import RandWorldScaled

    t = ExtractVertebraSamplesd(**SMALL)
    first = t(case)[0][K.IMAGE.value]
    assert torch.equal(t(case)[0][K.IMAGE.value], first)
    case[K.CT.value].as_tensor()[0, 10:70, 10:40, 2:38] += 300.0  # in place: the cache must notice
    edited = t(case)[0][K.IMAGE.value]
    assert not torch.equal(edited, first)
    assert torch.equal(edited, ExtractVertebraSamplesd(**SMALL)(case)[0][K.IMAGE.value])
    scaled = RandWorldScaled([K.CT.value, K.MASK.value], scale_range=0.2).set_random_state(0)(case)
    assert torch.equal(t(scaled)[0][K.IMAGE.value], ExtractVertebraSamplesd(**SMALL)(scaled)[0][K.IMAGE.value])


# ----------------------------------------------------------------------------- scale-true patches
def test_patch_pixel_spans_the_grid_length_at_the_vertebra_and_is_centred_on_its_projection(case):
    from transvert_monai.geometry import SamplingGrid

    grid = SamplingGrid(**GRID)
    for s in ExtractVertebraSamplesd(sampling_grid=grid)(case):
        image = s[K.IMAGE.value]
        lat = ProjectionGeometry.from_dict(image.meta["lateral_geometry"])
        centroid = case[K.CENTROIDS.value][s[K.VERTEBRA.value]]
        rc, depth = lat.project(centroid[None], return_depth=True)
        affine = image.affine.double()
        # one patch pixel = pixel_mm_at_vertebra · SDD / d on the detector
        step = grid.pixel_mm_at_vertebra * lat.source_to_detector_mm / float(depth[0])
        torch.testing.assert_close(torch.linalg.norm(affine[:3, :2], dim=0), torch.full((2,), step, dtype=torch.float64))
        # the patch centre, (P − 1) / 2 in both directions, is the projected centroid
        centre = affine[:3, :2] @ torch.full((2,), (grid.patch_size - 1) / 2, dtype=torch.float64) + affine[:3, 3]
        torch.testing.assert_close(centre, lat.pixel_to_world(rc)[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(torch.tensor(image.meta["centroid_px"][0], dtype=torch.float64), rc[0])


def test_unnormalised_patches_are_the_raw_line_integrals_of_the_normalised_ones(case):
    from transvert_monai.transforms.sample import zscore

    raw = ExtractVertebraSamplesd(normalize=False, **SMALL)(case)
    normalised = ExtractVertebraSamplesd(**SMALL)(case)
    for r, n in zip(raw, normalised):
        image = r[K.IMAGE.value].as_tensor()
        assert float(image[[0, 2]].min()) >= 0.0 and float(image[[0, 2]].mean()) > 1.0  # line integrals through tissue
        torch.testing.assert_close(zscore(image[[0, 2]]), n[K.IMAGE.value].as_tensor()[[0, 2]], atol=1e-5, rtol=1e-5)
        assert torch.equal(image[[1, 3]], n[K.IMAGE.value].as_tensor()[[1, 3]])
