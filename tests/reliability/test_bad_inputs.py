"""Bad input across the whole pipeline: one test per row of ``bundles/transvert/docs/bad_inputs.md``.

Each test feeds one bad input to the entry point a user hits (``transvert-reconstruct`` /
:meth:`SpineReconstructor.run`, ``transvert-prepare`` / :func:`prepare_dataset`, the bundle's
transforms and loaders, :func:`load_bundle_network`) and checks the exception type, a distinctive
part of the message, and that nothing was written.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from tests.conftest import make_affine
from tests.data.synthetic import SPINE_BOXES, SPINE_SHAPE, affine_for, label_map, save_nifti, write_verse2020_case
from tests.io.synthetic import gradient_image, write_dicom, write_nifti, write_png
from transvert_monai.apps.reconstruct import SpineReconstructor, load_bundle_network, load_weights
from transvert_monai.apps.reconstruct import main as reconstruct_main
from transvert_monai.data import load_datalist
from transvert_monai.data.prepare import main as prepare_main
from transvert_monai.data.prepare import prepare_dataset
from transvert_monai.errors import CheckpointMismatchError, ConfigTypeError, TransVertInputError, UnreadableFileError
from transvert_monai.io import check_pair, read_radiograph
from transvert_monai.networks import TransVert
from transvert_monai.transforms import ExtractVertebraSamplesd, LoadCentroidsd

pytest.importorskip("pydicom")

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"
TINY_CHANNELS = (4, 8, 16, 32)


def _ids(cases: list[tuple]) -> list[str]:
    """Test ids from the names of the functions that make the bad input."""
    return [case[0].__name__.strip("_") for case in cases]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to compare before and after)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ================================================================================================ reconstruction
# A valid pair: 16-bit PNGs with side-cars (0.6 mm pixels, one patient) and T12 annotated in both views.
IMAGE_SHAPE = (200, 120)
SIDECAR = {"pixel_spacing_mm": 0.6, "source_to_detector_mm": 1800, "source_to_patient_mm": 1500, "patient_id": "P1"}
CENTROIDS = {"lateral": {"T12": [100.0, 60.0]}, "ap": {"T12": [100.0, 60.0]}}


@pytest.fixture(scope="module")
def reconstructor() -> SpineReconstructor:
    torch.manual_seed(0)
    return SpineReconstructor(TransVert(channels=TINY_CHANNELS))


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    """The valid inputs of one reconstruction, in ``tmp_path/in``; the output goes to ``tmp_path/out``."""
    folder = tmp_path / "in"
    folder.mkdir()
    image = gradient_image(IMAGE_SHAPE)
    centroids = folder / "centroids.json"
    centroids.write_text(json.dumps(CENTROIDS))
    return {
        "lateral": write_png(folder / "lat.png", image, SIDECAR),
        "ap": write_png(folder / "ap.png", image, SIDECAR),
        "centroids": centroids,
        "out": tmp_path / "out",
    }


def _truncate(path: Path, keep: float | int = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    return path


def _dicom(path: Path, **tags) -> Path:
    tags = {"ImagerPixelSpacing": [0.6, 0.6], "DistanceSourceToDetector": 1800, "DistanceSourceToPatient": 1500, **tags}
    return write_dicom(path, gradient_image(IMAGE_SHAPE), **tags)


def _corrupt_dicom(i):
    path = i["lateral"].with_suffix(".dcm")
    path.write_bytes(b"\x00" * 50 + b"not a DICOM file")
    i["lateral"] = path


def _truncated_dicom(i):
    i["lateral"] = _truncate(_dicom(i["lateral"].with_suffix(".dcm")))


def _dicom_cut_in_its_header(i):
    i["lateral"] = _truncate(_dicom(i["lateral"].with_suffix(".dcm")), 300)


def _ct_slice_dicom(i):
    i["lateral"] = _dicom(i["lateral"].with_suffix(".dcm"), Modality="CT")


def _truncated_png(i):
    _truncate(i["lateral"])


def _truncated_nifti(i):
    path = write_nifti(i["lateral"].with_name("lat.nii.gz"), np.random.default_rng(0).random(IMAGE_SHAPE))
    i["lateral"] = _truncate(path)
    path.with_name("lat.json").write_text(json.dumps(SIDECAR))


def _unknown_format(i):
    path = i["lateral"].with_suffix(".jpg")
    shutil.copy(i["lateral"], path)
    i["lateral"] = path


def _volume_as_radiograph(i):
    path = write_nifti(i["lateral"].with_name("lat.nii.gz"), np.ones((20, 12, 5)))
    path.with_name("lat.json").write_text(json.dumps(SIDECAR))
    i["lateral"] = path


def _nan_pixels(i):
    image = gradient_image(IMAGE_SHAPE).astype(np.float32)
    image[5, 5] = np.nan
    path = write_nifti(i["lateral"].with_name("lat.nii.gz"), image)
    path.with_name("lat.json").write_text(json.dumps(SIDECAR))
    i["lateral"] = path


def _inf_pixels(i):
    image = gradient_image(IMAGE_SHAPE).astype(np.float32)
    image[5, 5] = np.inf
    path = write_nifti(i["lateral"].with_name("lat.nii.gz"), image)
    path.with_name("lat.json").write_text(json.dumps(SIDECAR))
    i["lateral"] = path


def _no_pixel_spacing(i):
    i["lateral"].with_suffix(".json").unlink()


def _sidecar_not_json(i):
    i["lateral"].with_suffix(".json").write_text("pixel_spacing_mm: 0.6")


def _sidecar_of_the_other_view(i):
    i["lateral"].with_suffix(".json").write_text(json.dumps({**SIDECAR, "view": "ap"}))


def _different_patients(i):
    i["lateral"] = _dicom(i["lateral"].with_suffix(".dcm"), PatientID="P001")
    i["ap"] = _dicom(i["ap"].with_suffix(".dcm"), PatientID="P002")


def _missing_radiograph(i):
    i["ap"].unlink()


def _centroids_wrong_layout(i):
    i["centroids"].write_text(json.dumps([{"T12": [100, 60]}]))


def _centroids_not_json(i):
    i["centroids"].write_bytes(b"\xff\xfe{lateral")


def _centroid_outside_the_image(i):
    i["centroids"].write_text(json.dumps({"lateral": {"T12": [500.0, 60.0]}, "ap": {"T12": [100.0, 60.0]}}))


def _unknown_vertebra_name(i):
    i["centroids"].write_text(json.dumps({"lateral": {"T21": [100, 60]}, "ap": {"T21": [100, 60]}}))


def _no_vertebra_in_both_views(i):
    i["centroids"].write_text(json.dumps({"lateral": {"T12": [100, 60]}, "ap": {"L1": [120, 60]}}))


def _nan_centroid(i):
    i["centroids"].write_text('{"lateral": {"T12": [NaN, 60]}, "ap": {"T12": [100, 60]}}')


# (bad input, exception type, distinctive part of the message)
RECONSTRUCTION_CASES = [
    (_corrupt_dicom, UnreadableFileError, "cannot read DICOM file"),
    (_truncated_dicom, UnreadableFileError, "cannot decode the pixels of DICOM file"),
    (_dicom_cut_in_its_header, UnreadableFileError, "holds no pixel data"),
    (_ct_slice_dicom, TransVertInputError, "not a radiograph"),
    (_truncated_png, UnreadableFileError, "cannot read image file"),
    (_truncated_nifti, UnreadableFileError, "is truncated"),
    (_unknown_format, UnreadableFileError, "cannot tell the format"),
    (_volume_as_radiograph, TransVertInputError, "a radiograph is one 2D image"),
    (_nan_pixels, TransVertInputError, "NaN/Inf"),
    (_inf_pixels, TransVertInputError, "NaN/Inf"),
    (_no_pixel_spacing, TransVertInputError, "has no pixel spacing"),
    (_sidecar_not_json, UnreadableFileError, "side-car .* is not valid JSON"),
    (_sidecar_of_the_other_view, TransVertInputError, "describes a 'ap' view"),
    (_different_patients, TransVertInputError, "different patients"),
    (_missing_radiograph, FileNotFoundError, "does not exist"),
    (_centroids_wrong_layout, TransVertInputError, "must hold a JSON object"),
    (_centroids_not_json, UnreadableFileError, "is not valid JSON"),
    (_centroid_outside_the_image, TransVertInputError, "lies outside the 200×120 lateral image"),
    (_unknown_vertebra_name, TransVertInputError, "Unknown vertebra name 'T21'.*Did you mean"),
    (_no_vertebra_in_both_views, TransVertInputError, "no vertebra has centroids in both"),
    (_nan_centroid, TransVertInputError, r"must be \[row, col\] \(two finite numbers\)"),
]


@pytest.mark.parametrize("make_bad,error,match", RECONSTRUCTION_CASES, ids=_ids(RECONSTRUCTION_CASES))
def test_reconstruction_rejects_bad_input_before_writing(reconstructor, inputs, make_bad, error, match):
    make_bad(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-view annotations warn before they fail
        with pytest.raises(error, match=match):
            reconstructor.run(inputs["lateral"], inputs["ap"], inputs["centroids"], inputs["out"])
    assert not inputs["out"].exists()
    assert sorted(p.name for p in inputs["out"].parent.iterdir()) == ["in"]  # no staging folder either


def test_reconstruction_refuses_a_non_empty_output_folder(reconstructor, inputs):
    inputs["out"].mkdir()
    (inputs["out"] / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty.*--overwrite"):
        reconstructor.run(inputs["lateral"], inputs["ap"], inputs["centroids"], inputs["out"])
    assert _files(inputs["out"]) == {"keep.txt": b"mine"}


def test_reconstruction_refuses_an_output_that_is_a_file(reconstructor, inputs):
    inputs["out"].write_text("mine")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        reconstructor.run(inputs["lateral"], inputs["ap"], inputs["centroids"], inputs["out"], overwrite=True)
    assert inputs["out"].read_text() == "mine"


def test_command_line_reports_bad_input_with_exit_code_3(inputs, caplog, tmp_path):
    _different_patients(inputs)
    bundle = _tiny_bundle(tmp_path / "bundle")
    argv = ["--lateral", str(inputs["lateral"]), "--ap", str(inputs["ap"]), "--centroids", str(inputs["centroids"])]
    with caplog.at_level(logging.ERROR):
        code = reconstruct_main([*argv, "--bundle", str(bundle), "--output", str(inputs["out"]), "--device", "cpu"])
    assert code == 3
    assert "transvert-reconstruct: the radiographs belong to different patients" in caplog.text
    assert not inputs["out"].exists()


# the pair is usable but suspicious: a warning, and the reconstruction goes on
PAIR_WARNINGS = [
    ({"pixel_spacing_mm": 1.5}, "cover very different heights"),  # the AP covers 2.5 × the lateral's height
    ({"source_to_detector_mm": 1900}, "different `source_to_detector_mm`"),
]


@pytest.mark.parametrize("ap_sidecar,match", PAIR_WARNINGS, ids=["wildly-different-heights", "different-distances"])
def test_mismatched_views_warn_and_name_both_values(inputs, ap_sidecar, match):
    inputs["ap"].with_suffix(".json").write_text(json.dumps({**SIDECAR, **ap_sidecar}))
    lateral, ap = read_radiograph(inputs["lateral"], "lateral"), read_radiograph(inputs["ap"], "ap")
    with pytest.warns(UserWarning, match=match):
        check_pair(lateral, ap)


def test_views_of_different_pixel_spacing_are_read_at_one_working_spacing(inputs):
    """Not an error: each view is resampled to the working spacing, so the pair is usable."""
    inputs["ap"].with_suffix(".json").write_text(json.dumps({**SIDECAR, "pixel_spacing_mm": [0.5, 0.7]}))
    lateral, ap = read_radiograph(inputs["lateral"], "lateral"), read_radiograph(inputs["ap"], "ap")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_pair(lateral, ap)  # 200 × 0.5 = 100 mm vs 120 mm: within 20 %
    assert lateral.geometry().detector_spacing_mm == ap.geometry().detector_spacing_mm == (1.8, 1.8)


# ================================================================================================ checkpoints
def _tiny_bundle(folder: Path, **inference_overrides) -> Path:
    """A bundle folder with the real inference config (tiny widths) and matching weights."""
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    inference = json.loads((BUNDLE / "configs" / "inference.json").read_text())
    inference.update({"channels": list(TINY_CHANNELS), **inference_overrides})
    (folder / "configs" / "inference.json").write_text(json.dumps(inference))
    torch.save(_tiny_network().state_dict(), folder / "models" / "model.pt")
    return folder


def _tiny_network(**kwargs) -> TransVert:
    """The network of the tiny bundle: the inference config's (shape prior, default grid) at tiny widths."""
    return TransVert(channels=TINY_CHANNELS, shape_prior=True, **kwargs)


