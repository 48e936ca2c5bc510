"""The bundle's sampling grid, occupancy loss and shape prior: built from train.json and saved with the weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.bundles.test_transvert_bundle import _chain, _workflow
from transvert_monai.geometry import SamplingGrid


@pytest.fixture(scope="module")
def train_workflow(tmp_path_factory, example_dataset):
    """train.json initialised on the example with the tiny overrides (the shape prior fitted on fold 0's training list)."""
    return _workflow(["train.json"], tmp_path_factory.mktemp("bundle"), example_dataset, "train")


def test_train_config_builds_the_grid_network_loss_and_trainer(train_workflow):
    parser = train_workflow.parser
    grid = parser.get_parsed_content("sampling_grid")
    assert grid == SamplingGrid()  # the config states the default grid field by field
    network = parser.get_parsed_content("network_def")
    assert network.sampling_grid == grid and network.prior is not None
    loss = parser.get_parsed_content("loss")
    assert loss.target_coding == "occupancy" and loss.dice_weight == 1.0 and loss.bce_weight == 1.0
    trainer = parser.get_parsed_content("train#trainer")
    assert trainer.discriminator_input is torch.sigmoid
    assert trainer.loss_function is loss and trainer.network is parser.get_parsed_content("network")
    extractor = next(t for t in parser.get_parsed_content("train#preprocessing").transforms if hasattr(t, "grid"))
    assert extractor.grid == grid and extractor.normalize is False  # the appearance augmentation z-scores after it


def test_initialisation_fits_the_prior_and_volume_ranges_on_the_training_levels(train_workflow):
    import json

    parser = train_workflow.parser
    network = parser.get_parsed_content("network_def")
    items = json.loads(Path(parser.get_parsed_content("data_list_file_path")).read_text())["training"]
    levels = sorted({int(v) for item in items for v in item["vertebrae"]})
    assert network.prior.trained_levels == levels
    assert sorted(network.volume_ranges_ml) == levels
    assert all(0.5 < lo <= hi < 200.0 for lo, hi in network.volume_ranges_ml.values())  # ml of real vertebrae


def test_index_coding_with_the_prior_is_refused(tmp_path, example_dataset):
    with pytest.raises(Exception) as info:
        wf = _workflow(["train.json"], tmp_path, example_dataset, "train", target_coding="index")
        wf.parser.get_parsed_content("network_def")
    assert "occupancy" in _chain(info.value)


@pytest.mark.slow
def test_tiny_training_writes_weights_that_carry_the_grid_and_volume_ranges(tmp_path, example_dataset):
    from transvert_monai.apps.reconstruct import load_weights
    from transvert_monai.networks import TransVert

    wf = _workflow(["train.json"], tmp_path, example_dataset, "train")
    wf.run()
    wf.finalize()
    state = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    extra = state["_extra_state"]
    assert SamplingGrid.from_dict(extra["sampling_grid"]) == SamplingGrid()
    assert extra["volume_ranges_ml"] and extra["prior_levels"]
    assert float(state["prior.logits"].abs().sum()) > 0  # the fitted prior travels too
    fresh = TransVert(channels=[4, 8, 16, 32], shape_prior=True)
    load_weights(fresh, tmp_path / "models" / "model.pt")
    assert fresh.volume_ranges_ml and fresh.prior.trained_levels == [int(v) for v in extra["prior_levels"]]
    other = TransVert(channels=[4, 8, 16, 32], shape_prior=True, sampling_grid={"pixel_mm_at_vertebra": 1.2})
    with pytest.raises(Exception, match="pixel_mm_at_vertebra"):
        load_weights(other, tmp_path / "models" / "model.pt")
