"""The deployment chain on synthetic data: radiographs + 2D centroids → patches → placement → stacking → outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from tests.io.synthetic import write_png
from transvert_monai.geometry import ap_view, lateral_view
from transvert_monai.outputs import (
    overlay_projection,
    render_views,
    vertebra_summary_rows,
    write_label_volume_nifti,
    write_meshes,
    write_summary,
)
from transvert_monai.transforms.radiograph import LoadRadiographd, RadiographPatchesd
from transvert_monai.transforms.stacking import PlaceVertebraed, StackVertebraed

trimesh = pytest.importorskip("trimesh")

CENTRES = {19: (5.0, -40.0, 60.0), 20: (8.0, -45.0, 25.0), 21: (10.0, -48.0, -12.0)}  # T12, L1, L2 (world mm)
SHAPE, SPACING = (1000, 400), 0.5  # 500 × 200 mm detectors


def ellipsoids(labels, size=32):
    """Fake network outputs: a {0, i} ellipsoid per vertebra (about 30 × 45 × 40 mm on a 3 mm grid)."""
    g = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32) - (size - 1) / 2] * 3, indexing="ij"), -1)
    inside = ((g / torch.tensor([5.0, 7.5, 6.5])) ** 2).sum(-1) <= 1
    return torch.stack([inside * float(v) for v in labels])[:, None]


def test_radiographs_to_outputs(tmp_path):
    side = {"pixel_spacing_mm": [SPACING, SPACING], "patient_id": "P7"}
    kw = {"detector_size_px": SHAPE, "detector_spacing_mm": SPACING}
    truth = torch.tensor(list(CENTRES.values()), dtype=torch.float64)
    lat_rc, ap_rc = lateral_view(**kw).project(truth), ap_view(**kw).project(truth)
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "lateral": dict(zip(map(str, CENTRES), lat_rc.tolist())),
                "ap": dict(zip(map(str, CENTRES), ap_rc.tolist())),
            }
        )
    )
    item = {
        "lateral": str(write_png(tmp_path / "lat.png", 500 + np.indices(SHAPE).sum(0) % 9, side)),
        "ap": str(write_png(tmp_path / "ap.png", 500 + np.indices(SHAPE).sum(0) % 9, side)),
        "centroids": str(tmp_path / "c.json"),
    }
    d = Compose([LoadRadiographd(["lateral", "ap"]), RadiographPatchesd(), PlaceVertebraed(size=32, spacing_mm=3.0)])(
        item
    )
    assert d["image"].shape == (3, 4, 64, 64)
    torch.testing.assert_close(d["centre_mm"], truth, atol=1e-6, rtol=0)
    d["pred"] = ellipsoids(d["vertebrae"])  # stands in for TransVert
    d = StackVertebraed(output_key="spine", spacing_mm=1.5)(d)
    spine = d["spine"]

    out = tmp_path / "out"
    write_label_volume_nifti(spine, None, out / "spine.nii.gz")
    meshes = write_meshes(spine, None, out / "meshes")
    rows = vertebra_summary_rows(spine, None, d["vertebrae"], d["centre_mm"], d["residual_mm"])
    write_summary(out / "summary.json", rows, placement="cone_beam", skipped=d["missing_vertebrae"])
    s = d["lateral"].resampled(1.8)
    overlay_projection(
        s.pixels, d["lateral_geometry"], spine, None, out / "lateral_overlay.png", points_px=d["centroid_px"][:, 0]
    )
    render_views(spine, None, out / "views.png", dpi=40)

    summary = json.loads((out / "summary.json").read_text())
    assert [v["name"] for v in summary["vertebrae"]] == ["T12", "L1", "L2"]
    assert all(v["quality"] == "ok" for v in summary["vertebrae"])
    # each ellipsoid is ≈ 4/3 π · 15 · 22.5 · 19.5 mm³ ≈ 27.6 ml after two resamplings
    assert [v["volume_ml"] for v in summary["vertebrae"]] == pytest.approx([27.6] * 3, rel=0.1)
    assert all(trimesh.load(p[0], force="mesh").is_watertight for p in meshes.values())
    assert sorted(p.name for p in out.iterdir()) == [
        "lateral_overlay.png",
        "meshes",
        "spine.nii.gz",
        "summary.json",
        "views.png",
    ]
