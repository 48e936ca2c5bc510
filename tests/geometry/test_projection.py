from __future__ import annotations

import math

import pytest
import torch

from transvert_monai.geometry import (
    ProjectionGeometry,
    ap_view,
    biplanar_views,
    lateral_view,
    rotation_matrix,
    triangulate,
    view_aligned_axes,
    view_aligned_frame,
)

ISO = (10.0, -20.0, 30.0)
VIEWS = [("lateral", lateral_view), ("ap", ap_view)]

# (view, world offset from the isocentre, expected sign of (d_row, d_col))
DIRECTION_CASES = [
    ("lateral", (0, 0, 10), (-1, 0)),  # superior → up
    ("lateral", (0, 10, 0), (0, 1)),  # anterior → right (columns posterior → anterior)
    ("lateral", (10, 0, 0), (0, 0)),  # along the beam → same pixel
    ("ap", (0, 0, 10), (-1, 0)),  # superior → up
    ("ap", (-10, 0, 0), (0, 1)),  # patient's left (−x in RAS) → right (columns right → left)
    ("ap", (0, 10, 0), (0, 0)),  # along the beam
]

INVALID_CASES = [
    ({"detector_spacing_mm": -0.5}, "detector_spacing_mm"),
    ({"detector_spacing_mm": (1.0, 0.0)}, "detector_spacing_mm"),
    ({"source_to_detector_mm": 0.0}, "source_to_detector_mm"),
    ({"source_to_isocentre_mm": -1.0}, "source_to_isocentre_mm"),
    ({"source_to_isocentre_mm": 1800.0}, "shorter"),
    ({"detector_size_px": (0, 10)}, "detector_size_px"),
    ({"detector_size_px": (10.5, 10)}, "detector_size_px"),
    ({"axes": ((1, 0, 0), (0, 1, 0), (0, 0, -1))}, "proper rotation"),
    ({"axes": ((2, 0, 0), (0, 1, 0), (0, 0, 1))}, "proper rotation"),
    ({"isocentre_mm": (0.0, float("nan"), 0.0)}, "isocentre_mm"),
]


@pytest.mark.parametrize("name,preset", VIEWS, ids=[v[0] for v in VIEWS])
def test_isocentre_projects_to_principal_point(name, preset):
    g = preset(isocentre_mm=ISO, detector_size_px=(200, 300))
    rc = g.project(torch.tensor([ISO]))[0]
    assert torch.allclose(rc, torch.tensor([99.5, 149.5], dtype=torch.float64))


@pytest.mark.parametrize("view,offset,signs", DIRECTION_CASES, ids=[f"{c[0]}-{c[1]}" for c in DIRECTION_CASES])
def test_patient_directions_follow_the_convention(view, offset, signs):
    g = dict(VIEWS)[view](isocentre_mm=ISO)
    p = torch.tensor([ISO, [a + b for a, b in zip(ISO, offset)]], dtype=torch.float64)
    d = g.project(p)
    delta = d[1] - d[0]
    for got, want in zip(delta.tolist(), signs):
        if want == 0:
            assert abs(got) < 1e-9
        else:
            assert got * want > 1.0


def test_isocentre_magnification_is_sdd_over_sid():
    g = lateral_view(isocentre_mm=ISO, detector_spacing_mm=1.0)
    rc = g.project(torch.tensor([ISO, [ISO[0], ISO[1] + 10.0, ISO[2]]]))
    assert math.isclose(float(rc[1, 1] - rc[0, 1]), 10.0 * 1800.0 / 1500.0, rel_tol=1e-12)
    assert g.magnification == pytest.approx(1.2)


def test_object_nearer_the_source_is_magnified_more():
    g = lateral_view(isocentre_mm=(0.0, 0.0, 0.0), detector_spacing_mm=1.0)
    near = g.project(torch.tensor([[100.0, 0, 0], [100.0, 10.0, 0]]))  # +x: towards the source (right side)
    far = g.project(torch.tensor([[-100.0, 0, 0], [-100.0, 10.0, 0]]))
    assert (near[1, 1] - near[0, 1]) > (far[1, 1] - far[0, 1])
    assert float(near[1, 1] - near[0, 1]) == pytest.approx(10.0 * 1800 / 1400)


@pytest.mark.parametrize("name,preset", VIEWS, ids=[v[0] for v in VIEWS])
def test_pixel_to_world_lies_on_the_ray_of_its_projection(name, preset):
    g = preset(isocentre_mm=ISO, detector_size_px=(64, 48), detector_spacing_mm=(1.5, 2.0))
    rc = torch.tensor([[0.0, 0.0], [10.3, 40.7], [63.0, 47.0]], dtype=torch.float64)
    world = g.pixel_to_world(rc)
    assert torch.allclose(g.project(world), rc, atol=1e-9)
    source, direction = g.rays(rc)
    mid = source + 700.0 * direction  # any point on the ray projects to the same pixel
    assert torch.allclose(g.project(mid), rc, atol=1e-9)