def _weights_of_another_width(weights: Path) -> None:
    torch.save(TransVert(channels=(8, 16, 32, 64), shape_prior=True).state_dict(), weights)


def _weights_of_another_variant(weights: Path) -> None:
    torch.save(_tiny_network(variant="sagittal_only").state_dict(), weights)


def _truncated_weights(weights: Path) -> None:
    _truncate(weights)


def _empty_weights(weights: Path) -> None:
    weights.write_bytes(b"")


def _pickled_model(weights: Path) -> None:
    torch.save(TransVert(channels=TINY_CHANNELS), weights)  # the module, not its state dict


def _not_a_state_dict(weights: Path) -> None:
    torch.save([torch.zeros(3)], weights)


def _weights_without_a_grid(weights: Path) -> None:
    state = _tiny_network().state_dict()
    del state["_extra_state"]  # as saved before the sampling grid travelled with the weights
    torch.save(state, weights)


def _weights_of_another_grid(weights: Path) -> None:
    torch.save(_tiny_network(sampling_grid={"pixel_mm_at_vertebra": 1.2}).state_dict(), weights)


CHECKPOINT_CASES = [
    (_weights_of_another_width, CheckpointMismatchError, "(?s)do not fit the network.*tensors differ in shape"),
    (_weights_of_another_variant, CheckpointMismatchError, "(?s)do not fit the network.*not in the (file|network)"),
    (_truncated_weights, UnreadableFileError, "cannot read the weights file .*zip archive"),
    (_empty_weights, UnreadableFileError, "cannot read the weights file"),
    (_pickled_model, UnreadableFileError, "holds objects other than tensors"),
    (_not_a_state_dict, CheckpointMismatchError, "holds a list, not a state dict"),
    (_weights_without_a_grid, CheckpointMismatchError, "carry no sampling grid"),
]


