"""Property-based tests: the geometry round-trips for random poses, and the readers survive random junk.

Geometry: for random C-arm poses, distances, detector sizes and spacings, a point inside the field
of view projects to a pixel whose ray passes through the point, two views triangulate it back, and
the detector affine and the voxel affines invert exactly.

Readers: random bytes, truncated or byte-flipped valid files and random JSON documents fed to the
radiograph reader, the 2D and 3D centroid readers and the NIfTI volume loader either read or raise
one of our error types (:mod:`transvert_monai.errors`) or ``FileNotFoundError`` — never a raw
numpy/nibabel/pydicom/json exception — and return within seconds.

Every test is derandomised (``derandomize=True``), so a CI run repeats the same examples.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.data.synthetic import save_nifti
from tests.io.synthetic import gradient_image, write_dicom, write_nifti, write_png
from transvert_monai.data.centroids import read_centroids, read_verse_centroids
from transvert_monai.data.labels import is_vertebra_label
from transvert_monai.data.volume import load_volume
from transvert_monai.errors import TransVertInputError
from transvert_monai.geometry import (
    ProjectionGeometry,
    as_affine,
    biplanar_views,
    rotation_matrix,
    triangulate,
    voxel_to_world,
    world_to_voxel,
)
from transvert_monai.io import read_centroids_2d, read_radiograph

#: examples per property; the geometry ones are cheap, the reader ones write a file each
GEOMETRY_EXAMPLES = 150
READER_EXAMPLES = 60
#: "never hangs": the slowest example of a reader may take this long (generous for a loaded 2-core CI box)
MAX_SECONDS_PER_EXAMPLE = 10.0

GEOMETRY = settings(max_examples=GEOMETRY_EXAMPLES, deadline=None, derandomize=True, database=None)
READERS = settings(
    max_examples=READER_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------------------------------------ strategies
angle = st.floats(-math.pi, math.pi, allow_nan=False)
small_angle = st.floats(-0.3, 0.3, allow_nan=False)
coordinate = st.floats(-300.0, 300.0, allow_nan=False)


@st.composite
def views(draw: st.DrawFn) -> ProjectionGeometry:
    """A random cone-beam view: any orientation, isocentre, distances, detector size and spacing."""
    sid = draw(st.floats(300.0, 2000.0))
    sdd = sid + draw(st.floats(50.0, 1500.0))
    return ProjectionGeometry(
        isocentre_mm=tuple(draw(coordinate) for _ in range(3)),
        axes=tuple(map(tuple, rotation_matrix([draw(angle) for _ in range(3)]).tolist())),
        source_to_detector_mm=sdd,
        source_to_isocentre_mm=sid,
        detector_size_px=(draw(st.integers(8, 3000)), draw(st.integers(8, 3000))),
        detector_spacing_mm=(draw(st.floats(0.05, 4.0)), draw(st.floats(0.05, 4.0))),
    )


@st.composite
def pixel_and_depth(draw: st.DrawFn, geometry: ProjectionGeometry) -> tuple[torch.Tensor, float]:
    """A detector pixel (row, col) and a depth along its ray between 5 % of the way and the detector."""
    h, w = geometry.detector_size_px
    rc = torch.tensor([draw(st.floats(-0.5, h - 0.5)), draw(st.floats(-0.5, w - 0.5))], dtype=torch.float64)
    return rc, draw(st.floats(0.05, 1.0))


def _scale(*geometries: ProjectionGeometry) -> float:
    """Size of the scene in mm: tolerances are relative to it."""
    return max(max(g.source_to_detector_mm, *map(abs, g.isocentre_mm)) for g in geometries)


# ------------------------------------------------------------------------------------------------ geometry
@GEOMETRY
@given(data=st.data(), geometry=views())
def test_a_point_in_the_field_of_view_projects_to_a_pixel_whose_ray_contains_it(data, geometry):
    rc, fraction = data.draw(pixel_and_depth(geometry))
    source, direction = geometry.rays(rc)
    point = source + fraction * torch.linalg.norm(geometry.pixel_to_world(rc) - source) * direction
    scale = _scale(geometry)
    # forward: the point lands on the pixel it was placed on
    projected, depth = geometry.project(point, return_depth=True)
    assert torch.allclose(projected, rc, atol=1e-6 * scale / min(geometry.detector_spacing_mm))
    assert float(depth) > 0
    # back: the ray through the projected pixel passes through the point
    source2, direction2 = geometry.rays(projected)
    offset = point - source2
    distance = torch.linalg.norm(offset - (offset @ direction2) * direction2)
    assert float(distance) < 1e-6 * scale


@GEOMETRY
@given(lateral_view=views(), ap_view=views(), data=st.data())
def test_two_views_triangulate_a_point_back_exactly(lateral_view, ap_view, data):
    # the two beams must cross at a usable angle (more than ~11°)
    assume(abs(float(lateral_view.beam_direction @ ap_view.beam_direction)) < 0.98)
    # a point in the first view's field of view (on the ray through a random pixel), in front of the second source
    rc, fraction = data.draw(pixel_and_depth(lateral_view))
    source, direction = lateral_view.rays(rc)
    point = source + fraction * torch.linalg.norm(lateral_view.pixel_to_world(rc) - source) * direction
    local = (point - ap_view.source_mm) @ ap_view.rotation
    assume(float(local[2]) > 0.05 * ap_view.source_to_isocentre_mm)
    scale = _scale(lateral_view, ap_view)
    pixels = [g.project(point[None]) for g in (lateral_view, ap_view)]
    found, residual = triangulate([lateral_view, ap_view], pixels)
    assert float(torch.linalg.norm(found[0] - point)) < 1e-6 * scale
    assert float(residual[0]) < 1e-6 * scale


@GEOMETRY
@given(
    isocentre=st.tuples(coordinate, coordinate, coordinate),
    rotation=st.tuples(small_angle, small_angle, small_angle),
    translation=st.tuples(st.floats(-60, 60), st.floats(-60, 60), st.floats(-60, 60)),
    view_angle=small_angle,
    offset=st.tuples(st.floats(-120, 120), st.floats(-120, 120), st.floats(-120, 120)),
    sid=st.floats(500.0, 2000.0),
    gap=st.floats(50.0, 800.0),
    spacing=st.floats(0.1, 3.0),
)
def test_biplanar_views_with_a_c_arm_pose_error_triangulate_exactly(
    isocentre, rotation, translation, view_angle, offset, sid, gap, spacing
):
    lat, ap = biplanar_views(
        isocentre, rotation, translation, view_angle,
        source_to_isocentre_mm=sid, source_to_detector_mm=sid + gap, detector_spacing_mm=spacing,
    )  # fmt: skip
    point = torch.tensor(isocentre, dtype=torch.float64) + torch.tensor(offset, dtype=torch.float64)
    found, residual = triangulate([lat, ap], [lat.project(point[None]), ap.project(point[None])])
    scale = _scale(lat, ap)
    assert float(torch.linalg.norm(found[0] - point)) < 1e-6 * scale
    assert float(residual[0]) < 1e-6 * scale


detector_points = st.lists(
    st.tuples(st.floats(-50, 3050), st.floats(-50, 3050), st.floats(-100, 100)), min_size=1, max_size=5
)


@GEOMETRY
@given(geometry=views(), points=detector_points)
def test_detector_affine_and_pixel_maps_round_trip(geometry, points):
    affine = geometry.detector_affine()
    rck = torch.tensor(points, dtype=torch.float64)
    world = rck @ affine[:3, :3].T + affine[:3, 3]
    back = world_to_voxel(affine, world)
    scale = _scale(geometry)
    assert torch.allclose(back, rck, atol=1e-9 * scale)
    # the k = 0 plane is the detector: pixel_to_world agrees, and a detector point projects onto itself
    on_plane = torch.cat((rck[:, :2], torch.zeros(len(points), 1, dtype=torch.float64)), dim=1)
    on_detector = voxel_to_world(affine, on_plane)
    assert torch.allclose(on_detector, geometry.pixel_to_world(rck[:, :2]), atol=1e-9 * scale)
    assert torch.allclose(geometry.project(on_detector), rck[:, :2], atol=1e-6 * scale)


@GEOMETRY
@given(
    angles=st.tuples(angle, angle, angle),
    spacing=st.tuples(st.floats(0.05, 10.0), st.floats(0.05, 10.0), st.floats(0.05, 10.0)),
    origin=st.tuples(coordinate, coordinate, coordinate),
    flips=st.tuples(st.sampled_from([-1.0, 1.0]), st.sampled_from([-1.0, 1.0]), st.sampled_from([-1.0, 1.0])),
    ijk=st.lists(st.tuples(st.floats(-5, 600), st.floats(-5, 600), st.floats(-5, 600)), min_size=1, max_size=5),
)
def test_voxel_world_affines_round_trip_for_any_orientation_and_spacing(angles, spacing, origin, flips, ijk):
    a = torch.eye(4, dtype=torch.float64)
    a[:3, :3] = rotation_matrix(angles) @ torch.diag(torch.tensor(spacing, dtype=torch.float64) * torch.tensor(flips))
    a[:3, 3] = torch.tensor(origin, dtype=torch.float64)
    a = as_affine(a)
    idx = torch.tensor(ijk, dtype=torch.float64)
    assert torch.allclose(world_to_voxel(a, voxel_to_world(a, idx)), idx, atol=1e-9 * 600)


# ------------------------------------------------------------------------------------------------ readers
@functools.lru_cache(maxsize=None)
def _valid_bytes(kind: str) -> bytes:
    """A small valid file of ``kind``, as bytes (built once)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = gradient_image((130, 128))
        if kind == "dcm":
            path = write_dicom(folder / "a.dcm", image, ImagerPixelSpacing=[0.5, 0.5])
        elif kind == "png":
            path = write_png(folder / "a.png", image)
        elif kind == "tif":
            from PIL import Image

            path = folder / "a.tif"
            Image.fromarray(image.astype(np.uint16)).save(path)
        elif kind in ("nii", "nii.gz"):
            path = write_nifti(folder / f"a.{kind}", image)
        elif kind in ("vol.nii", "vol.nii.gz"):
            volume = np.random.default_rng(0).integers(-1000, 1000, (12, 10, 8)).astype(np.int16)
            path = save_nifti(folder / f"a.{kind}", volume, np.diag([0.8, 0.8, 2.5, 1.0]))
        else:
            raise AssertionError(kind)
        return path.read_bytes()


