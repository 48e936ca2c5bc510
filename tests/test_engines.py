from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator
from monai.handlers import CheckpointSaver, LrScheduleHandler, StatsHandler, ValidationHandler, from_engine

from transvert_monai.engines import TransVertLossKeys, TransVertTrainer
from transvert_monai.geometry import SamplingGrid
from transvert_monai.keys import TransVertKeys
from transvert_monai.losses import TransVertGeneratorLoss
from transvert_monai.networks import TransVert, TransVertDiscriminator

SIZE = 16
CODINGS = ["occupancy", "index"]


def tiny_network(coding: str = "occupancy", **kwargs) -> TransVert:
    grid = SamplingGrid(patch_size=SIZE, target_size=SIZE, target_coding=coding)
    return TransVert(channels=(4, 8), strides=(2, 2), sampling_grid=grid, **kwargs)
LOSS_KEYS = [k.value for k in TransVertLossKeys]
OUTPUT_KEYS = [TransVertKeys.IMAGE.value, TransVertKeys.LABEL.value, TransVertKeys.PRED.value, *LOSS_KEYS]
MODES = [True, False]
MODE_IDS = ["adversarial", "l1-only"]


def make_loader(n_batches: int = 2, batch_size: int = 2, coding: str = "occupancy") -> torch.utils.data.DataLoader:
    """Random inputs and targets: 0/1 (occupancy) or 0/20 (the paper's index coding, L1)."""
    generator = torch.Generator().manual_seed(123)
    value = 1.0 if coding == "occupancy" else 20.0
    data = [
        {
            "image": torch.randn(4, SIZE, SIZE, generator=generator),
            "label": (torch.rand(1, SIZE, SIZE, SIZE, generator=generator) > 0.7).float() * value,
        }
        for _ in range(n_batches * batch_size)
    ]
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)


def make_trainer(
    adversarial: bool = True, seed: int = 0, max_epochs: int = 1, coding: str = "occupancy", **kwargs
) -> TransVertTrainer:
    """A tiny trainer; the index coding gets the paper's loss (L1 on the raw output, D on the raw output)."""
    torch.manual_seed(seed)
    network = tiny_network(coding)
    if coding == "index":
        kwargs.setdefault("loss_function", TransVertGeneratorLoss(target_coding="index"))
    discriminator = TransVertDiscriminator(channels=4, num_layers_d=2) if adversarial else None
    d_optimizer = torch.optim.Adam(discriminator.parameters(), 1e-3) if discriminator is not None else None
    return TransVertTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=kwargs.pop("train_data_loader", make_loader(coding=coding)),
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), 1e-3),
        discriminator=discriminator,
        d_optimizer=d_optimizer,
        adversarial=adversarial,
        **kwargs,
    )


def record_outputs(trainer: TransVertTrainer) -> list[dict]:
    outputs: list[dict] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output))
    return outputs


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, q) for p, q in zip(module.parameters(), before))


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("adversarial", MODES, ids=MODE_IDS)
def test_output_holds_tensors_and_loss_scalars(adversarial, coding):
    trainer = make_trainer(adversarial, coding=coding, decollate=False)
    outputs = record_outputs(trainer)
    trainer.run()
    assert len(outputs) == 2
    for out in outputs:
        assert set(OUTPUT_KEYS) <= set(out)
        assert out[TransVertKeys.PRED.value].shape == (2, 1, SIZE, SIZE, SIZE)
        assert all(out[k].ndim == 0 for k in LOSS_KEYS)
        assert out["loss"].item() == out["g_loss"].item()
        pred = out[TransVertKeys.PRED.value]
        p = torch.sigmoid(pred) if coding == "occupancy" else pred  # logits are monitored as probabilities
        expected_l1 = (p - out[TransVertKeys.LABEL.value]).abs().mean()
        torch.testing.assert_close(out["l1_loss"], expected_l1)
        assert math.isfinite(out["d_loss"].item()) == adversarial


@pytest.mark.parametrize("coding", CODINGS)
def test_generator_loss_is_weighted_l1_without_adversarial_term(coding):
    trainer = make_trainer(adversarial=False, coding=coding, decollate=False)
    outputs = record_outputs(trainer)
    trainer.run()
    for out in outputs:  # default loss: α_G = 10 times the L1 term
        torch.testing.assert_close(out["loss"], 10 * out["l1_loss"])


