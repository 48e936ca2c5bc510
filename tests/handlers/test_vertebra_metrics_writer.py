from __future__ import annotations

import csv
import logging
import math

import pytest
import torch
from ignite.engine import Engine
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator

from tests.metrics.phantoms import box, centred_cube
from transvert_monai.handlers import SUMMARY_ALL, VERTEBRA_COLUMNS, VertebraMetricsWriter

SPACING_MM = 2.0
# (case, vertebra, prediction, target); predictions are the network inputs of an identity network
SAMPLES = [
    ("case_a", 8, centred_cube(10, value=8.0), centred_cube(6, value=8.0)),  # T1: HD = 2√3 voxels
    ("case_a", 20, box((5, 7, 7), (17, 17, 17), value=20.0), box((7, 7, 7), (17, 17, 17), value=20.0)),  # L1: 2
    ("case_b", 8, centred_cube(6, value=8.0), centred_cube(6, value=8.0)),  # T1: perfect
]
EXPECTED_HD_MM = [2 * math.sqrt(3) * SPACING_MM, 2 * SPACING_MM, 0.0]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_evaluator(tmp_path, samples=SAMPLES, **writer_args):
    affine = torch.diag(torch.tensor([SPACING_MM] * 3 + [1.0], dtype=torch.float64))
    data = [
        {"image": MetaTensor(p[0], affine=affine), "label": MetaTensor(y[0], affine=affine), "case": c, "vertebra": v}
        for c, v, p, y in samples
    ]
    writer = VertebraMetricsWriter(output_dir=tmp_path, n_points=128, **writer_args)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Identity(),
        val_handlers=[writer],
    )
    evaluator.run()
    return writer


def test_writer_writes_one_row_per_vertebra(tmp_path):
    run_evaluator(tmp_path)
    rows = read_csv(tmp_path / "vertebra_metrics.csv")
    assert list(rows[0]) == list(VERTEBRA_COLUMNS)
    assert [(r["case"], r["vertebra"], r["level"]) for r in rows] == [
        ("case_a", "8", "T1"),
        ("case_a", "20", "L1"),
        ("case_b", "8", "T1"),
    ]


def test_writer_rows_hold_the_hausdorff_distance_at_the_label_spacing(tmp_path):
    run_evaluator(tmp_path, spacing_mm=1.0)  # the label affine (2 mm) wins over the argument
    rows = read_csv(tmp_path / "vertebra_metrics.csv")
    assert [float(r["hd_mm"]) for r in rows] == pytest.approx(EXPECTED_HD_MM, rel=1e-5)
    assert float(rows[2]["dice"]) == 1.0


def test_level_summary_has_levels_in_spine_order_and_an_all_row(tmp_path):
    run_evaluator(tmp_path)
    summary = read_csv(tmp_path / "level_summary.csv")
    assert [(r["level"], r["n"]) for r in summary] == [("T1", "2"), ("L1", "1"), (SUMMARY_ALL, "3")]
    t1 = summary[0]
    assert float(t1["hd_mm_mean"]) == pytest.approx((EXPECTED_HD_MM[0] + EXPECTED_HD_MM[2]) / 2, rel=1e-5)
    assert math.isnan(float(summary[1]["dice_std"]))  # one L1: no sample standard deviation


def test_writer_leaves_no_temporary_files(tmp_path):
    run_evaluator(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["level_summary.csv", "vertebra_metrics.csv"]


def test_writer_logs_the_summary(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="transvert_monai.handlers.vertebra_metrics_writer"):
        run_evaluator(tmp_path)
    assert "vertebra metrics of 3 vertebrae" in caplog.text and "L1" in caplog.text


def test_empty_prediction_is_counted_and_has_no_distance(tmp_path):
    empty = [("case_c", 24, torch.zeros_like(centred_cube(6)), centred_cube(6, value=24.0))]
    run_evaluator(tmp_path, samples=SAMPLES[:1] + empty)
    rows = read_csv(tmp_path / "vertebra_metrics.csv")
    assert float(rows[1]["dice"]) == 0.0 and math.isnan(float(rows[1]["hd_mm"]))
    summary = read_csv(tmp_path / "level_summary.csv")
    assert summary[-1]["n_empty"] == "1"


def engine_with_batch_dict_output():
    """A bare ignite Engine whose output is one (non-decollated) batch dict."""

    def step(engine, data):
        return {"pred": data["pred"], "label": data["label"]}

    return Engine(step)


def test_writer_accepts_batch_dict_output_from_a_plain_engine(tmp_path):
    batch = {
        "pred": torch.cat([centred_cube(10, value=12.0), centred_cube(6, value=12.0)]),
        "label": torch.cat([centred_cube(6, value=12.0), centred_cube(6, value=12.0)]),
        "case": ["x", "y"],
        "vertebra": torch.tensor([12, 12]),
    }
    engine = engine_with_batch_dict_output()
    VertebraMetricsWriter(output_dir=tmp_path, spacing_mm=1.5, n_points=128).attach(engine)
    engine.run([batch], max_epochs=1)
    rows = read_csv(tmp_path / "vertebra_metrics.csv")
    assert [r["level"] for r in rows] == ["T5", "T5"]
    assert float(rows[0]["hd_mm"]) == pytest.approx(2 * math.sqrt(3) * 1.5, rel=1e-5)  # plain tensor: argument


def test_missing_identifier_names_the_key(tmp_path):
    batch = {"pred": centred_cube(6), "label": centred_cube(6), "case": ["x"]}
    engine = engine_with_batch_dict_output()
    VertebraMetricsWriter(output_dir=tmp_path).attach(engine)
    with pytest.raises(KeyError, match="'vertebra'"):
        engine.run([batch], max_epochs=1)


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    writer = VertebraMetricsWriter(output_dir=tmp_path)
    writer.epoch_completed()
    assert not any(tmp_path.iterdir())


def test_bad_point_count_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_points"):
        VertebraMetricsWriter(output_dir=tmp_path, n_points=0)


def test_occupancy_samples_are_scored_at_probability_one_half(tmp_path):
    """Occupancy coding: 0/1 targets and probabilities give the same scores as the {0, i} samples."""
    occupancy = [(c, v, p / v * 0.9, (y > 0).float()) for c, v, p, y in SAMPLES]  # probabilities 0.9 inside
    run_evaluator(tmp_path / "index")
    run_evaluator(tmp_path / "occupancy", samples=occupancy)
    index_rows = read_csv(tmp_path / "index" / "vertebra_metrics.csv")
    occupancy_rows = read_csv(tmp_path / "occupancy" / "vertebra_metrics.csv")
    assert [float(r["dice"]) for r in occupancy_rows] == pytest.approx([float(r["dice"]) for r in index_rows])
    assert [float(r["hd_mm"]) for r in occupancy_rows] == pytest.approx(EXPECTED_HD_MM, rel=1e-5)
    assert all(0 < float(r["dice"]) <= 1 for r in occupancy_rows)
