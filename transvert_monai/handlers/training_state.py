"""What a checkpoint needs beyond the weights to resume a run on the same curve.

:class:`TrainingState` is a handler whose ``state_dict`` holds the trainer's progress (epoch,
iteration) and every random state that decides what comes next: Python's ``random``, NumPy's global
generator, PyTorch's CPU (and CUDA) generators, and the ``RandomState`` of each randomised transform
of the training pipeline (DRR poses, vertebra choice, scaling, elastic fields). Put it in
``CheckpointSaver``'s ``save_dict`` and ``CheckpointLoader``'s ``load_dict`` next to the networks
and optimizers; the state is plain tensors and numbers, so it loads with ``weights_only=True``.

A resumed run repeats the uninterrupted one bit for bit on CPU when the training transforms run in
the main process (``num_workers=0``): worker processes keep their own random states, which no
checkpoint sees, so with workers a resumed run continues from the same weights and optimizer
moments but draws other samples. In a multi-process (DDP) run rank 0 writes the checkpoint; on
loading, the other ranks derive their random states from it with their rank as an offset, so the
ranks keep drawing different samples (the resumed curve is then not the uninterrupted one).

:func:`resolve_checkpoint` turns the bundle's ``resume_checkpoint`` value (empty, ``"latest"`` or a
path) into the file to load.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.transforms import Compose, Randomizable
from monai.utils import IgniteInfo, min_version, optional_import

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")
    Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["TrainingState", "resolve_checkpoint", "checkpoint_epoch"]

_EPOCH = re.compile(r"_epoch=(\d+)\.pt$")


def _randomizables(transform: Any) -> Iterator[Randomizable]:
    """The randomised transforms of a (nested) Compose, in order."""
    if isinstance(transform, Compose):
        for t in transform.transforms:
            yield from _randomizables(t)
    elif isinstance(transform, (list, tuple)):
        for t in transform:
            yield from _randomizables(t)
    elif isinstance(transform, Randomizable):
        yield transform


def _numpy_state(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = state
    if name != "MT19937":
        raise ValueError(f"unsupported NumPy bit generator {name!r} (MONAI transforms use MT19937).")
    return {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _numpy_tuple(state: dict[str, Any]) -> tuple:
    return ("MT19937", state["keys"].numpy().astype(np.uint32), int(state["pos"]), int(state["has_gauss"]), float(state["gauss"]))


class TrainingState:
    """Checkpointable progress and random states of a training run (see the module docstring).

    Args:
        transforms: the training pipeline (a ``Compose``, possibly nested, or a list); the random
            state of each of its randomised transforms is saved and restored, matched by position.

    Raises:
        ValueError (on load): a checkpoint whose pipeline has another number of random transforms.
    """

    def __init__(self, transforms: Any = None) -> None:
        self.transforms = transforms
        self.engine: Engine | None = None
        self._pending: dict[str, int] | None = None

    def attach(self, engine: Engine) -> None:
        """Remember the trainer whose progress is saved; a state loaded before it started is applied at start."""
        self.engine = engine
        engine.add_event_handler(Events.STARTED, self._apply_pending)

    def _apply_pending(self, engine: Engine) -> None:
        if self._pending is not None:
            engine.state.epoch, engine.state.iteration = self._pending["epoch"], self._pending["iteration"]
            self._pending = None

    def state_dict(self) -> dict[str, Any]:
        """Progress and random states, as tensors and numbers only."""
        py_version, py_internal, py_gauss = random.getstate()
        state: dict[str, Any] = {
            "epoch": int(self.engine.state.epoch) if self.engine is not None else 0,
            "iteration": int(self.engine.state.iteration) if self.engine is not None else 0,
            "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64), "gauss": py_gauss},
            "numpy": _numpy_state(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "transforms": [_numpy_state(t.R.get_state()) for t in _randomizables(self.transforms)],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the random states now and the trainer's epoch and iteration (now, or when it starts)."""
        randomizables = list(_randomizables(self.transforms))
        if len(state["transforms"]) != len(randomizables):
            raise ValueError(
                f"the checkpoint holds the random states of {len(state['transforms'])} transforms but the training "
                f"pipeline has {len(randomizables)}; resume with the configuration the checkpoint was written with."
            )
        internal = tuple(int(v) for v in state["python"]["internal"].tolist())
        random.setstate((int(state["python"]["version"]), internal, state["python"]["gauss"]))
        np.random.set_state(_numpy_tuple(state["numpy"]))
        torch.set_rng_state(state["torch"].cpu())
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        for t, s in zip(randomizables, state["transforms"]):
            t.R.set_state(_numpy_tuple(s))
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        if rank:  # the checkpoint holds rank 0's states: other ranks branch off so that they draw other samples
            torch.manual_seed(int(torch.randint(2**31, ())) + rank)
            for t in randomizables:
                t.set_random_state(seed=int(t.R.randint(2**31)) + rank)
        progress = {"epoch": int(state["epoch"]), "iteration": int(state["iteration"])}
        if self.engine is not None and self.engine.state is not None:
            self.engine.state.epoch, self.engine.state.iteration = progress["epoch"], progress["iteration"]
        else:
            self._pending = progress


def checkpoint_epoch(path: str | os.PathLike) -> int | None:
    """The epoch in a ``CheckpointSaver`` file name (``…_epoch=12.pt``), None for other names."""
    m = _EPOCH.search(Path(path).name)
    return int(m.group(1)) if m else None


def resolve_checkpoint(value: str | os.PathLike | None, ckpt_dir: str | os.PathLike) -> str:
    """The checkpoint to resume from: ``""``/None → ``""`` (start afresh); ``"latest"`` → the
    ``…_epoch=N.pt`` file with the largest N in ``ckpt_dir``; otherwise the given file.

    Raises:
        FileNotFoundError: ``"latest"`` with no epoch checkpoint in ``ckpt_dir``, or a missing file.
    """
    if value is None or str(value) == "":
        return ""
    if str(value) == "latest":
        found = [(checkpoint_epoch(p), p) for p in Path(ckpt_dir).glob("*_epoch=*.pt")]
        found = [(e, p) for e, p in found if e is not None]
        if not found:
            raise FileNotFoundError(
                f"resume_checkpoint='latest' but {ckpt_dir} holds no '*_epoch=N.pt' checkpoint; "
                "start the run without resume_checkpoint, or give the checkpoint file."
            )
        return str(max(found)[1])
    from transvert_monai.io.checkpoint import load_plain_checkpoint

    # read it once here: a file that is not a plain checkpoint is refused with our message, before MONAI's
    # CheckpointLoader would show torch's advice to load it unsafely
    load_plain_checkpoint(value, "resume checkpoint", "give an existing checkpoint or 'latest'")
    return str(value)
