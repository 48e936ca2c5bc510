from __future__ import annotations

import json

from PIL import Image

from transvert_monai.apps.example import BUNDLE_DIR, main


def test_example_job_trains_reconstructs_and_writes_pictures_and_a_summary(tmp_path, example_dataset):
    out = tmp_path / "example"
    assert main(["--output", str(out), "--cache", str(example_dataset.parent), "--train-iterations", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vertebrae"] == list(range(8, 21))
    assert summary["sample_image_shape"] == [4, 64, 64] and summary["sample_label_shape"] == [1, 64, 64, 64]
    assert all(v > 1000 for v in summary["target_voxels"].values())
    for name in ("drr_views.png", "vertebra_samples.png"):
        assert Image.open(out / name).size[0] > 300
    assert (out / "training" / "models" / "model.pt").is_file()
    # centroids carry 1.5 mm of annotation noise per coordinate (ANNOTATION_NOISE_MM): errors of that size, not 0
    errors = list(summary["centre_error_mm"].values())
    assert 0.3 < sum(errors) / len(errors) < 2.5 and max(errors) < 5.0
    assert set(summary["stacked_dice_vs_ct"]) == {str(v) for v in range(8, 21)}
    for name in ("spine.nii.gz", "summary.json", "overlay_lateral.png", "overlay_ap.png", "views.png"):
        assert (out / "reconstruction" / name).is_file()


def test_skip_training_uses_the_shipped_weights(tmp_path, example_dataset):
    assert (BUNDLE_DIR / "models" / "model.pt").is_file(), "the bundle ships its weights"
    out = tmp_path / "example"
    assert main(["--output", str(out), "--cache", str(example_dataset.parent), "--skip-training"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stacked_mean_dice"] > 0.5  # the shipped model reconstructs the spine it was trained on
