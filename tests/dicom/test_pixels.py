from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.dicom.conftest import phantom_image, write_view
from transvert_monai.dicom import dicom_pixels, dx_dataset
from transvert_monai.errors import TransVertInputError, UnreadableFileError


def _ds(photometric="MONOCHROME2"):
    return dx_dataset(
        phantom_image(), view="lateral", pixel_spacing_mm=0.5, source_to_detector_mm=1800, source_to_patient_mm=1500,
        patient_id="P", patient_name="P", study_uid="1.2.3", photometric_interpretation=photometric,
    )  # fmt: skip


def _monochrome2_as_inverse(ds):
    ds.PresentationLUTShape = "INVERSE"
    ds.PixelData = (65535 - ds.pixel_array.astype(np.int64)).astype("<u2").tobytes()


def _monochrome1_without_shape(ds):
    del ds.PresentationLUTShape


INVERTED_CASES = [
    ("MONOCHROME1", None),
    ("MONOCHROME2", _monochrome2_as_inverse),
    ("MONOCHROME1", _monochrome1_without_shape),
]


@pytest.mark.parametrize(
    "photometric,edit", INVERTED_CASES, ids=["monochrome1_inverse", "monochrome2_inverse", "monochrome1_no_shape"]
)
def test_inverted_images_read_equal_to_the_monochrome2_image(tmp_path, photometric, edit):
    reference = dicom_pixels(pydicom.dcmread(write_view(tmp_path, "m2.dcm", "lateral", study_uid="1.2.3")))
    path = write_view(
        tmp_path, "inv.dcm", "lateral", study_uid="1.2.3", photometric_interpretation=photometric, edit=edit
    )
    ds = pydicom.dcmread(path)
    assert ds.pixel_array.astype(float).mean() != pytest.approx(reference.mean())  # stored differently
    np.testing.assert_array_equal(dicom_pixels(ds), reference)


def test_pixels_are_float32_with_bone_bright():
    image = phantom_image()
    pixels = dicom_pixels(_ds())
    assert pixels.dtype == np.float32 and pixels.shape == image.shape
    # the scaled image: min → 0, max → 65535, order kept
    expected = np.rint((image - image.min()) / (image.max() - image.min()) * 65535)
    np.testing.assert_array_equal(pixels, expected)


def test_rescale_slope_and_intercept_are_applied():
    ds = _ds()
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    np.testing.assert_allclose(dicom_pixels(ds), dicom_pixels(_ds()) * 2 - 100)


def test_voi_window_is_applied_only_when_asked():
    ds = _ds()
    ds.WindowCenter, ds.WindowWidth = 1000, 500
    plain = dicom_pixels(ds)
    windowed = dicom_pixels(ds, apply_voi=True)
    saturated = lambda x: np.count_nonzero(x == x.max())  # noqa: E731
    assert saturated(plain) == 1 and saturated(windowed) > 100  # the window clips everything above 1250


def test_colour_image_is_refused():
    ds = _ds()
    ds.PhotometricInterpretation = "YBR_FULL"
    with pytest.raises(TransVertInputError, match="MONOCHROME1/2"):
        dicom_pixels(ds)


def test_dataset_without_pixel_data_is_refused():
    ds = Dataset()
    ds.Modality = "SR"
    with pytest.raises(UnreadableFileError, match="no pixel data"):
        dicom_pixels(ds)


def test_inversion_keeps_the_image_range():
    ds = _ds()
    values = (ds.pixel_array.astype(np.int64) // 2 + 1000).astype("<u2")  # range [1000, 33767]
    ds.PixelData = values.tobytes()
    ds.PhotometricInterpretation, ds.PresentationLUTShape = "MONOCHROME1", "INVERSE"
    np.testing.assert_array_equal(dicom_pixels(ds), values.max() + values.min() - values.astype(np.float64))
