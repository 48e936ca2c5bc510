from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import GEOMETRY, dciodvfy_errors, phantom_image, requires_dciodvfy, write_view
from transvert_monai.dicom import DX_FOR_PRESENTATION_SOP_CLASS, dicom_pixels, write_dx, write_example_study
from transvert_monai.errors import TransVertInputError
from transvert_monai.io import read_radiograph

VIEW_TAGS = [("lateral", "LL", ["A", "F"]), ("ap", "AP", ["L", "F"])]


@pytest.mark.parametrize("view,position,orientation", VIEW_TAGS, ids=["lateral", "ap"])
def test_written_dx_carries_the_geometry_and_view(tmp_path, view, position, orientation):
    path = write_view(tmp_path, "x.dcm", view, study_uid="1.2.3")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == DX_FOR_PRESENTATION_SOP_CLASS and ds.Modality == "DX"
    assert ds.ViewPosition == position and list(ds.PatientOrientation) == orientation
    assert [float(v) for v in ds.ImagerPixelSpacing] == list(GEOMETRY["pixel_spacing_mm"])
    assert float(ds.EstimatedRadiographicMagnificationFactor) == pytest.approx(1.2)
    assert (ds.PhotometricInterpretation, ds.PresentationLUTShape, ds.BitsAllocated) == ("MONOCHROME2", "IDENTITY", 16)


@pytest.mark.parametrize("view", ["lateral", "ap"])
def test_read_radiograph_reads_the_written_geometry(tmp_path, view):
    radiograph = read_radiograph(write_view(tmp_path, "x.dcm", view, study_uid="1.2.3"), view)
    assert radiograph.pixel_spacing_mm == GEOMETRY["pixel_spacing_mm"]
    assert (radiograph.source_to_detector_mm, radiograph.source_to_patient_mm) == (1800.0, 1500.0)
    assert radiograph.patient_id == "P1"


def test_integer_image_is_stored_as_is(tmp_path):
    image = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    path = write_dx(
        image, tmp_path / "i.dcm", view="ap", pixel_spacing_mm=0.2, source_to_detector_mm=1000,
        source_to_patient_mm=900, patient_id="P", patient_name="P", study_uid="1.2.3",
    )  # fmt: skip
    np.testing.assert_array_equal(dicom_pixels(pydicom.dcmread(path)), image)


BAD_ARGUMENTS = [
    ({"view": "oblique"}, "view"),
    ({"pixel_spacing_mm": -1.0}, "pixel_spacing_mm"),
    ({"source_to_patient_mm": 1900.0}, "shorter"),
    ({"photometric_interpretation": "RGB"}, "photometric"),
]


@pytest.mark.parametrize("change,match", BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_are_refused(tmp_path, change, match):
    options = {"view": "lateral", **GEOMETRY, "patient_id": "P", "patient_name": "P", "study_uid": "1.2.3", **change}
    with pytest.raises(TransVertInputError, match=match):
        write_dx(phantom_image(), tmp_path / "x.dcm", **options)


@requires_dciodvfy
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_written_dx_passes_dciodvfy(tmp_path, photometric):
    path = write_view(tmp_path, "x.dcm", "lateral", study_uid="1.2.3", photometric_interpretation=photometric)
    assert dciodvfy_errors(path) == []


def test_example_study_from_nifti_radiographs(tmp_path):
    import nibabel as nib

    source = tmp_path / "radiographs"
    source.mkdir()
    for view in ("lateral", "ap"):
        nib.save(nib.Nifti1Image(phantom_image(), np.diag([0.6, 0.6, 1.0, 1.0])), str(source / f"{view}.nii.gz"))
        sidecar = {"pixel_spacing_mm": [0.6, 0.6], "source_to_detector_mm": 1800.0, "source_to_patient_mm": 1500.0,
                   "patient_id": "example", "view": view}  # fmt: skip
        (source / f"{view}.json").write_text(json.dumps(sidecar))
    centroids = {"lateral": {"T1": [20.0, 18.0]}, "ap": {"T1": [21.0, 19.0]}}
    (source / "centroids.json").write_text(json.dumps(centroids))

    study = write_example_study(tmp_path / "study", source)
    assert study.patient_id == "example" and study.centroids == tmp_path / "study" / "centroids.json"
    assert (study.lateral.view_position, study.ap.view_position) == ("LL", "AP")
    lateral = read_radiograph(study.lateral_path, "lateral")
    expected = phantom_image()
    expected = (expected - expected.min()) / (expected.max() - expected.min()) * 65535
    np.testing.assert_allclose(lateral.pixels.numpy(), expected, atol=0.5)
    assert lateral.pixel_spacing_mm == (0.6, 0.6)
    with pytest.raises(FileExistsError):
        write_example_study(tmp_path / "study", source)
