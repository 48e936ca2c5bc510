"""The training curve as a CSV file, one row per iteration, for plots and for comparing runs.

A resumed run appends to the same file, so an interrupted and resumed run leaves one curve whose
rows after the resume point can be compared with an uninterrupted run's (the bundle's resume test
does exactly that). Values are written with ``repr`` so that equal floats compare equal as text.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monai.utils import IgniteInfo, min_version, optional_import

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")
    Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["LossCurveWriter", "read_loss_curve"]


class LossCurveWriter:
    """Append ``epoch, iteration, <losses>`` to a CSV file after every training iteration.

    Args:
        path: the CSV file (its folder is created).
        append: continue an existing file (a resumed run; its header must match) instead of starting it
            afresh at the first iteration.
        keys: the scalars of ``engine.state.output`` to write (``TransVertTrainer``'s losses by default);
            a list output (``decollate=True``) is read from its first item.

    Raises:
        ValueError: an existing file whose header has other columns (a curve of another run layout).
    """

    def __init__(
        self, path: str | os.PathLike, append: bool = False, keys: Sequence[str] = ("loss", "g_loss", "d_loss", "l1_loss")
    ) -> None:
        self.path = Path(path)
        self.keys = tuple(keys)
        self.columns = ("epoch", "iteration", *self.keys)
        self._started = bool(append)
        if append and self.path.is_file() and self.path.stat().st_size:
            with open(self.path, newline="") as f:
                header = tuple(next(csv.reader(f), ()))
            if header != self.columns:
                raise ValueError(
                    f"{self.path} has the columns {list(header)}, not {list(self.columns)}; "
                    "write the curve to another file or remove the old one."
                )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, (list, tuple)):
            output = output[0]
        values = [repr(float(output[k])) for k in self.keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self._started or not (self.path.is_file() and self.path.stat().st_size)
        self._started = True
        with open(self.path, "w" if new else "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self.columns)
            writer.writerow([engine.state.epoch, engine.state.iteration, *values])


def read_loss_curve(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a :class:`LossCurveWriter` file (``epoch`` and ``iteration`` as ints)."""
    with open(path, newline="") as f:
        return [
            {k: (int(v) if k in ("epoch", "iteration") else float(v)) for k, v in row.items()} for row in csv.DictReader(f)
        ]
