from __future__ import annotations

import json

import numpy as np
import pytest

from transvert_monai.data.labels import name_to_label
from transvert_monai.posture import VertebraPose, angles_to_rotation
from transvert_monai.posture.alignment import alignment_measures, cobb_angle, posture_summary, spine_curve

THORACOLUMBAR = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]


def _poses(flexion: dict[str, float], bending: dict[str, float] | None = None, names=THORACOLUMBAR):
    poses = {}
    for k, n in enumerate(names):
        centre = np.array([0.0, 0.0, -25.0 * k])
        rot = angles_to_rotation(flexion.get(n, 0.0), (bending or {}).get(n, 0.0), 0.0)
        poses[name_to_label(n)] = VertebraPose(name_to_label(n), centre, rot)
    return poses


def _measure(alignment, key):
    return next(m for m in alignment["measures"] if m["key"] == key)


def test_kyphosis_and_lordosis_of_known_tilts():
    poses = _poses({"T4": 20.0, "T12": -15.0, "L1": -10.0, "L5": 25.0})
    alignment = alignment_measures(poses)
    kyphosis = _measure(alignment, "kyphosis_T4_T12")
    assert kyphosis["value_deg"] == pytest.approx(35.0, abs=1e-6)
    assert kyphosis["levels"] == ["T4", "T12"] and kyphosis["absent_reason"] is None
    assert _measure(alignment, "lordosis_L1_L5")["value_deg"] == pytest.approx(35.0, abs=1e-6)


def test_coronal_cobb_picks_the_most_tilted_end_vertebrae():
    bending = {"T3": -2.0, "T5": 6.0, "T8": -1.0, "T11": -12.0, "L2": 3.0}
    alignment = alignment_measures(_poses({}, bending))
    major = _measure(alignment, "coronal_cobb")
    assert major["value_deg"] == pytest.approx(18.0, abs=1e-6)
    assert major["levels"] == ["T5", "T11"]
    secondary = _measure(alignment, "coronal_cobb_secondary")
    assert secondary["value_deg"] == pytest.approx(15.0, abs=1e-6)  # T11 (-12) to L2 (+3)
    assert secondary["levels"] == ["T11", "L2"]


def test_absent_range_gives_null_and_a_reason():
    alignment = alignment_measures(_poses({}, names=[f"T{i}" for i in range(1, 13)] + ["L1"]))
    lordosis = _measure(alignment, "lordosis_L1_L5")
    assert lordosis["value_deg"] is None and "L5" in lordosis["absent_reason"]
    s1 = _measure(alignment, "lordosis_L1_S1")
    assert s1["value_deg"] is None and "S1" in s1["absent_reason"]
    assert _measure(alignment, "kyphosis_T4_T12")["value_deg"] == pytest.approx(0.0, abs=1e-9)


def test_single_vertebra_has_no_cobb_angle():
    alignment = alignment_measures(_poses({}, names=["T8"]))
    assert _measure(alignment, "coronal_cobb")["value_deg"] is None
    assert alignment["curve_mm"] == [[0.0, 0.0, 0.0]]


def test_axial_rotation_measure_per_vertebra():
    poses = {15: VertebraPose(15, np.zeros(3), angles_to_rotation(0.0, 0.0, 12.0))}
    assert _measure(alignment_measures(poses), "axial_rotation_T8")["value_deg"] == pytest.approx(12.0)


def test_spine_curve_runs_through_the_centres_every_2_mm():
    t = np.linspace(0, 1, 9)
    centres = np.stack([10 * np.sin(np.pi * t), np.zeros_like(t), -200 * t], 1)
    curve = spine_curve(centres)
    steps = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    assert np.all(steps <= 2.0 + 1e-6) and np.median(steps) == pytest.approx(2.0, abs=0.01)
    np.testing.assert_allclose(curve[0], centres[0], atol=1.5)
    np.testing.assert_allclose(curve[-1], centres[-1], atol=1.5)
    dist = np.min(np.linalg.norm(centres[:, None] - curve[None], axis=-1), axis=1)
    assert dist.max() < 1.5


def test_cobb_angle_needs_two_vertebrae():
    from transvert_monai.errors import TransVertInputError

    with pytest.raises(TransVertInputError):
        cobb_angle([3.0])


def test_posture_summary_schema_is_json_ready():
    summary = posture_summary(None, poses=_poses({"T4": 10.0}))
    text = json.dumps(summary)
    back = json.loads(text)
    assert set(back) == {"poses", "alignment"}
    assert list(back["poses"])[:2] == ["T1", "T2"]
    pose = back["poses"]["T4"]
    assert set(pose) >= {"origin_mm", "rotation_matrix", "angles_deg", "method"}
    alignment = back["alignment"]
    assert alignment["frame"] == "RAS mm, patient frame of the radiographs"
    for m in alignment["measures"]:
        assert set(m) == {"key", "name", "value_deg", "levels", "definition", "reference", "absent_reason"}
        assert (m["value_deg"] is None) == (m["absent_reason"] is not None)
    assert len(alignment["curve_mm"]) > 10