RADIOGRAPH_KINDS = ["dcm", "png", "tif", "nii", "nii.gz"]
RANDOM_SUFFIXES = [".dcm", ".png", ".tif", ".nii", ".nii.gz", ".jpg", ""]  # "" and .jpg: unknown formats
SUFFIX = {kind: "." + kind.removeprefix("vol.") for kind in (*RADIOGRAPH_KINDS, "vol.nii", "vol.nii.gz")}


@st.composite
def damaged(draw: st.DrawFn, kinds: list[str]) -> tuple[str, bytes]:
    """A valid file of one of ``kinds``, cut short and/or with a few bytes overwritten (a header field, a pixel)."""
    kind = draw(st.sampled_from(kinds))
    raw = bytearray(_valid_bytes(kind))
    for _ in range(draw(st.integers(0, 4))):
        # mostly in the header, where a flipped byte changes sizes, types and offsets
        position = draw(st.integers(0, min(len(raw) - 1, 400)) | st.integers(0, len(raw) - 1))
        raw[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)) | st.just(len(raw)))
    return kind, bytes(raw[:cut])


def _expect_our_errors(read, *args, check=None, **kwargs):
    """Call ``read``: it returns (and ``check`` passes) or raises our error or FileNotFoundError, in time."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = read(*args, **kwargs)
    except (TransVertInputError, FileNotFoundError) as err:
        event(type(err).__name__)
    else:
        event("read")
        if check is not None:
            check(result)
    assert time.perf_counter() - start < MAX_SECONDS_PER_EXAMPLE


def _is_radiograph(radiograph) -> None:
    assert radiograph.pixels.ndim == 2 and bool(torch.isfinite(radiograph.pixels).all())
    assert all(math.isfinite(s) and s > 0 for s in radiograph.pixel_spacing_mm)


def _is_volume(array: np.ndarray) -> None:
    assert array.ndim == 3 and min(array.shape) >= 1


def _are_centroids_2d(centroids) -> None:
    assert centroids.labels and set(centroids.lateral) == set(centroids.ap)
    for view in (centroids.lateral, centroids.ap):
        assert all(is_vertebra_label(v) and all(map(math.isfinite, rc)) for v, rc in view.items())


def _are_centroids_3d(centroids: dict) -> None:
    for label, xyz in centroids.items():
        assert is_vertebra_label(label) and xyz.shape == (3,) and bool(torch.isfinite(xyz).all())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("junk")


@READERS
@given(content=st.binary(max_size=2048), suffix=st.sampled_from(RANDOM_SUFFIXES))
def test_radiograph_reader_survives_random_bytes(workdir, content, suffix):
    path = workdir / f"random{suffix}"
    path.write_bytes(content)
    _expect_our_errors(read_radiograph, path, "lateral", pixel_spacing_mm=0.5, check=_is_radiograph)


@READERS
@given(file=damaged(RADIOGRAPH_KINDS), view=st.sampled_from(["lateral", "ap"]))
def test_radiograph_reader_survives_truncated_and_damaged_files(workdir, file, view):
    kind, content = file
    path = workdir / f"damaged{SUFFIX[kind]}"
    path.write_bytes(content)
    spacing = None if kind == "dcm" else 0.5
    _expect_our_errors(read_radiograph, path, view, pixel_spacing_mm=spacing, check=_is_radiograph)


@READERS
@given(content=st.binary(max_size=1024), suffix=st.sampled_from([".nii", ".nii.gz"]))
def test_volume_loader_survives_random_bytes(workdir, content, suffix):
    path = workdir / f"random_volume{suffix}"
    path.write_bytes(content)
    _expect_our_errors(_load_and_read, path, check=_is_volume)


@READERS
@given(file=damaged(["vol.nii", "vol.nii.gz"]))
def test_volume_loader_survives_truncated_and_damaged_files(workdir, file):
    kind, content = file
    path = workdir / f"damaged_volume{SUFFIX[kind]}"
    path.write_bytes(content)
    _expect_our_errors(_load_and_read, path, check=_is_volume)


def _load_and_read(path: Path) -> np.ndarray:
    """What ``transvert-prepare`` does with a mask: load (checked), then read every voxel."""
    return np.asanyarray(load_volume(path, role="mask").dataobj)


# JSON documents: anything JSON can hold, plus near-valid documents that reach the deeper checks
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["T1", "L5", "t12", "vertebrae_C3", "20", "28", "26", "0", "-1", "RAS", "mm", "lateral", "ap"])
)
json_keys = st.text(max_size=8) | st.sampled_from(
    ["lateral", "ap", "vertebrae", "label", "centroids", "direction", "X", "Y", "Z", "coordinate_system", "units"]
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=12,
)


def good_or_bad(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly ``good``, sometimes any JSON scalar."""
    return st.one_of(good, good, good, json_scalars)


