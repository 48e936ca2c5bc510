from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import make_affine
from transvert_monai.outputs import quality_flag, summary_row, vertebra_summary_rows, write_summary


def spine():
    vol = torch.zeros(20, 20, 20, dtype=torch.uint8)
    vol[2:8, 2:10, 2:6] = 19  # 192 voxels
    vol[10:18, 2:12, 8:14] = 20  # 480 voxels
    return vol


AFFINES = [make_affine((1.0, 1.0, 1.0)), make_affine((1.0, 1.0, 2.5)), make_affine((0.5, 0.8, 3.0))]


@pytest.mark.parametrize("affine", AFFINES, ids=["iso", "anisotropic", "odd"])
def test_volumes_are_voxel_count_times_voxel_volume(affine):
    rows = vertebra_summary_rows(spine(), affine, [20, 19], torch.zeros(2, 3), torch.zeros(2))
    voxel_ml = float(torch.linalg.det(affine[:3, :3])) / 1000
    assert [r["name"] for r in rows] == ["T12", "L1"]  # cranial to caudal
    assert [r["voxels"] for r in rows] == [192, 480]
    assert [r["volume_ml"] for r in rows] == pytest.approx([192 * voxel_ml, 480 * voxel_ml])


# (voxels, volume ml, residual mm) → flag
FLAG_CASES = [
    ((5000, 50.0, 0.5), "ok"),
    ((5000, 50.0, 7.25), "check: residual 7.2 mm > 5 mm"),
    ((0, 0.0, 0.5), "check: empty shape"),
    ((100, 0.1, 0.5), "check: small shape (0.10 ml < 1 ml)"),
    ((0, 0.0, float("nan")), "check: empty shape; check: residual nan mm > 5 mm"),
]


@pytest.mark.parametrize("args,flag", FLAG_CASES, ids=["ok", "residual", "empty", "small", "empty-and-nan"])
def test_quality_flags(args, flag):
    assert quality_flag(*args) == flag


def test_missing_vertebra_in_the_map_is_flagged_empty():
    rows = vertebra_summary_rows(
        spine(), make_affine(), [19, 21], torch.zeros(2, 3), torch.tensor([0.1, 9.0]), min_volume_ml=0.1
    )
    assert rows[1]["quality"] == "check: empty shape; check: residual 9.0 mm > 5 mm" and rows[0]["quality"] == "ok"


def test_summary_json_holds_the_rows(tmp_path):
    rows = vertebra_summary_rows(
        spine(), make_affine(), [19, 20], torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), torch.tensor([0.2, 0.3])
    )
    path = write_summary(tmp_path / "summary.json", rows, placement="cone_beam", skipped={21: "ap"})
    data = json.loads(path.read_text())
    assert data["coordinate_system"] == "RAS" and data["placement"] == "cone_beam"
    assert data["vertebrae"][1]["centre_mm"] == [4.0, 5.0, 6.0] and data["vertebrae"][1]["label"] == 20
    assert data["skipped"] == {"L2": "no ap centroid"}


BAD_ROWS = [
    ([{"label": 20, "name": "L1"}], "lacks"),
    (
        [
            {
                "label": 20,
                "name": "L1",
                "centre_mm": [0, 0],
                "residual_mm": 0,
                "voxels": 1,
                "volume_ml": 1.0,
                "quality": "ok",
                "quality_checks": [],
            }
        ],
        "3D centre",
    ),
    ([{**summary_row(20, [0, 0, 0], 0.1, 10, 30.0), "quality_checks": ["looks_odd"]}], "must list names"),
    ([{**summary_row(20, [0, 0, 0], 0.1, 10, 30.0), "quality_checks": ["small_shape"]}], "disagrees"),
    ([{**summary_row(20, [0, 0, 0], 0.1, 10, 30.0), "quality": "check: x"}], "disagrees"),
]


@pytest.mark.parametrize(
    "rows,match", BAD_ROWS, ids=["missing-keys", "2d-centre", "unknown-check", "ok-with-checks", "flag-without-checks"]
)
def test_bad_rows_fail_before_writing(tmp_path, rows, match):
    with pytest.raises(ValueError, match=match):
        write_summary(tmp_path / "summary.json", rows)
    assert not (tmp_path / "summary.json").exists()


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="one centre and one residual"):
        vertebra_summary_rows(spine(), make_affine(), [19, 20], torch.zeros(1, 3), torch.zeros(2))


def test_rows_without_ranges_keep_the_old_flags_and_list_no_checks():
    rows = vertebra_summary_rows(spine(), make_affine(), [19, 20], torch.zeros(2, 3), torch.zeros(2), min_volume_ml=0.1)
    assert [(r["quality"], r["quality_checks"]) for r in rows] == [("ok", []), ("ok", [])]


def test_a_vertebra_far_below_its_training_volume_is_not_ok_in_summary_json(tmp_path):
    # the shipped model's lumbar shapes held 9–20 % of the true volume: here a 1.2 ml L1 against 6–10 ml
    vol = spine()  # 2.5 mm³ voxels: T12 0.48 ml, L1 1.2 ml
    ranges = {19: (0.4, 0.6), 20: (6.0, 10.0)}
    rows = vertebra_summary_rows(
        vol, make_affine(), [19, 20], torch.zeros(2, 3), torch.zeros(2), volume_ranges_ml=ranges
    )
    assert rows[0]["quality"] == "ok" and rows[0]["quality_checks"] == []
    assert rows[1]["quality_checks"] == ["volume_below_training_range"]
    assert rows[1]["quality"] == "check: volume 1.2 ml below the 6.0–10.0 ml seen for L1 in training (limit 4.5 ml)"
    path = write_summary(tmp_path / "summary.json", rows, placement="cone_beam")
    data = json.loads(path.read_text())
    assert data["vertebrae"][1]["quality_checks"] == ["volume_below_training_range"]
    assert data["vertebrae"][1]["quality"].startswith("check: volume 1.2 ml below")
    assert data["vertebrae"][0]["quality_checks"] == []


def test_json_ranges_and_the_nearest_level_fallback_reach_the_rows():
    ranges = json.loads(json.dumps({19: [0.4, 0.6]}))  # as read back from the weights' side-car: string keys
    rows = vertebra_summary_rows(
        spine(), make_affine(), [19, 20], torch.zeros(2, 3), torch.zeros(2), volume_ranges_ml=ranges
    )
    assert rows[1]["quality_checks"] == ["volume_above_training_range"]
    assert "seen for T12 in training (nearest level; L1 was not in training)" in rows[1]["quality"]


def test_a_label_split_in_two_is_flagged_fragmented():
    vol = spine()
    vol[14:18, 14:18, 16:20] = 19  # 64 more T12 voxels, far from its 192: 75 % in the largest part
    rows = vertebra_summary_rows(vol, make_affine(), [19, 20], torch.zeros(2, 3), torch.zeros(2), min_volume_ml=0.1)
    assert rows[0]["quality_checks"] == ["fragmented_shape"] and "largest connected part 75%" in rows[0]["quality"]
    assert rows[1]["quality"] == "ok"


def test_positional_arguments_still_work():
    row = summary_row(20, [1.0, 2.0, 3.0], 6.0, 100, 0.5, 5.0, 1.0)
    assert row["quality_checks"] == ["small_shape", "large_residual"]
    assert row["quality"] == "check: small shape (0.50 ml < 1 ml); check: residual 6.0 mm > 5 mm"
