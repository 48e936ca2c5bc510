from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from tests.io.synthetic import gradient_image, write_dicom, write_nifti, write_png
from transvert_monai.geometry import ap_view, lateral_view
from transvert_monai.io import Radiograph, check_pair, read_radiograph, resample_area

pytest.importorskip("pydicom")

# (tags, expected spacing, SDD, SID, magnification)
DICOM_GEOMETRY_CASES = [
    (
        {"ImagerPixelSpacing": [0.15, 0.15], "DistanceSourceToDetector": 1800, "DistanceSourceToPatient": 1500},
        (0.15, 0.15),
        1800.0,
        1500.0,
    ),
    (
        {"ImagerPixelSpacing": [0.2, 0.1], "DistanceSourceToDetector": 1200, "DistanceSourceToPatient": 1000},
        (0.2, 0.1),
        1200.0,
        1000.0,
    ),
    (
        {"ImagerPixelSpacing": [0.14, 0.14], "DistanceSourceToDetector": 3000, "DistanceSourceToPatient": 2800},
        (0.14, 0.14),
        3000.0,
        2800.0,
    ),
    (
        {
            "ImagerPixelSpacing": None,
            "PixelSpacing": [0.3, 0.3],
            "DistanceSourceToDetector": 1800,
            "DistanceSourceToPatient": 1500,
        },
        (0.3, 0.3),
        1800.0,
        1500.0,
    ),
]


@pytest.mark.parametrize(
    "tags,spacing,sdd,sid", DICOM_GEOMETRY_CASES, ids=["nominal", "anisotropic", "long-distance", "pixel-spacing"]
)
def test_dicom_geometry_follows_the_tags(tmp_path, tags, spacing, sdd, sid):
    path = write_dicom(tmp_path / "lat.dcm", gradient_image((600, 640)), **tags)
    rad = read_radiograph(path, "lateral")
    assert rad.pixel_spacing_mm == pytest.approx(spacing)
    assert (rad.source_to_detector_mm, rad.source_to_patient_mm) == (sdd, sid)
    g = rad.geometry(None)
    assert g.magnification == pytest.approx(sdd / sid)
    assert g.detector_spacing_mm == pytest.approx(spacing) and g.detector_size_px == (600, 640)
    working = rad.geometry(1.8)
    assert working.detector_spacing_mm == (1.8, 1.8)
    assert working.detector_size_px == (max(1, round(600 * spacing[0] / 1.8)), max(1, round(640 * spacing[1] / 1.8)))


def test_dicom_geometry_equals_the_nominal_preset(tmp_path):
    path = write_dicom(
        tmp_path / "ap.dcm",
        gradient_image((120, 90)),
        ImagerPixelSpacing=[0.9, 0.9],
        DistanceSourceToDetector=1600,
        DistanceSourceToPatient=1400,
    )
    g = read_radiograph(path, "ap").geometry(1.8)
    assert g == ap_view(
        isocentre_mm=(0, 0, 0),
        source_to_detector_mm=1600,
        source_to_isocentre_mm=1400,
        detector_size_px=(60, 45),
        detector_spacing_mm=1.8,
    )


def test_pixel_spacing_fallback_is_logged(tmp_path, caplog):
    path = write_dicom(tmp_path / "lat.dcm", gradient_image(), PixelSpacing=[0.2, 0.2])
    with caplog.at_level(logging.INFO, logger="transvert_monai.io"):
        rad = read_radiograph(path, "lateral")
    assert "PixelSpacing" in rad.spacing_origin
    assert any("no ImagerPixelSpacing" in r.message for r in caplog.records)


def test_imager_pixel_spacing_wins_over_pixel_spacing(tmp_path):
    path = write_dicom(
        tmp_path / "lat.dcm", gradient_image(), ImagerPixelSpacing=[0.15, 0.15], PixelSpacing=[0.125, 0.125]
    )
    rad = read_radiograph(path, "lateral")
    assert rad.pixel_spacing_mm == (0.15, 0.15) and "ImagerPixelSpacing" in rad.spacing_origin


def test_missing_distances_fall_back_with_warnings(tmp_path, caplog):
    path = write_dicom(tmp_path / "lat.dcm", gradient_image(), ImagerPixelSpacing=[0.15, 0.15])
    with caplog.at_level(logging.WARNING, logger="transvert_monai.io"):
        rad = read_radiograph(path, "lateral")
    assert (rad.source_to_detector_mm, rad.source_to_patient_mm) == (1800.0, 1500.0)
    assert sum("using the default" in r.message for r in caplog.records) == 2


