"""The metric classes as `key_val_metric` of a real MONAI SupervisedEvaluator via IgniteMetricHandler."""

from __future__ import annotations

import math

import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, from_engine

from tests.metrics.phantoms import box, centred_cube
from transvert_monai.metrics import (
    ChamferDistanceMetric,
    VertebraDiceMetric,
    VertebraHausdorffMetric,
    compute_chamfer_distance,
    compute_vertebra_dice,
)

SPACING_MM = 2.0


def evaluator_for(metrics: dict) -> SupervisedEvaluator:
    """Identity network: the "image" of each item is its prediction; labels carry a 2 mm affine."""
    affine = torch.diag(torch.tensor([SPACING_MM] * 3 + [1.0], dtype=torch.float64))
    preds = [centred_cube(10, value=8.0)[0], box((5, 7, 7), (17, 17, 17), value=20.0)[0]]
    labels = [centred_cube(6, value=8.0)[0], box((7, 7, 7), (17, 17, 17), value=20.0)[0]]
    data = [
        {"image": MetaTensor(p, affine=affine), "label": MetaTensor(y, affine=affine)} for p, y in zip(preds, labels)
    ]
    handlers = {
        name: IgniteMetricHandler(metric_fn=metric, output_transform=from_engine(["pred", "label"]))
        for name, metric in metrics.items()
    }
    key, *others = handlers
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Identity(),
        key_val_metric={key: handlers[key]},
        additional_metrics={name: handlers[name] for name in others} or None,
    )


def expected_batch():
    preds = torch.cat([centred_cube(10, value=8.0), box((5, 7, 7), (17, 17, 17), value=20.0)])
    labels = torch.cat([centred_cube(6, value=8.0), box((7, 7, 7), (17, 17, 17), value=20.0)])
    return preds, labels


def test_dice_metric_runs_as_key_metric_of_an_evaluator():
    evaluator = evaluator_for({"dice": VertebraDiceMetric()})
    evaluator.run()
    expected = compute_vertebra_dice(*expected_batch()).mean()
    assert evaluator.state.metrics["dice"] == pytest.approx(float(expected))


def test_hausdorff_metric_uses_the_label_affine_spacing():
    # item 1: concentric cubes 10 vs 6 → √3·2 voxels; item 2: box moved 2 voxels along axis 0 → 2 voxels
    evaluator = evaluator_for({"hd": VertebraHausdorffMetric(spacing_mm=1.0)})
    evaluator.run()
    expected = (2 * math.sqrt(3) + 2) / 2 * SPACING_MM
    assert evaluator.state.metrics["hd"] == pytest.approx(expected, rel=1e-5)


def test_chamfer_metric_runs_next_to_a_key_metric():
    evaluator = evaluator_for({"dice": VertebraDiceMetric(), "chamfer": ChamferDistanceMetric(n_points=256)})
    evaluator.run()
    expected = compute_chamfer_distance(*expected_batch(), spacing_mm=SPACING_MM, n_points=256).mean()
    assert evaluator.state.metrics["chamfer"] == pytest.approx(float(expected), rel=1e-5)
