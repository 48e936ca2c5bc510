"""Scale-true training patches: a vertebra covers the same number of patch pixels at every magnification."""

from __future__ import annotations

import pytest
import torch

from transvert_monai.geometry import SamplingGrid, biplanar_views, grid_centre_mm
from transvert_monai.transforms.drr.functional import hu_to_mu
from transvert_monai.transforms.sample import extract_vertebra_samples

# (SID, SDD): magnifications 1.385, 1.2 and 1.118 at the isocentre
ACQUISITIONS = [(1300.0, 1800.0), (1500.0, 1800.0), (1700.0, 1900.0)]


def fwhm_px(profile: torch.Tensor) -> float:
    """Full width at half maximum (patch pixels) of a one-bump profile, crossings interpolated linearly."""
    p = profile.double()
    half = float(p.max()) / 2
    above = (p >= half).nonzero().flatten()
    first, last = int(above[0]), int(above[-1])
    left = first - (float(p[first]) - half) / (float(p[first]) - float(p[first - 1]))
    right = last + (float(p[last]) - half) / (float(p[last]) - float(p[last + 1]))
    return right - left


def box_extents(box_phantom, grid: SamplingGrid, sid: float, sdd: float, offset_mm=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """(lateral rows, lateral cols, AP rows, AP cols) extent of the box's shadow in patch pixels."""
    hu, affine, (lo, hi) = box_phantom
    centre = (lo + hi) / 2
    iso = grid_centre_mm(affine, hu.shape) - torch.tensor(offset_mm, dtype=torch.float64)  # the box off the isocentre
    lat, ap = biplanar_views(iso, source_to_isocentre_mm=sid, source_to_detector_mm=sdd, detector_size_px=(64, 64))
    s = extract_vertebra_samples(hu_to_mu(hu), affine, {20: centre}, lat, ap, grid=grid, with_target=False, normalize=False)
    mid = grid.patch_size // 2
    extents = []
    for channel in (0, 2):
        image = s.image[0, channel]
        extents.append(fwhm_px(image[:, mid - 1 : mid + 1].mean(1)))  # along the rows (S → I)
        extents.append(fwhm_px(image[mid - 1 : mid + 1].mean(0)))  # along the columns
    return torch.tensor(extents, dtype=torch.float64)


@pytest.mark.parametrize("offset_mm", [(0.0, 0.0, 0.0), (30.0, -20.0, 15.0)], ids=["at-isocentre", "off-isocentre"])
def test_box_covers_the_same_patch_pixels_at_every_magnification(box_phantom, offset_mm):
    grid = SamplingGrid()
    extents = torch.stack([box_extents(box_phantom, grid, sid, sdd, offset_mm) for sid, sdd in ACQUISITIONS])
    # the box is 60 (x) × 40 (y) × 50 (z) mm: S–I 50 mm, P–A 40 mm, R–L 60 mm at 1.5 mm per patch pixel, plus the
    # penumbra of the rays that cross the box obliquely (measured: within 1.2 %, spread 0.05 px)
    nominal = torch.tensor([50.0, 40.0, 50.0, 60.0], dtype=torch.float64) / grid.pixel_mm_at_vertebra
    assert ((extents - nominal).abs() < 0.03 * nominal).all(), extents
    spread = extents.max(0).values - extents.min(0).values
    assert (spread < 0.5).all(), extents


def test_fixed_detector_pixels_would_change_the_size_with_magnification(box_phantom):
    """The check above can fail: the old rendering (a fixed 1.8 mm detector pixel) shows the box ~15–24 % larger at 1300/1800."""
    hu, affine, (lo, hi) = box_phantom
    extents = []
    for sid, sdd in ACQUISITIONS:
        # a fixed 1.8 mm detector pixel is a pixel of 1.8 · d / SDD mm at a vertebra at depth d (here d = SID)
        grid = SamplingGrid(pixel_mm_at_vertebra=1.8 * sid / sdd)
        extents.append(box_extents(box_phantom, grid, sid, sdd))
    ratio = extents[0] / extents[2]  # magnification 1.385 against 1.118
    assert (ratio > 1.15).all(), ratio  # measured 1.21–1.24