def test_arguments_override_the_tags(tmp_path):
    path = write_dicom(
        tmp_path / "lat.dcm",
        gradient_image(),
        ImagerPixelSpacing=[0.15, 0.15],
        DistanceSourceToDetector=1800,
        DistanceSourceToPatient=1500,
    )
    rad = read_radiograph(path, "lateral", pixel_spacing_mm=0.2, source_to_detector_mm=2000, source_to_patient_mm=1700)
    assert rad.pixel_spacing_mm == (0.2, 0.2) and rad.source_to_detector_mm == 2000 and rad.source_to_patient_mm == 1700


def test_monochrome1_is_inverted_to_bright_bone(tmp_path):
    image = gradient_image()
    stored = image.max() + image.min() - image  # the same picture as MONOCHROME1
    common = {"ImagerPixelSpacing": [0.15, 0.15]}
    mono2 = read_radiograph(write_dicom(tmp_path / "m2.dcm", image, **common), "lateral")
    mono1 = read_radiograph(
        write_dicom(tmp_path / "m1.dcm", stored, PhotometricInterpretation="MONOCHROME1", **common), "lateral"
    )
    assert torch.equal(mono1.pixels, mono2.pixels)


def test_rescale_and_patient_id_are_applied(tmp_path):
    path = write_dicom(
        tmp_path / "lat.dcm",
        gradient_image(),
        ImagerPixelSpacing=[0.15, 0.15],
        RescaleSlope=2.0,
        RescaleIntercept=-5.0,
        PatientID="ABC",
    )
    rad = read_radiograph(path, "lateral")
    assert torch.equal(rad.pixels, torch.from_numpy(gradient_image().astype(np.float32) * 2 - 5))
    assert rad.patient_id == "ABC"


def test_flip_horizontal_mirrors_the_image_and_the_file_pixels(tmp_path):
    path = write_dicom(tmp_path / "ap.dcm", gradient_image((500, 400)), ImagerPixelSpacing=[0.15, 0.15])
    plain, flipped = read_radiograph(path, "ap"), read_radiograph(path, "ap", flip_horizontal=True)
    assert torch.equal(flipped.pixels, plain.pixels.flip(-1))
    rc = flipped.file_to_image_px(torch.tensor([3.0, 2.0]))
    assert flipped.pixels[3, int(rc[1])] == plain.pixels[3, 2]


# (PatientOrientation, view, flip_horizontal) → whether a flip is suggested
ORIENTATION_CASES = [
    (["P", "F"], "lateral", False, True),
    (["P", "F"], "lateral", True, False),
    (["A", "F"], "lateral", False, False),
    (["A", "F"], "lateral", True, True),
    (["R", "F"], "ap", False, True),
    (["L", "F"], "ap", False, False),
]


@pytest.mark.parametrize(
    "orientation,view,flip,reported",
    ORIENTATION_CASES,
    ids=["lat-facing-left", "lat-flipped", "lat-as-expected", "lat-flipped-wrongly", "ap-mirrored", "ap-as-expected"],
)
def test_contradicting_patient_orientation_is_reported(tmp_path, caplog, orientation, view, flip, reported):
    path = write_dicom(
        tmp_path / "x.dcm", gradient_image(), ImagerPixelSpacing=[0.15, 0.15], PatientOrientation=orientation
    )
    with caplog.at_level(logging.WARNING, logger="transvert_monai.io"):
        read_radiograph(path, view, flip_horizontal=flip)
    assert any("flip_horizontal" in r.message for r in caplog.records) is reported


BAD_DICOM_CASES = [
    ({"Modality": "CT"}, "modality 'CT'"),
    ({"Modality": "MR"}, "not a radiograph"),
    ({"NumberOfFrames": 2}, "frames"),
    ({"ImagerPixelSpacing": None}, "no ImagerPixelSpacing"),
    ({"DistanceSourceToDetector": 1000, "DistanceSourceToPatient": 1500}, "shorter"),
    ({"PhotometricInterpretation": "RGB"}, "PhotometricInterpretation"),
]


@pytest.mark.parametrize(
    "tags,match", BAD_DICOM_CASES, ids=["ct", "mr", "multi-frame", "no-spacing", "sid-beyond-sdd", "colour"]
)
def test_bad_dicom_is_rejected_naming_the_file(tmp_path, tags, match):
    base = {"ImagerPixelSpacing": [0.15, 0.15]}
    base.update(tags)
    path = write_dicom(tmp_path / "bad.dcm", gradient_image((500, 400)), **base)
    with pytest.raises(ValueError, match=match) as err:
        read_radiograph(path, "lateral")
    assert "bad.dcm" in str(err.value)


