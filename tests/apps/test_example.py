from __future__ import annotations

import json

from PIL import Image

from transvert_monai.apps.example import main


def test_example_job_writes_pictures_and_a_summary(tmp_path, example_dataset):
    out = tmp_path / "example"
    assert main(["--output", str(out), "--cache", str(example_dataset.parent)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vertebrae"] == list(range(8, 21))
    assert summary["sample_image_shape"] == [4, 64, 64] and summary["sample_label_shape"] == [1, 64, 64, 64]
    assert all(v > 1000 for v in summary["target_voxels"].values())
    for name in ("drr_views.png", "vertebra_samples.png"):
        assert Image.open(out / name).size[0] > 300
    assert (out / "drr_lateral.nii.gz").stat().st_size > 10_000