def test_detector_affine_maps_pixel_indices_to_detector_world_positions():
    g = ap_view(isocentre_mm=ISO, detector_size_px=(20, 30), detector_spacing_mm=(1.5, 2.5))
    a = g.detector_affine()
    rc = torch.tensor([3.0, 17.0], dtype=torch.float64)
    assert torch.allclose(a[:3, :3] @ torch.tensor([3.0, 17.0, 0.0], dtype=torch.float64) + a[:3, 3], g.pixel_to_world(rc))
    assert torch.allclose(torch.linalg.norm(a[:3, :3], dim=0), torch.tensor([1.5, 2.5, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("kwargs,match", INVALID_CASES, ids=[c[1] + str(i) for i, c in enumerate(INVALID_CASES)])
def test_invalid_geometry_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectionGeometry(**kwargs)


def test_point_behind_the_source_is_rejected():
    g = lateral_view(isocentre_mm=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="behind the source"):
        g.project(torch.tensor([[2000.0, 0.0, 0.0]]))


def test_dict_round_trip_keeps_the_geometry():
    g = ap_view(isocentre_mm=ISO, detector_size_px=(12, 34), detector_spacing_mm=(0.5, 0.7)).with_pose((0.1, -0.2, 0.3), (1, 2, 3))
    assert ProjectionGeometry.from_dict(g.to_dict()) == g


def test_from_dict_names_missing_keys():
    with pytest.raises(KeyError, match="axes"):
        ProjectionGeometry.from_dict({"isocentre_mm": (0, 0, 0)})


@pytest.mark.parametrize("seed", range(5))
def test_triangulation_recovers_a_point_within_a_tenth_of_a_millimetre(seed):
    gen = torch.Generator().manual_seed(seed)
    lat, ap = biplanar_views(ISO, torch.rand(3, generator=gen) * 0.2 - 0.1, torch.rand(3, generator=gen) * 40 - 20, 0.05)
    points = torch.tensor(ISO, dtype=torch.float64) + (torch.rand(20, 3, generator=gen, dtype=torch.float64) - 0.5) * 400
    x, residual = triangulate([lat, ap], [lat.project(points), ap.project(points)])
    assert (x - points).norm(dim=-1).max() < 0.1
    assert residual.max() < 1e-6


def test_triangulation_residual_reports_a_pose_error():
    lat, ap = biplanar_views(ISO)
    ap_true = ap.with_pose(translation_mm=(0.0, 0.0, 10.0))  # the AP was really taken 10 mm higher
    points = torch.tensor([ISO, [ISO[0] + 30, ISO[1], ISO[2] - 100]], dtype=torch.float64)
    _, residual = triangulate([lat, ap], [lat.project(points), ap_true.project(points)])
    # two rays 10 mm apart (at the isocentre, up to magnification): the midpoint is ~5 mm from each
    assert torch.all(residual > 3.0) and torch.all(residual < 7.0)


def test_triangulation_of_parallel_rays_is_rejected():
    lat = lateral_view(isocentre_mm=ISO)
    with pytest.raises(ValueError, match="parallel"):
        triangulate([lat, lat], [torch.tensor([[10.0, 10.0]]), torch.tensor([[10.0, 10.0]])])


def test_view_aligned_axes_of_the_nominal_views():
    lat, ap = biplanar_views(ISO)
    axes = view_aligned_axes(lat, ap)
    expected = torch.tensor([[0, 0, -1], [0, 1, 0], [-1, 0, 0]], dtype=torch.float64).T  # S→I, P→A, R→L
    assert torch.allclose(axes, expected)


def test_view_aligned_frame_is_centred_and_follows_a_rotated_pose():
    lat, ap = biplanar_views(ISO, rotation_rad=(0.0, 0.0, 0.2), view_angle_rad=0.0)
    frame = view_aligned_frame(lat, ap, centre_mm=(1.0, 2.0, 3.0), size=64, spacing_mm=1.5)
    centre = frame[:3, :3] @ torch.full((3,), 31.5, dtype=torch.float64) + frame[:3, 3]
    assert torch.allclose(centre, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.allclose(frame[:3, 1] / 1.5, lat.rotation[:, 0])  # axis 1 = lateral columns
    assert torch.allclose(frame[:3, :3].T @ frame[:3, :3], torch.eye(3, dtype=torch.float64) * 1.5**2)


def test_rotation_matrix_turns_x_towards_y_about_z():
    r = rotation_matrix((0.0, 0.0, math.pi / 2))
    assert torch.allclose(r @ torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)


def test_with_pose_rotates_the_c_arm_about_the_isocentre():
    lat = lateral_view(isocentre_mm=ISO)
    turned = lat.with_pose((0.0, 0.0, math.pi / 2))
    assert torch.allclose(turned.beam_direction, torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(turned.source_mm - torch.tensor(ISO, dtype=torch.float64), torch.tensor([0.0, 1500.0, 0.0], dtype=torch.float64), atol=1e-9)