@pytest.mark.parametrize("fmt", ["dcm", "png", "nii.gz"])
def test_truncated_file_is_rejected_naming_the_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt}"
    image = np.random.default_rng(0).integers(0, 4000, (64, 48))
    if fmt == "dcm":
        write_dicom(path, image, ImagerPixelSpacing=[0.15, 0.15])
    elif fmt == "png":
        write_png(path, image)
    else:
        write_nifti(path, image)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut") as err:
        read_radiograph(path, "lateral", pixel_spacing_mm=0.15)
    assert str(path) in str(err.value)


def test_nan_pixels_are_rejected(tmp_path):
    image = np.ones((10, 8), dtype=np.float32)
    image[2, 3] = np.nan
    path = write_nifti(tmp_path / "nan.nii.gz", image)
    with pytest.raises(ValueError, match="NaN") as err:
        read_radiograph(path, "lateral", pixel_spacing_mm=0.15)
    assert "nan.nii.gz" in str(err.value)


def test_3d_file_is_rejected(tmp_path):
    path = write_nifti(tmp_path / "vol.nii.gz", np.ones((10, 8, 3)))
    with pytest.raises(ValueError, match="2D"):
        read_radiograph(path, "lateral", pixel_spacing_mm=0.15)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_radiograph(tmp_path / "none.png", "lateral")


def test_png_without_spacing_says_how_to_give_it(tmp_path):
    path = write_png(tmp_path / "lat.png", gradient_image())
    with pytest.raises(ValueError, match="side-car.*pixel_spacing_mm.*lat.json beside the image"):
        read_radiograph(path, "lateral")


def test_png_geometry_comes_from_the_default_sidecar(tmp_path):
    side = {
        "pixel_spacing_mm": [0.2, 0.15],
        "source_to_detector_mm": 1700,
        "source_to_patient_mm": 1400,
        "patient_id": "X",
    }
    path = write_png(tmp_path / "ap.png", gradient_image(), side)
    rad = read_radiograph(path, "ap")
    assert (
        rad.pixel_spacing_mm == (0.2, 0.15) and rad.source_to_detector_mm == 1700 and rad.source_to_patient_mm == 1400
    )
    assert rad.patient_id == "X" and torch.equal(rad.pixels, torch.from_numpy(gradient_image().astype(np.float32)))
    assert read_radiograph(path, "ap", pixel_spacing_mm=0.3).pixel_spacing_mm == (0.3, 0.3)  # arguments win


SIDECAR_ERRORS = [
    ({"pixel_spacing": [0.1, 0.1]}, "unknown keys"),
    ({"pixel_spacing_mm": [0.1, -0.1]}, "pixel spacing"),
    ({"pixel_spacing_mm": 0.1, "view": "lateral"}, "'lateral' view"),
]


@pytest.mark.parametrize("side,match", SIDECAR_ERRORS, ids=["typo", "negative", "wrong-view"])
def test_bad_sidecar_is_rejected(tmp_path, side, match):
    path = write_png(tmp_path / "ap.png", gradient_image(), side)
    with pytest.raises(ValueError, match=match):
        read_radiograph(path, "ap")


def test_transvert_drr_sidecar_is_read(tmp_path):
    g = lateral_view(
        detector_size_px=(40, 30), detector_spacing_mm=0.5, source_to_detector_mm=1700, source_to_isocentre_mm=1300
    )
    path = write_png(tmp_path / "drr.png", gradient_image(), {"geometry": g.to_dict(), "png_scale": 3.0})
    rad = read_radiograph(path, "lateral")
    assert rad.pixel_spacing_mm == (0.5, 0.5) and rad.source_to_patient_mm == 1300


# (shape, spacing, working spacing)
RESAMPLE_CASES = [
    ((400, 300), (0.15, 0.15), 1.8),
    ((401, 299), (0.15, 0.2), 1.8),
    ((37, 53), (0.5, 0.5), 1.8),
    ((20, 30), (2.5, 2.5), 1.8),
]


@pytest.mark.parametrize("shape,spacing,working", RESAMPLE_CASES, ids=["even", "odd-aniso", "small", "upsample"])
def test_resampling_keeps_each_point_on_its_world_ray(shape, spacing, working):
    rad = Radiograph(torch.zeros(shape), spacing, "lateral")
    rc = torch.tensor([[0.0, 0.0], [shape[0] - 1.0, shape[1] - 1.0], [12.3, 7.9], [shape[0] / 2, shape[1] / 3]])
    before = rad.geometry(None).pixel_to_world(rc)
    after = rad.geometry(working).pixel_to_world(rad.to_working_px(rc, working))
    torch.testing.assert_close(after, before, atol=1e-9, rtol=0)
    assert rad.resampled(working).shape == rad.geometry(working).detector_size_px