# 2D centroids: {"lateral": {name: [row, col]}, "ap": {...}} or {"vertebrae": [{"label", "lateral", "ap"}]}
number = st.floats(-5.0, 120.0) | st.integers(-5, 120)
position = good_or_bad(st.lists(number, min_size=2, max_size=2) | st.lists(json_scalars, max_size=3))
vertebra_name = st.text(max_size=6) | st.sampled_from(["T1", "T2", "L1", "l2", "vertebrae_T12", "8", "20", "28", "X1"])
view_2d = st.dictionaries(vertebra_name, position, max_size=4)
entry_2d = st.fixed_dictionaries({"label": good_or_bad(vertebra_name)}, optional={"lateral": position, "ap": position})
valid_names = st.lists(
    st.sampled_from(["T1", "t2", "L1", "20", "28", "vertebrae_C7"]), min_size=1, max_size=3, unique=True
)
same_labels_in_both_views = valid_names.flatmap(
    lambda names: st.fixed_dictionaries(
        {view: st.fixed_dictionaries({name: position for name in names}) for view in ("lateral", "ap")}
    )
)
centroids_2d_docs = st.one_of(
    json_values,
    same_labels_in_both_views,
    same_labels_in_both_views,
    st.fixed_dictionaries(
        {"lateral": good_or_bad(view_2d), "ap": good_or_bad(view_2d)}, optional={"comment": json_values}
    ),
    st.fixed_dictionaries({"vertebrae": st.lists(entry_2d | json_values, max_size=4)}),
)