def test_bundle_network_takes_the_sampling_grid_of_its_weights(tmp_path):
    """inference.json builds the network on the grid saved in the weights, so it can't run with another grid."""
    bundle = _tiny_bundle(tmp_path / "bundle")
    _weights_of_another_grid(bundle / "models" / "model.pt")
    assert load_bundle_network(bundle).sampling_grid.pixel_mm_at_vertebra == 1.2


def test_weights_of_another_grid_are_refused_by_a_network_built_for_its_own(tmp_path):
    weights = tmp_path / "model.pt"
    _weights_of_another_grid(weights)
    with pytest.raises(CheckpointMismatchError, match="another sampling grid.*pixel_mm_at_vertebra: weights 1.2, network 1.5"):
        load_weights(_tiny_network(), weights)


@pytest.mark.parametrize("make_bad,error,match", CHECKPOINT_CASES, ids=_ids(CHECKPOINT_CASES))
def test_bad_checkpoint_is_rejected_naming_the_file(tmp_path, make_bad, error, match):
    bundle = _tiny_bundle(tmp_path / "bundle")
    make_bad(bundle / "models" / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the pickle protocol
        with pytest.raises(error, match=match) as info:
            load_bundle_network(bundle)
    assert "model.pt" in str(info.value)


def test_checkpoint_of_the_wrong_architecture_is_also_a_runtime_error(tmp_path):
    bundle = _tiny_bundle(tmp_path / "bundle")
    _weights_of_another_width(bundle / "models" / "model.pt")
    with pytest.raises(RuntimeError, match="another variant or `channels`"):
        load_bundle_network(bundle)


def test_training_checkpoint_is_read_through_its_network_entry(tmp_path):
    bundle = _tiny_bundle(tmp_path / "bundle")
    state = _tiny_network().state_dict()
    torch.save({"network": state, "optimizer": {"state": {}}}, bundle / "models" / "checkpoint_final.pt")
    net = load_bundle_network(bundle, str(bundle / "models" / "checkpoint_final.pt"))
    assert torch.equal(net.state_dict()["head.conv.weight"], state["head.conv.weight"])


INFERENCE_CONFIG_CASES = [
    ({"variant": "sagital"}, TransVertInputError, "cannot build the network.*'sagital'.*sagittal_only"),
    ({"channels": 8}, TransVertInputError, "cannot build the network.*`channels` must be a list"),
]


@pytest.mark.parametrize("override,error,match", INFERENCE_CONFIG_CASES, ids=["unknown-variant", "channels-not-a-list"])
def test_bad_inference_config_names_the_value(tmp_path, override, error, match):
    bundle = _tiny_bundle(tmp_path / "bundle", **override)
    with pytest.raises(error, match=match):
        load_bundle_network(bundle)


def test_inference_config_that_is_not_json_is_rejected(tmp_path):
    bundle = _tiny_bundle(tmp_path / "bundle")
    (bundle / "configs" / "inference.json").write_text("{'variant': 'transvert'}")
    with pytest.raises(UnreadableFileError, match="inference config .* is not valid JSON"):
        load_bundle_network(bundle)


def test_missing_bundle_or_weights_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="inference config .* does not exist"):
        load_bundle_network(tmp_path / "nothere")
    bundle = _tiny_bundle(tmp_path / "bundle")
    with pytest.raises(FileNotFoundError, match="weights .*other.pt does not exist"):
        load_bundle_network(bundle, str(tmp_path / "other.pt"))