def test_discriminator_changes_only_in_d_step_and_generator_only_in_g_step():
    trainer = make_trainer(adversarial=True)
    g, d = trainer.network, trainer.discriminator
    state: dict = {}
    log: list[tuple] = []

    def on_start(engine):
        state.update(g0=snapshot(g), d0=snapshot(d), g_grads=grads(g))

    def after_d_step(optimizer, args, kwargs):
        same_g_grads = all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(grads(g), state["g_grads"])
        )
        log.append(("d", changed(d, state["d0"]), changed(g, state["g0"]), same_g_grads))
        state["d1"] = snapshot(d)

    def after_g_step(optimizer, args, kwargs):
        log.append(("g", changed(d, state["d1"]), changed(g, state["g0"])))

    trainer.add_event_handler(Events.ITERATION_STARTED, on_start)
    trainer.d_optimizer.register_step_post_hook(after_d_step)
    trainer.optimizer.register_step_post_hook(after_g_step)
    trainer.run()
    # per iteration: D step (D changed, G unchanged, no gradient into G), then G step (D unchanged, G changed)
    assert log == [("d", True, False, True), ("g", False, True)] * 2


@pytest.mark.parametrize("adversarial", MODES, ids=MODE_IDS)
def test_seeded_training_repeats(adversarial):
    runs = []
    for _ in range(2):
        trainer = make_trainer(adversarial, seed=7, max_epochs=3, train_data_loader=make_loader(n_batches=1))
        outputs = record_outputs(trainer)
        trainer.run()
        runs.append(torch.tensor([[out[0][k] for k in LOSS_KEYS] for out in outputs]))
    assert runs[0].shape == (3, len(LOSS_KEYS))
    torch.testing.assert_close(runs[0], runs[1], equal_nan=True)


def _generator_only_trainer(**kwargs):
    """A trainer given a generator and its optimizer but no discriminator."""
    network = tiny_network()
    return TransVertTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=make_loader(),
        network=network,
        optimizer=torch.optim.Adam(network.parameters()),
        **kwargs,
    )


def test_adversarial_training_needs_discriminator_and_optimizer():
    with pytest.raises(ValueError, match="adversarial=False"):
        _generator_only_trainer()


@pytest.mark.parametrize("value", ["false", 0, None])
def test_adversarial_switch_must_be_a_bool(value):
    """`--adversarial false` on the command line arrives as the (truthy) string 'false': refused, not run adversarially."""
    from transvert_monai.errors import ConfigTypeError

    with pytest.raises(ConfigTypeError, match="`adversarial` must be true or false"):
        _generator_only_trainer(adversarial=value)


def test_monai_handlers_work(tmp_path):
    loader = make_loader()
    trainer = make_trainer(adversarial=True, max_epochs=2, train_data_loader=loader)
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=trainer.network)
    scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    save_dict = {
        "network": trainer.network,
        "discriminator": trainer.discriminator,
        "optimizer": trainer.optimizer,
        "d_optimizer": trainer.d_optimizer,
    }
    handlers = [
        StatsHandler(output_transform=from_engine(["loss"], first=True), tag_name="train_loss"),
        LrScheduleHandler(lr_scheduler=scheduler, print_lr=False),
        ValidationHandler(validator=evaluator, interval=1),
        CheckpointSaver(save_dir=str(tmp_path), save_dict=save_dict, save_interval=1, n_saved=1),
    ]
    for handler in handlers:
        handler.attach(trainer)
    losses: list[float] = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(from_engine(["loss"], first=True)(e.state.output))
    )
    trainer.run()
    assert len(losses) == 4 and all(isinstance(v, float) for v in losses)
    assert evaluator.state.epoch == 2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)
    checkpoint = torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(checkpoint) == set(save_dict)


def _float64_networks() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    network = tiny_network().double()
    return network, TransVertDiscriminator(channels=4, num_layers_d=2).double()


def _float64_items(n: int = 8) -> list[dict]:
    return [{k: v.double() for k, v in item.items()} for item in make_loader(n_batches=n, batch_size=1).dataset]