# 3D centroids: {"coordinate_system": "RAS", "units": "mm", "centroids": {"20": [x, y, z]}}
label_key = st.text(max_size=4) | st.sampled_from(["8", "20", "28", "26", "0", "-3", "1.5", "abc", "١٢", " 20"])
xyz = good_or_bad(
    st.lists(st.floats(-500, 500) | st.integers(-500, 500), min_size=3, max_size=3) | st.lists(json_scalars)
)
centroids_3d_docs = json_values | st.fixed_dictionaries(
    {"centroids": good_or_bad(st.dictionaries(label_key, xyz, max_size=4))},
    optional={
        "coordinate_system": good_or_bad(st.just("RAS")),
        "units": good_or_bad(st.just("mm")),
        "source": json_values,
    },
)

# VerSe centroids: [{"direction": ["P", "I", "R"]}, {"label": 20, "X": .., "Y": .., "Z": ..}, ...]
axis_codes = (
    st.permutations(["P", "I", "R"])
    | st.permutations(["L", "A", "S"])
    | st.lists(st.sampled_from(list("PIRLASX")) | json_scalars, max_size=4)
)
verse_entry = st.fixed_dictionaries(
    {"label": good_or_bad(st.sampled_from([17, 18, 19, 20, 21, 28, 41, 26, 20.0, 20.5, "20"]))},
    optional={k: good_or_bad(st.floats(-2.0, 18.0)) for k in ("X", "Y", "Z")},
)
verse_docs = json_values | st.builds(
    lambda direction, entries: [{"direction": direction}, *entries],
    good_or_bad(axis_codes),
    st.lists(verse_entry | json_values, max_size=4),
)