def test_command_line_rejects_a_checkpoint_of_the_wrong_architecture(inputs, tmp_path, caplog):
    bundle = _tiny_bundle(tmp_path / "bundle")
    _weights_of_another_width(bundle / "models" / "model.pt")
    argv = ["--lateral", str(inputs["lateral"]), "--ap", str(inputs["ap"]), "--centroids", str(inputs["centroids"])]
    with caplog.at_level(logging.ERROR):
        code = reconstruct_main([*argv, "--bundle", str(bundle), "--output", str(inputs["out"]), "--device", "cpu"])
    assert code == 3 and "do not fit the network" in caplog.text
    assert not inputs["out"].exists()


# ================================================================================================ preparation
SPINE_AFFINE = affine_for("PIR", spacing=(1.0, 1.2, 0.9), origin=(10.0, -20.0, 30.0))
SPINE_MASK = label_map(SPINE_SHAPE, SPINE_BOXES)
CASE = "sub-01_dir-ax"
MIN_VOXELS = 100  # the synthetic vertebrae hold 880–960 voxels


@pytest.fixture
def verse(tmp_path) -> dict[str, Path]:
    """One valid VerSe 2020 case in ``tmp_path/verse``; prepared into ``tmp_path/prepared``."""
    files = write_verse2020_case(tmp_path / "verse", "sub-01", CASE, mask=SPINE_MASK, affine=SPINE_AFFINE)
    return {**files, "root": tmp_path / "verse", "out": tmp_path / "prepared"}