def test_resampling_moves_a_feature_to_its_mapped_pixel():
    # a Gaussian blob of σ = 2 working pixels: its intensity-weighted centre is found to a small fraction of a pixel
    rows, cols = np.mgrid[0:900, 0:600].astype(np.float64)
    centre = (411.3, 257.8)
    blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * 24.0**2))
    rad = Radiograph(torch.from_numpy(blob), (0.15, 0.15), "ap")
    small = rad.resampled(1.8).pixels.double()
    r, c = torch.meshgrid(torch.arange(small.shape[0]), torch.arange(small.shape[1]), indexing="ij")
    found = torch.stack(((small * r).sum(), (small * c).sum())) / small.sum()
    torch.testing.assert_close(found, rad.to_working_px(torch.tensor(centre), 1.8), atol=0.02, rtol=0)


def test_area_resampling_preserves_the_mean_and_constant_borders():
    img = torch.rand(120, 96, generator=torch.Generator().manual_seed(0))
    out = resample_area(img, (0.15, 0.15), (1.8, 1.8), (10, 8))  # exact factor 12
    torch.testing.assert_close(out, img.reshape(10, 12, 8, 12).mean(dim=(1, 3)), atol=1e-5, rtol=0)
    flat = resample_area(torch.full((125, 97), 7.0), (0.15, 0.15), (1.8, 1.8), (10, 8))
    torch.testing.assert_close(flat, torch.full((10, 8), 7.0))


def test_different_patients_are_rejected():
    lat = Radiograph(torch.zeros(10, 10), 0.15, "lateral", patient_id="A", source="lat.dcm")
    ap = Radiograph(torch.zeros(10, 10), 0.15, "ap", patient_id="B", source="ap.dcm")
    with pytest.raises(ValueError, match="different patients"):
        check_pair(lat, ap)


def test_swapped_views_are_rejected():
    a = Radiograph(torch.zeros(10, 10), 0.15, "ap")
    with pytest.raises(ValueError, match="lateral and an AP"):
        check_pair(a, a)


PAIR_WARNINGS = [
    ({"pixels": torch.zeros(10, 10)}, {"pixels": torch.zeros(20, 10)}, "heights"),
    ({"source_to_detector_mm": 1800.0}, {"source_to_detector_mm": 1900.0}, "source_to_detector_mm"),
]


@pytest.mark.parametrize("lat_kw,ap_kw,match", PAIR_WARNINGS, ids=["height", "distance"])
def test_mismatched_pairs_warn(lat_kw, ap_kw, match):
    base = {"pixels": torch.zeros(10, 10), "pixel_spacing_mm": 0.15}
    lat = Radiograph(**{**base, **lat_kw}, view="lateral")
    ap = Radiograph(**{**base, **ap_kw}, view="ap")
    with pytest.warns(UserWarning, match=match):
        check_pair(lat, ap)


def test_matching_pair_passes_silently():
    lat = Radiograph(torch.zeros(10, 10), 0.15, "lateral", patient_id="A")
    ap = Radiograph(torch.zeros(10, 12), 0.15, "ap", patient_id="A")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_pair(lat, ap)


INVALID_RADIOGRAPHS = [
    ({"pixels": torch.zeros(2, 3, 4)}, "2D"),
    ({"pixel_spacing_mm": (0.1, 0.0)}, "pixel_spacing_mm"),
    ({"view": "pa"}, "pa"),
    ({"source_to_patient_mm": 1900.0}, "shorter"),
]


@pytest.mark.parametrize("kw,match", INVALID_RADIOGRAPHS, ids=["3d", "zero-spacing", "unknown-view", "sid-beyond-sdd"])
def test_invalid_radiograph_is_rejected(kw, match):
    args = {"pixels": torch.zeros(4, 4), "pixel_spacing_mm": 0.15, "view": "lateral", **kw}
    with pytest.raises(ValueError, match=match):
        Radiograph(**args)


def test_dicom_without_suffix_is_recognised_by_its_preamble(tmp_path):
    path = write_dicom(tmp_path / "IM0001", gradient_image(), ImagerPixelSpacing=[0.15, 0.15])
    assert read_radiograph(path, "lateral").shape == (500, 400)


def test_unknown_format_is_rejected(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text("not an image")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_radiograph(path, "lateral", pixel_spacing_mm=0.15)
