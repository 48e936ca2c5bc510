from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from transvert_monai.transforms.drr import RenderDRR
from transvert_monai.apps.drr import main


@pytest.fixture
def ct_file(tmp_path, asymmetric_phantom):
    hu, affine, _ = asymmetric_phantom
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(hu.numpy().astype(np.int16), affine.numpy()), str(path))
    return path, MetaTensor(hu[None], affine=affine)


def test_npy_output_is_the_line_integral_image(tmp_path, ct_file):
    path, ct = ct_file
    out = tmp_path / "lat.npy"
    assert main(["--ct", str(path), "--view", "lateral", "--size", "40", "--spacing", "2.5", "--output", str(out)]) == 0
    image = np.load(out)
    assert image.dtype == np.float32 and image.shape == (40, 40)
    expected = RenderDRR("lateral", detector_size_px=(40, 40), detector_spacing_mm=2.5)(ct)[0].numpy()
    assert np.allclose(image, expected, atol=1e-4)


def test_nifti_output_carries_the_detector_affine(tmp_path, ct_file):
    path, ct = ct_file
    out = tmp_path / "ap.nii.gz"
    assert main(["--ct", str(path), "--view", "ap", "--size", "30", "20", "--sdd", "1000", "--sid", "700", "--output", str(out)]) == 0
    saved = nib.load(str(out))
    drr = RenderDRR("ap", source_to_detector_mm=1000, source_to_isocentre_mm=700, detector_size_px=(30, 20))(ct)
    assert saved.shape == (30, 20)
    assert np.allclose(saved.affine, drr.affine.numpy(), atol=1e-4)


def test_png_output_has_a_geometry_sidecar(tmp_path, ct_file):
    path, _ = ct_file
    out = tmp_path / "lat.png"
    assert main(["--ct", str(path), "--size", "32", "--output", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["geometry"]["view"] == "lateral" and sidecar["png_scale"] > 0


BAD = [
    (["--ct", "missing.nii.gz", "--output", "x.npy"], "does not exist"),
    (["--ct", "{ct}", "--output", "x.jpg"], "output format"),
    (["--ct", "{ct}", "--spacing", "-1", "--output", "x.npy"], "detector_spacing_mm"),
    (["--ct", "{ct}", "--sid", "2000", "--output", "x.npy"], "shorter"),
    (["--ct", "{img2d}", "--output", "x.npy"], "3D volume"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[b[1] for b in BAD])
def test_bad_input_exits_with_code_3_and_a_message(tmp_path, ct_file, caplog, argv, message):
    path, _ = ct_file
    img2d = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.float32), np.eye(4)), str(img2d))
    argv = [a.format(ct=path, img2d=img2d) for a in argv]
    argv[-1] = str(tmp_path / argv[-1])
    assert main(argv) == 3
    assert message in caplog.text
    assert not (tmp_path / "x.npy").exists()