def _sgd_trainer(network: torch.nn.Module, discriminator: torch.nn.Module, loader) -> TransVertTrainer:
    # plain SGD: Adam would turn float noise in the zero gradients of biases before instance norms into ±lr steps
    return TransVertTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=loader,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), 0.1),
        discriminator=discriminator,
        d_optimizer=torch.optim.SGD(discriminator.parameters(), 0.1),
    )


def _ddp_rank(rank: int, init_file: str, out_dir: str) -> None:
    """One of two gloo processes: DDP-wrapped G and D, batches 4k, 4k+1 (rank 0) or 4k+2, 4k+3 (rank 1) of step k."""
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        network, discriminator = (DistributedDataParallel(m) for m in _float64_networks())
        shard = [item for i, item in enumerate(_float64_items()) if (i // 2) % 2 == rank]
        _sgd_trainer(network, discriminator, torch.utils.data.DataLoader(shard, batch_size=2)).run()
        states = {"network": network.module.state_dict(), "discriminator": discriminator.module.state_dict()}
        torch.save(states, f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_iterations_equal_single_process_iterations_on_the_joined_batches(tmp_path):
    torch.multiprocessing.spawn(_ddp_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    network, discriminator = _float64_networks()
    _sgd_trainer(network, discriminator, torch.utils.data.DataLoader(_float64_items(), batch_size=4)).run()
    for name, module in (("network", network), ("discriminator", discriminator)):
        reference = module.state_dict()
        assert all(
            torch.equal(ranks[0][name][k], ranks[1][name][k]) if isinstance(reference[k], torch.Tensor) else ranks[0][name][k] == ranks[1][name][k]
            for k in reference
        )
        for k, v in reference.items():  # two D steps and two G steps, each with gradients averaged over the ranks
            if isinstance(v, torch.Tensor):
                torch.testing.assert_close(ranks[0][name][k], v, rtol=1e-10, atol=1e-12)
            else:  # the network's extra state (sampling grid, volume ranges)
                assert ranks[0][name][k] == v


# ----------------------------------------------------------------------------- occupancy and the shape prior
DISCRIMINATOR_INPUT_CASES = [
    ({}, "sigmoid"),  # the default loss has the occupancy coding
    ({"loss_function": TransVertGeneratorLoss(target_coding="index")}, "identity"),
    ({"loss_function": TransVertGeneratorLoss(), "discriminator_input": torch.tanh}, "tanh"),
]


@pytest.mark.parametrize("kwargs,expected", DISCRIMINATOR_INPUT_CASES, ids=["default", "index", "explicit"])
def test_discriminator_input_follows_the_loss_coding(kwargs, expected):
    trainer = make_trainer(adversarial=True, **kwargs)
    x = torch.linspace(-3, 3, 7)
    reference = {"sigmoid": torch.sigmoid(x), "identity": x, "tanh": torch.tanh(x)}[expected]
    torch.testing.assert_close(trainer.discriminator_input(x), reference)


def test_discriminator_judges_probabilities_of_occupancy_logits():
    trainer = make_trainer(adversarial=True, decollate=False)
    seen: list[torch.Tensor] = []
    trainer.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    trainer.run()
    assert seen and all(float(t.min()) >= 0.0 and float(t.max()) <= 1.0 for t in seen)


def test_prepare_batch_passes_the_level_to_the_shape_prior():
    """The bundle's ``PrepareBatchExtraInput(extra_keys={"level": "vertebra"})`` reaches ``TransVert.forward(x, level)``."""
    from monai.engines import PrepareBatchExtraInput

    from transvert_monai.networks import fit_training_statistics

    loader = make_loader()
    for i, item in enumerate(loader.dataset):
        item["vertebra"] = torch.tensor(8 + i)
    torch.manual_seed(0)
    network = tiny_network(shape_prior=True)
    fit_training_statistics(network, [(8, torch.ones(1, SIZE, SIZE, SIZE))])
    levels: list[torch.Tensor] = []
    network.register_forward_pre_hook(lambda module, args, kwargs: levels.append(kwargs["level"]), with_kwargs=True)
    trainer = TransVertTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=loader,
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), 1e-3),
        adversarial=False,
        prepare_batch=PrepareBatchExtraInput(extra_keys={"level": "vertebra"}),
    )
    trainer.run()
    assert [t.tolist() for t in levels] == [[8, 9], [10, 11]]
