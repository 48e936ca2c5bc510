"""Training engine of TransVert: a conditional LSGAN trainer (paper §2.1, Eq. 2–3).

MONAI's ``GanTrainer`` generates from noise and its ``AdversarialTrainer`` shows the generator's
*input* to the discriminator as "real", so neither fits a 2D→3D generator judged against its 3D
target; :class:`TransVertTrainer` is a small :class:`monai.engines.Trainer` in the shape of
``SupervisedTrainer``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.engines.evaluator import SupervisedEvaluator
from monai.engines.trainer import Trainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn, default_prepare_batch
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Transform
from monai.utils import IgniteInfo, min_version, optional_import
from monai.utils.enums import StrEnum
from torch.nn.parallel import DistributedDataParallel
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from transvert_monai.geometry import TargetCoding
from transvert_monai.keys import TransVertKeys
from transvert_monai.losses import TransVertDiscriminatorLoss, TransVertGeneratorLoss

if TYPE_CHECKING:
    from ignite.engine import Engine, EventEnum
    from ignite.metrics import Metric
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")
    Metric, _ = optional_import("ignite.metrics", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Metric")
    EventEnum, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "EventEnum")

__all__ = ["StudyEvaluator", "TransVertTrainer", "TransVertLossKeys", "losses_from_output"]

logger = logging.getLogger(__name__)


class TransVertLossKeys(StrEnum):
    """Scalar losses :class:`TransVertTrainer` puts in ``engine.state.output``."""

    LOSS = "loss"  #: generator total ``L_G`` (what ``StatsHandler``/``EarlyStopHandler`` usually watch)
    G_LOSS = "g_loss"  #: generator total ``L_G``, same value as ``loss``
    D_LOSS = "d_loss"  #: discriminator loss ``L_D`` (NaN when ``adversarial=False``)
    L1_LOSS = "l1_loss"  #: unweighted mean absolute error of D's input and the target, for monitoring


def _check_whole_number(value: Any, name: str) -> None:
    """Refuse a count that is not a positive whole number (e.g. ``--max_epochs abc`` from the command line)."""
    from transvert_monai.errors import ConfigTypeError

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigTypeError(
            f"`{name}` must be a positive whole number, got {value!r} ({type(value).__name__}); e.g. --{name} 40 on the "
            "command line, or a number (not a string) in the config."
        )


class TransVertTrainer(Trainer):
    """Trainer of TransVert and its discriminator: per iteration one D step, then one G step.

    One iteration on a batch ``{image: (B, 4, H, W), label: (B, 1, H, W, W)}``:

    1. ``pred = G(image)`` (through ``inferer``);
    2. D step (if ``adversarial``): ``d_loss = d_loss_function(D(label), D(pred.detach()))``,
       backward and ``d_optimizer.step()``; the generator gets no gradient from it;
    3. G step: ``loss = loss_function(pred, label, D(pred))`` with the updated D (or
       ``loss_function(pred, label)`` without the adversarial part), backward and
       ``optimizer.step()``. D's parameters are not frozen for it (toggling ``requires_grad`` breaks
       a DDP-wrapped D), so its backward also fills D's ``.grad``; they are cleared by the next D
       step's ``zero_grad`` and never reach ``d_optimizer.step()``.

    Distributed data parallel: ``network`` and ``discriminator`` may both be wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (one process per device, each with its own
    loader shard); an iteration then equals one on the concatenation of the ranks' batches, with
    every rank keeping identical weights:

    * G runs forward once per iteration and backward once (step 3), so its gradients are averaged
      once; the D step in between never reaches G (``pred.detach()``).
    * D runs forward twice (real, fake) before the D step's single backward. DDP allows this:
      autograd sums a parameter's gradients from both uses before its accumulation hook fires, so
      every D parameter is reduced exactly once; every parameter takes part, so
      ``find_unused_parameters`` is not needed.
    * D's forward in the G step runs under ``no_sync()``: the G loss still back-propagates through D
      to ``pred``, but the gradients it leaves on D's parameters are discarded (see above), so they
      are not all-reduced.

    An evaluator given the DDP-wrapped ``network`` runs it under ``torch.no_grad``, where DDP does not
    communicate as long as the network has no buffers to broadcast (TransVert has none), so the
    ranks may validate different numbers of batches.

    ``engine.state.output`` then holds ``image``, ``label``, ``pred`` (:class:`TransVertKeys`) and
    the detached scalars ``loss`` (= ``g_loss``), ``g_loss``, ``d_loss``, ``l1_loss``
    (:class:`TransVertLossKeys`); with ``decollate=True`` it is decollated per sample like
    ``SupervisedTrainer``'s, so ``from_engine(["loss"], first=True)`` works in handlers.
    ``CheckpointSaver`` can save ``network``, ``discriminator``, ``optimizer`` and ``d_optimizer``
    (attributes of the same names). ``IterationEvents`` fire around the G step as in
    ``SupervisedTrainer``.

    Args:
        device: device to run on.
        max_epochs: total number of epochs.
        train_data_loader: loader of batch dicts with ``image`` and ``label``.
        network: the generator (e.g. :class:`~transvert_monai.networks.TransVert`).
        optimizer: optimizer of ``network``.
        discriminator: the discriminator (e.g. :class:`~transvert_monai.networks.TransVertDiscriminator`),
            returning a patch map or a list of them; required when ``adversarial``.
        d_optimizer: optimizer of ``discriminator``; required when ``adversarial``.
        loss_function: ``(pred, label[, d_fake_outputs]) -> loss``. Defaults to
            :class:`~transvert_monai.losses.TransVertGeneratorLoss` (α_G = 10, α_D = 0.1).
        d_loss_function: ``(d_real_outputs, d_fake_outputs) -> loss``. Defaults to
            :class:`~transvert_monai.losses.TransVertDiscriminatorLoss`.
        adversarial: train with the adversarial component (paper's full model). ``False`` gives a
            plain L1 trainer; ``discriminator`` and ``d_optimizer`` may then be None and are ignored.
        epoch_length: iterations per epoch. Defaults to ``len(train_data_loader)``.
        non_blocking: asynchronous host→device copies where possible.
        prepare_batch: ``(batch, device, non_blocking, **to_kwargs) -> (image, label)``; defaults to
            MONAI's ``default_prepare_batch`` (keys ``image``, ``label``).
        iteration_update: replaces :meth:`_iteration` if given.
        inferer: runs the generator forward. Defaults to ``SimpleInferer()``.
        postprocessing: transforms applied to the output after each iteration.
        key_train_metric: key metric attached to the engine (``{name: ignite Metric}``).
        additional_metrics: further metrics.
        metric_cmp_fn: compares the key metric with the best so far.
        train_handlers: handlers to attach (``StatsHandler``, ``CheckpointSaver``, ``ValidationHandler``...).
        amp: mixed precision on CUDA (one ``GradScaler`` shared by both optimizers). Defaults to False.
        event_names: extra events to register.
        event_to_attr: event to ``engine.state`` attribute map.
        decollate: decollate the output per sample after the iteration. Defaults to True.
        optim_set_to_none: ``zero_grad(set_to_none=...)`` for both optimizers.
        to_kwargs: extra arguments of ``prepare_batch``'s tensor conversion.
        amp_kwargs: arguments of ``torch.autocast("cuda")``.
        discriminator_input: maps the generator output to what D judges against the targets (and what
            ``l1_loss`` monitors), e.g. ``torch.sigmoid`` for occupancy logits (targets 0/1). Default: the
            sigmoid when ``loss_function`` has the occupancy coding (the default loss does), else the
            output itself (the index coding, or a loss that states no coding).

    Raises:
        ValueError: when ``adversarial`` is True but ``discriminator`` or ``d_optimizer`` is missing.

    Example::

        g, d = TransVert(), TransVertDiscriminator()
        trainer = TransVertTrainer(
            device=torch.device("cpu"), max_epochs=10, train_data_loader=loader,
            network=g, optimizer=torch.optim.Adam(g.parameters(), 1e-4),
            discriminator=d, d_optimizer=torch.optim.Adam(d.parameters(), 1e-4),
            train_handlers=[StatsHandler(output_transform=from_engine(["loss"], first=True))],
        )
        trainer.run()
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        optimizer: Optimizer,
        discriminator: torch.nn.Module | None = None,
        d_optimizer: Optimizer | None = None,
        loss_function: Callable | None = None,
        d_loss_function: Callable | None = None,
        adversarial: bool = True,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = default_prepare_batch,
        iteration_update: Callable[[Engine, Any], Any] | None = None,
        inferer: Inferer | None = None,
        postprocessing: Transform | None = None,
        key_train_metric: dict[str, Metric] | None = None,
        additional_metrics: dict[str, Metric] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        event_names: list[str | EventEnum | type[EventEnum]] | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
        discriminator_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(adversarial, bool):  # e.g. the string "false" from a command-line override, which is truthy
            from transvert_monai.errors import ConfigTypeError

            raise ConfigTypeError(
                f"`adversarial` must be true or false, got {adversarial!r} ({type(adversarial).__name__}); on the "
                "command line write --adversarial False (Python's spelling), or set it in a config file."
            )
        _check_whole_number(max_epochs, "max_epochs")
        if epoch_length is not None:
            _check_whole_number(epoch_length, "epoch_length")
        if adversarial and (discriminator is None or d_optimizer is None):
            raise ValueError(
                "TransVertTrainer with `adversarial=True` needs `discriminator` and `d_optimizer` "
                f"(got discriminator={type(discriminator).__name__}, d_optimizer={type(d_optimizer).__name__}); "
                "pass both (e.g. transvert_monai.networks.TransVertDiscriminator and an Adam over its parameters) "
                "or set `adversarial=False` for plain L1 training."
            )
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            iteration_update=iteration_update,
            postprocessing=postprocessing,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            handlers=train_handlers,
            amp=amp,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        self.network = network
        self.optimizer = optimizer
        self.discriminator = discriminator
        self.d_optimizer = d_optimizer
        self.loss_function = TransVertGeneratorLoss() if loss_function is None else loss_function
        self.d_loss_function = TransVertDiscriminatorLoss() if d_loss_function is None else d_loss_function
        self.adversarial = adversarial
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.optim_set_to_none = optim_set_to_none
        if discriminator_input is None:
            occupancy = getattr(self.loss_function, "target_coding", None) == TargetCoding.OCCUPANCY
            discriminator_input = torch.sigmoid if occupancy else _identity
        self.discriminator_input = discriminator_input
        if not adversarial and discriminator is not None:
            logger.info("TransVertTrainer: adversarial=False, the discriminator is not trained.")

    def _autocast(self, enabled: bool) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", **self.amp_kwargs) if enabled else contextlib.nullcontext()

    @staticmethod
    def _require(obj: Any) -> Any:
        if obj is None:
            raise RuntimeError(
                "TransVertTrainer lost its discriminator or d_optimizer after construction; "
                "set both again or set `adversarial=False`."
            )
        return obj

    def _backward_step(self, loss: torch.Tensor, optimizer: Optimizer) -> None:
        if self.amp and self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
        else:
            loss.backward()
            optimizer.step()

    def _iteration(  # type: ignore[override]
        self, engine: TransVertTrainer, batchdata: dict[str, torch.Tensor]
    ) -> dict:
        """One D step then one G step; see the class docstring.

        Args:
            engine: this trainer.
            batchdata: batch dict with ``image`` ``(B, 4, H, W)`` and ``label`` ``(B, 1, H, W, W)``.

        Returns:
            ``engine.state.output``: ``image``, ``label``, ``pred``, ``loss``, ``g_loss``, ``d_loss``, ``l1_loss``.

        Raises:
            ValueError: when ``batchdata`` is None.
        """
        if batchdata is None:
            raise ValueError("TransVertTrainer needs batch data for every iteration, got None; check the data loader.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        if len(batch) == 2:
            inputs, targets = batch
            args: tuple = ()
            kwargs: dict = {}
        else:
            inputs, targets, args, kwargs = batch
        output: dict[str, Any] = {TransVertKeys.IMAGE.value: inputs, TransVertKeys.LABEL.value: targets}
        engine.state.output = output
        autocast = engine.amp and engine.scaler is not None

        engine.network.train()
        with engine._autocast(autocast):
            pred = engine.inferer(inputs, engine.network, *args, **kwargs)
        output[TransVertKeys.PRED.value] = pred
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)

        d_loss = torch.full((), float("nan"), device=pred.device)
        if engine.adversarial:
            d_loss = engine._discriminator_step(pred, targets, autocast)

        # generator step against the updated discriminator
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast(autocast):
            if engine.adversarial:
                discriminator = engine._require(engine.discriminator)
                with _without_grad_sync(discriminator):  # D's gradients from the G step are discarded
                    d_fake = discriminator(engine.discriminator_input(pred))
                g_loss = engine.loss_function(pred, targets, d_fake)
            else:
                g_loss = engine.loss_function(pred, targets)
            g_loss = g_loss.mean()
        output[TransVertLossKeys.LOSS.value] = g_loss
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine._backward_step(g_loss, engine.optimizer)
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if engine.scaler is not None and engine.amp:
            engine.scaler.update()

        with torch.no_grad():
            l1 = (engine.discriminator_input(pred.detach()).float() - targets.float()).abs().mean()
        output[TransVertKeys.PRED.value] = pred.detach()
        output[TransVertLossKeys.LOSS.value] = g_loss.detach()
        output[TransVertLossKeys.G_LOSS.value] = g_loss.detach()
        output[TransVertLossKeys.D_LOSS.value] = d_loss
        output[TransVertLossKeys.L1_LOSS.value] = l1
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output

    def _discriminator_step(self, pred: torch.Tensor, targets: torch.Tensor, autocast: bool) -> torch.Tensor:
        """Update D on real ``targets`` and fake ``pred.detach()``; return the detached ``L_D``."""
        discriminator, d_optimizer = self._require(self.discriminator), self._require(self.d_optimizer)
        discriminator.train()
        d_optimizer.zero_grad(set_to_none=self.optim_set_to_none)
        with self._autocast(autocast):
            fake = self.discriminator_input(pred.detach())
            d_loss = self.d_loss_function(discriminator(targets), discriminator(fake)).mean()
        self._backward_step(d_loss, d_optimizer)
        return d_loss.detach()


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _without_grad_sync(module: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``module.no_sync()`` when ``module`` is DDP-wrapped (its next backward is not all-reduced), else a no-op.

    DDP decides at forward time whether the backward through that forward synchronises gradients, so
    the forward must run inside this context.
    """
    return module.no_sync() if isinstance(module, DistributedDataParallel) else contextlib.nullcontext()


def losses_from_output(keys: Sequence[str] = ("loss", "d_loss", "l1_loss")) -> Callable[[Any], dict[str, float]]:
    """``output_transform`` for ``StatsHandler``/``TensorBoardStatsHandler`` logging several scalar losses.

    MONAI's ``from_engine`` returns a tuple for several keys, which the stats handlers ignore; this
    returns ``{key: value}`` from the (decollated or not) trainer output.
    """

    def _transform(output: Any) -> dict[str, float]:
        first = output[0] if isinstance(output, list) else output
        return {k: float(first[k]) for k in keys if k in first}

    return _transform


class StudyEvaluator(SupervisedEvaluator):
    """Inference over radiograph-pair studies, one study per iteration: the ``evaluator`` of ``inference.json``.

    Each item of ``val_data_loader`` is one study as read by the ``preprocessing``
    (:class:`~transvert_monai.transforms.LoadRadiographPaird`: the two radiographs and their 2D centroids);
    an iteration reconstructs it with ``reconstructor``
    (:meth:`~transvert_monai.apps.reconstruct.SpineReconstructor.reconstruct`: patches, the ``inferer`` over
    them, placement, stacking) and puts the :class:`~transvert_monai.apps.reconstruct.SpineReconstruction` in
    ``engine.state.output[pred_key]``. A study that fails (while being read, ``batch[error_key]`` set by
    :class:`~transvert_monai.apps.workflow.StudyDataset`, or here) does not stop the others: its exception is put
    in ``engine.state.output[error_key]`` and the handlers (e.g.
    :class:`~transvert_monai.apps.workflow.StudyOutputWriter`) report it. Items are not collated (give a
    dataset or a ``DataLoader(batch_size=None)``); ``decollate`` is off.

    Args:
        device, val_data_loader, network, postprocessing, val_handlers, ...: see
            :class:`monai.engines.SupervisedEvaluator`; ``network`` must be ``reconstructor.network``.
        reconstructor: a :class:`~transvert_monai.apps.reconstruct.SpineReconstructor` on ``network``.
        inferer: runs the network over a study's patches; given to ``reconstructor`` (default: its own).
        keys: the items of a study: lateral radiograph, AP radiograph, 2D centroids.
        pred_key, error_key: output items of the result and of a study's exception.

    Raises:
        ValueError: ``network`` is not the reconstructor's network.
    """

    def __init__(
        self,
        device: torch.device | str,
        val_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        reconstructor: Any,
        inferer: Inferer | None = None,
        postprocessing: Transform | None = None,
        val_handlers: Sequence | None = None,
        keys: Sequence[str] = (TransVertKeys.LATERAL.value, TransVertKeys.AP.value, "centroids"),
        pred_key: str = TransVertKeys.PRED.value,
        error_key: str = "error",
        **kwargs: Any,
    ) -> None:
        if reconstructor.network is not network:
            raise ValueError("StudyEvaluator: `network` must be the reconstructor's network (reconstructor.network).")
        if inferer is not None:
            reconstructor.inferer = inferer
        super().__init__(
            device=torch.device(device) if isinstance(device, str) else device,
            val_data_loader=val_data_loader,
            network=network,
            inferer=reconstructor.inferer,
            postprocessing=postprocessing,
            val_handlers=val_handlers,
            decollate=False,
            **kwargs,
        )
        self.reconstructor = reconstructor
        self.study_keys, self.pred_key, self.error_key = tuple(keys), pred_key, error_key

    def _iteration(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """Reconstruct one study; its exception, if any, goes to ``output[error_key]``."""
        error = batchdata.get(self.error_key)
        result = None
        if error is None:
            try:
                lateral, ap, centroids = (batchdata[k] for k in self.study_keys)
                with engine.mode(engine.network):
                    result = self.reconstructor.reconstruct(lateral, ap, centroids)
                result.timings_s.update(batchdata.get("timings_s") or {})
            except Exception as err:  # one bad study does not stop the others; the handlers report it
                error = err
        engine.state.output = {self.pred_key: result, self.error_key: error}
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