def _prepare(v: dict[str, Path]) -> list[Path]:
    return prepare_dataset("verse", v["root"], v["out"], "verse", folds=2, min_voxels=MIN_VOXELS)


def _corrupt_ct(v):
    v["ct"].write_bytes(b"\x1f\x8b" + b"not gzip data" * 10)


def _truncated_ct(v):
    _truncate(v["ct"])


def _truncated_mask(v):
    _truncate(v["mask"], 0.6)


def _ct_is_2d(v):
    save_nifti(v["ct"], np.zeros(SPINE_SHAPE[:2], np.int16), SPINE_AFFINE)


def _ct_without_affine(v):
    img = nib.Nifti1Image(np.zeros(SPINE_SHAPE, np.int16), SPINE_AFFINE)
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    nib.save(img, str(v["ct"]))


def _ct_with_singular_affine(v):
    header = nib.Nifti1Header()
    header.set_data_shape(SPINE_SHAPE)
    header.set_data_dtype(np.int16)
    header.set_sform(np.eye(4), code=1)
    header["srow_z"] = [0.0, 0.0, 0.0, 30.0]  # the third axis has no length
    header["qform_code"] = 0
    nib.save(nib.Nifti1Image(np.zeros(SPINE_SHAPE, np.int16), None, header=header), str(v["ct"]))


