from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.data.synthetic import affine_for, save_nifti
from transvert_monai.data.volume import check_same_grid, load_volume


def _no_orientation(path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), np.eye(4))
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    nib.save(img, str(path))


def _singular(path):
    affine = np.eye(4)
    affine[1, 1] = 0.0
    img = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), None)
    img.header.set_sform(affine, code=1)
    nib.save(img, str(path))


INVALID_VOLUMES = [
    (lambda p: save_nifti(p, np.zeros((8, 8), dtype=np.int16), np.eye(4)), "must be a 3D volume"),
    (lambda p: save_nifti(p, np.zeros((4, 4, 4, 3), dtype=np.int16), np.eye(4)), "must be a 3D volume"),
    (_no_orientation, "has no affine"),
    (_singular, "singular"),
    (lambda p: p.write_bytes(b"not a nifti"), "Cannot read"),
]


@pytest.mark.parametrize("write,message", INVALID_VOLUMES, ids=["2d", "4d", "no_affine", "singular", "garbage"])
def test_unusable_volume_is_rejected(tmp_path, write, message):
    path = tmp_path / "ct.nii.gz"
    write(path)
    with pytest.raises(ValueError, match=message):
        load_volume(path, role="CT")


def test_missing_volume_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.nii.gz"):
        load_volume(tmp_path / "nothere.nii.gz")


def test_trailing_singleton_dimension_is_squeezed(tmp_path):
    path = save_nifti(tmp_path / "ct.nii.gz", np.zeros((4, 5, 6, 1), dtype=np.int16), affine_for("LPS"))
    assert load_volume(path).shape == (4, 5, 6)


def test_shape_mismatch_between_ct_and_mask_is_rejected(tmp_path):
    ct = load_volume(save_nifti(tmp_path / "ct.nii.gz", np.zeros((4, 5, 6), dtype=np.int16), np.eye(4)))
    mask = load_volume(save_nifti(tmp_path / "m.nii.gz", np.zeros((4, 5, 7), dtype=np.uint8), np.eye(4)))
    with pytest.raises(ValueError, match="Shape mismatch.*resample the mask"):
        check_same_grid(ct, mask)


def test_affine_mismatch_between_ct_and_mask_is_rejected(tmp_path):
    ct = load_volume(save_nifti(tmp_path / "ct.nii.gz", np.zeros((4, 5, 6), dtype=np.int16), np.eye(4)))
    shifted = affine_for("RAS", origin=(0.0, 0.0, 5.0))
    mask = load_volume(save_nifti(tmp_path / "m.nii.gz", np.zeros((4, 5, 6), dtype=np.uint8), shifted))
    with pytest.raises(ValueError, match="Affine mismatch"):
        check_same_grid(ct, mask)