def _write_json(path: Path, document: object, cut: int) -> None:
    text = json.dumps(document)  # NaN/Infinity are written as Python's json does
    path.write_text(text[: max(0, len(text) - cut)])  # cut > 0: invalid JSON


@READERS
@given(document=centroids_2d_docs, cut=st.sampled_from([0, 0, 0, 1, 3]), sizes=st.booleans())
def test_2d_centroid_reader_survives_random_json(workdir, document, cut, sizes):
    path = workdir / "centroids2d.json"
    _write_json(path, document, cut)
    image_sizes = {"lateral": (100, 80), "ap": (100, 90)} if sizes else None
    _expect_our_errors(read_centroids_2d, path, image_sizes=image_sizes, check=_are_centroids_2d)


@READERS
@given(document=centroids_3d_docs, cut=st.sampled_from([0, 0, 0, 1, 3]))
def test_3d_centroid_reader_survives_random_json(workdir, document, cut):
    path = workdir / "centroids3d.json"
    _write_json(path, document, cut)
    _expect_our_errors(read_centroids, path, check=_are_centroids_3d)


@READERS
@given(document=verse_docs, cut=st.sampled_from([0, 0, 0, 1, 3]))
def test_verse_centroid_reader_survives_random_json(workdir, document, cut):
    path = workdir / "verse_ctd.json"
    _write_json(path, document, cut)
    affine = torch.eye(4, dtype=torch.float64)
    _expect_our_errors(read_verse_centroids, path, affine, (16, 14, 60), check=_are_centroids_3d)


@READERS
@given(content=st.binary(max_size=512))
def test_json_readers_survive_random_bytes(workdir, content):
    path = workdir / "bytes.json"
    path.write_bytes(content)
    _expect_our_errors(read_centroids_2d, path)
    _expect_our_errors(read_centroids, path)
    _expect_our_errors(read_verse_centroids, path, torch.eye(4, dtype=torch.float64), (16, 14, 60))


def test_the_valid_sample_files_are_read():
    """The damaged files start from files that read: a failure above is the damage, not the sample."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for kind in RADIOGRAPH_KINDS:
            path = Path(tmp) / f"ok{SUFFIX[kind]}"
            path.write_bytes(_valid_bytes(kind))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                radiograph = read_radiograph(path, "lateral", pixel_spacing_mm=None if kind == "dcm" else 0.5)
            assert radiograph.shape == (130, 128)
        for kind in ("vol.nii", "vol.nii.gz"):
            path = Path(tmp) / f"ok_volume{SUFFIX[kind]}"
            path.write_bytes(_valid_bytes(kind))
            assert _load_and_read(path).shape == (12, 10, 8)