def _ct_with_nan(v):
    ct = np.full(SPINE_SHAPE, 40.0, np.float32)
    ct[3, 4, 5] = np.nan
    save_nifti(v["ct"], ct, SPINE_AFFINE)


def _mask_label_26(v):
    mask = SPINE_MASK.copy()
    mask[1, 1, 1] = 26  # sacrum
    save_nifti(v["mask"], mask, SPINE_AFFINE)


def _mask_not_integer(v):
    save_nifti(v["mask"], SPINE_MASK.astype(np.float32) * 0.5, SPINE_AFFINE)


def _mask_on_another_grid(v):
    save_nifti(v["mask"], SPINE_MASK[:, :, :-4], SPINE_AFFINE)


def _mask_is_2d(v):
    save_nifti(v["mask"], SPINE_MASK[:, :, 30], SPINE_AFFINE)


def _verse_centroids_without_direction(v):
    entries = json.loads(v["centroids"].read_text())
    v["centroids"].write_text(json.dumps(entries[1:]))


def _verse_centroids_not_json(v):
    _truncate(v["centroids"])


def _verse_centroid_outside_the_grid(v):
    entries = json.loads(v["centroids"].read_text())
    entries[2]["X"] = 400.0
    v["centroids"].write_text(json.dumps(entries))


def _verse_centroid_not_a_number(v):
    entries = json.loads(v["centroids"].read_text())
    entries[2]["Y"] = None
    v["centroids"].write_text(json.dumps(entries))


PREPARATION_CASES = [
    (_corrupt_ct, UnreadableFileError, "Cannot read the CT file"),
    (_truncated_ct, UnreadableFileError, "The CT file .* is truncated"),
    (_truncated_mask, UnreadableFileError, "The mask file .* is truncated"),
    (_ct_is_2d, TransVertInputError, "The CT file .* must be a 3D volume"),
    (_mask_is_2d, TransVertInputError, "The mask file .* must be a 3D volume"),
    (_ct_without_affine, TransVertInputError, "has no affine"),
    (_ct_with_singular_affine, TransVertInputError, "is singular"),
    (_ct_with_nan, TransVertInputError, "The CT file .* has 1 NaN/Inf values"),
    (_mask_label_26, TransVertInputError, r"labels \[26\] outside the VerSe vertebra indices"),
    (_mask_not_integer, TransVertInputError, "must hold integer labels"),
    (_mask_on_another_grid, TransVertInputError, "Shape mismatch.*resample the mask"),
    (_verse_centroids_without_direction, TransVertInputError, "has no direction entry"),
    (_verse_centroids_not_json, UnreadableFileError, "VerSe centroid file .* is not valid JSON"),
    (_verse_centroid_outside_the_grid, TransVertInputError, "lies outside the 16×14×60 image grid"),
    (_verse_centroid_not_a_number, TransVertInputError, "X, Y, Z as finite numbers"),
]


@pytest.mark.parametrize("make_bad,error,match", PREPARATION_CASES, ids=_ids(PREPARATION_CASES))
def test_preparation_rejects_bad_input_before_writing(verse, make_bad, error, match):
    make_bad(verse)
    with pytest.raises(error, match=match):
        _prepare(verse)
    assert not verse["out"].exists()  # the case is converted before its folder is made


def test_totalsegmentator_uncompressed_ct_cut_short_is_rejected(tmp_path):
    case, out = tmp_path / "ts" / "s0001", tmp_path / "prepared"
    ct = save_nifti(case / "ct.nii", np.zeros(SPINE_SHAPE, np.int16), SPINE_AFFINE)
    save_nifti(case / "segmentations" / "vertebrae_L1.nii.gz", (SPINE_MASK == 20).astype(np.uint8), SPINE_AFFINE)
    _truncate(ct, 0.7)
    with pytest.raises(UnreadableFileError, match=r"CT file .*ct.nii is truncated: its header promises 26880 bytes"):
        prepare_dataset("totalsegmentator", tmp_path / "ts", out, "ts", folds=2, min_voxels=MIN_VOXELS)
    assert not out.exists()


def test_preparation_keeps_earlier_cases_when_a_later_one_is_bad(verse, tmp_path):
    write_verse2020_case(verse["root"], "sub-02", "sub-02_dir-ax", mask=SPINE_MASK, affine=SPINE_AFFINE)
    bad = verse["root"] / "derivatives" / "sub-02" / "sub-02_dir-ax_seg-vert_msk.nii.gz"
    _truncate(bad)
    with pytest.raises(UnreadableFileError, match="sub-02_dir-ax_seg-vert_msk.nii.gz is truncated"):
        _prepare(verse)
    cases = verse["out"] / "cases"
    assert sorted(p.name for p in cases.iterdir()) == [CASE]  # sub-01 is complete (its manifest is written last)
    assert (cases / CASE / "case.json").is_file()
    assert not (verse["out"] / "data_lists").exists()


@pytest.mark.parametrize("mask", ["empty", "one_voxel"])
def test_mask_without_a_complete_vertebra_leaves_no_data_list(verse, caplog, mask):
    array = np.zeros(SPINE_SHAPE, np.uint8)
    if mask == "one_voxel":
        array[8, 7, 30] = 20
    save_nifti(verse["mask"], array, SPINE_AFFINE)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(TransVertInputError, match="has a complete vertebra.*min_voxels"):
            _prepare(verse)
    assert "has no complete vertebra and is left out of the data lists" in caplog.text
    assert not (verse["out"] / "data_lists").exists()
    manifest = json.loads((verse["out"] / "cases" / CASE / "case.json").read_text())
    assert manifest["vertebrae"] == []
    assert manifest["excluded"] == ({"20": "1 voxels < min_voxels=100"} if mask == "one_voxel" else {})


def test_folder_without_cases_is_rejected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TransVertInputError, match="No verse case found.*rawdata/sub-"):
        prepare_dataset("verse", tmp_path / "empty", tmp_path / "out", "x")
    assert not (tmp_path / "out").exists()


def test_prepare_command_line_reports_bad_input_with_exit_code_3(verse, caplog):
    _truncated_mask(verse)
    argv = ["verse", str(verse["root"]), str(verse["out"]), "--min-voxels", str(MIN_VOXELS), "--folds", "2", "-q"]
    with caplog.at_level(logging.ERROR):
        assert prepare_main(argv) == 3
    assert "transvert-prepare: The mask file" in caplog.text and "is truncated" in caplog.text
    assert not verse["out"].exists()


# ================================================================================================ training
@pytest.fixture
def case() -> dict:
    """One loaded training item: a soft-tissue block with two box vertebrae (20, 21) and their centroids."""
    hu = torch.full((80, 80, 40), -1000.0)
    hu[10:70, 10:70, 2:38] = 40.0
    mask = torch.zeros(80, 80, 40, dtype=torch.uint8)
    mask[30:50, 35:55, 8:16] = 21
    mask[30:50, 35:55, 22:30] = 20
    affine = make_affine()
    centroids = {v: affine[:3, :3] @ (mask == v).nonzero().double().mean(0) + affine[:3, 3] for v in (20, 21)}
    return {
        "ct": MetaTensor(hu[None], affine=affine, meta={"filename_or_obj": "cases/x/ct.nii.gz"}),
        "mask": MetaTensor(mask[None], affine=affine),
        "centroids": centroids,
        "vertebrae": [20, 21],
    }


SMALL = {"sampling_grid": {"patch_size": 32, "target_size": 24, "target_spacing_mm": 2.0, "pixel_mm_at_vertebra": 2.0}}


def test_centroids_outside_the_ct_field_of_view_are_rejected(case):
    case["centroids"][20] = torch.tensor([900.0, 0.0, 0.0], dtype=torch.float64)
    with pytest.raises(TransVertInputError, match=r"vertebrae \[20\] lie outside the CT's field of view"):
        ExtractVertebraSamplesd(**SMALL)(case)


def test_ct_with_nan_voxels_is_rejected_at_training(case):
    case["ct"][0, 5, 5, 5] = float("nan")
    with pytest.raises(TransVertInputError, match="the CT cases/x/ct.nii.gz has 1 NaN/Inf voxels"):
        ExtractVertebraSamplesd(**SMALL)(case)


CENTROID_FILE_CASES = [
    ('[{"direction": ["P", "I", "R"]}]', TransVertInputError, "must be a JSON object with a 'centroids' object"),
    ('{"centroids": {"20": [1.0, 2.0]}}', TransVertInputError, r"\[x, y, z\], three finite numbers"),
    ('{"centroids": {"20": [NaN, 2.0, 3.0]}}', TransVertInputError, r"\[x, y, z\], three finite numbers"),
    ('{"centroids": {"L1": [1.0, 2.0, 3.0]}}', TransVertInputError, "not a VerSe index string"),
    ('{"centroids": {"26": [1.0, 2.0, 3.0]}}', TransVertInputError, "not a VerSe vertebra label"),
    ('{"centroids": {"20": [1, 2, 3]}, "units": "cm"}', TransVertInputError, "must hold RAS millimetres"),
    ('{"centroids": {"20": [1, 2, 3]', UnreadableFileError, "is not valid JSON"),
]


@pytest.mark.parametrize(
    "content,error,match",
    CENTROID_FILE_CASES,
    ids=["verse-list", "two-coordinates", "nan", "name-key", "label-26", "centimetres", "cut-json"],
)
def test_centroid_file_in_the_wrong_layout_is_rejected(tmp_path, content, error, match):
    path = tmp_path / "centroids.json"
    path.write_text(content)
    with pytest.raises(error, match=match) as info:
        LoadCentroidsd("centroids")({"centroids": str(path)})
    assert "centroids.json" in str(info.value)


def _datalist(tmp_path: Path, item: dict) -> Path:
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"training": [item], "validation": [], "testing": []}))
    return path


def test_data_list_with_a_missing_file_is_rejected(tmp_path):
    item = {
        "case": "a",
        "ct": "cases/a/ct.nii.gz",
        "mask": "cases/a/mask.nii.gz",
        "centroids": "cases/a/centroids.json",
        "vertebrae": [20],
    }
    with pytest.raises(TransVertInputError, match=r"training\[0\] \(case 'a'\) key 'ct': file .* does not exist"):
        load_datalist(_datalist(tmp_path, item), "training", tmp_path)


def test_data_list_that_is_not_json_is_rejected(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('{"training": [')
    with pytest.raises(UnreadableFileError, match="Data list .*list.json is not valid JSON"):
        load_datalist(path, "training", tmp_path)


def _chain(err: BaseException) -> str:
    """The messages of an exception and its causes (MONAI wraps a component's error in its own)."""
    messages = []
    while err is not None:
        messages.append(f"{type(err).__name__}: {err}")
        err = err.__cause__
    return "\n".join(messages)


TRAINING_OVERRIDES = [
    ({"variant": "sagital"}, "network_def", ValueError, "Unsupported option 'sagital'.*sagittal_only"),
    ({"channels": 8}, "network_def", ConfigTypeError, r"`channels` must be a list of positive integers.*--channels"),
    ({"target_size": "64"}, "network_def", ConfigTypeError, "`target_size` must be a positive whole number, got '64'"),
    ({"target_spacing_mm": "1.5"}, "train#augmentation", ConfigTypeError, "`target_spacing_mm` must be a positive finite number"),
    ({"max_vertebrae_per_case": 2.5}, "train#augmentation", ValueError, "`max_samples` must be a positive whole"),
]


@pytest.mark.parametrize(
    "override,component,error,match",
    TRAINING_OVERRIDES,
    ids=["unknown-variant", "channels-int", "target-size-str", "spacing-str", "max-vertebrae-float"],
)
def test_training_config_override_of_the_wrong_type_or_value_names_it(tmp_path, override, component, error, match):
    from monai.bundle import ConfigWorkflow

    configs = BUNDLE / "configs"
    wf = ConfigWorkflow(
        config_file=str(configs / "train.json"),
        meta_file=str(configs / "metadata.json"),
        workflow_type="train",
        bundle_root=str(tmp_path),
        dataset_dir=str(tmp_path),
        **override,
    )
    with pytest.raises(Exception) as info:  # MONAI wraps the component's error in a RuntimeError
        wf.parser.get_parsed_content(component)
    chain = _chain(info.value)
    cause = info.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, error), chain
    assert re.search(match, chain, re.S), chain
