"""Ignite handler writing the per-vertebra and per-level scores of an evaluation run to CSV files."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import decollate_batch
from monai.utils import IgniteInfo, min_version, optional_import

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import label_to_name, level_order
from transvert_monai.keys import TransVertKeys
from transvert_monai.metrics import METRIC_NAMES, compute_vertebra_metrics, resolve_spacing_mm, spacing_triple
from transvert_monai.metrics.spacing import DEFAULT_SPACING_MM

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["VertebraMetricsWriter", "VERTEBRA_COLUMNS", "SUMMARY_ALL"]

#: Columns of ``vertebra_metrics.csv``.
VERTEBRA_COLUMNS: tuple[str, ...] = ("case", "vertebra", "level", *METRIC_NAMES)
#: Name of the summary row over all vertebrae in ``level_summary.csv``.
SUMMARY_ALL = "all"


def _level_name(index: int) -> str:
    try:
        return label_to_name(index)
    except ValueError:
        return f"label_{index}"


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _is_rank_zero() -> bool:
    return torch.distributed.get_rank() == 0 if _is_distributed() else True


def _per_sample(data: Any, what: str) -> list[Mapping[str, Any]]:
    """Decollated per-sample dicts from MONAI's list-of-dicts format or a batch dict."""
    if isinstance(data, Mapping):
        data = decollate_batch(data, detach=True)
    if isinstance(data, Sequence) and all(isinstance(d, Mapping) for d in data):
        return list(data)
    raise TypeError(
        f"VertebraMetricsWriter expects engine.state.{what} as a dict or a list of per-sample dicts, "
        f"got {type(data).__name__}; use a MONAI evaluator (with `decollate=True` or False)."
    )


def _lookup(key: str, *sources: Mapping[str, Any]) -> Any:
    """``key`` from the first sample dict that holds it."""
    for source in sources:
        if key in source:
            return source[key]
    raise KeyError(
        f"VertebraMetricsWriter needs '{key}' for each sample, in engine.state.batch or engine.state.output; "
        "keep it in the data dictionaries (the data list items and the transforms must not drop it)."
    )


def _nan_stats(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over the not-NaN values (NaN if there are too few)."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    mean = float(arr.mean()) if arr.size else float("nan")
    std = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
    return mean, std


class VertebraMetricsWriter:
    """Score every vertebra of an evaluation run and write two CSV files at the end of the epoch.

    After each iteration it reads ``pred`` and ``label`` from ``engine.state.output`` (MONAI's list of
    per-sample dicts, or one batch dict) and the identifiers ``case`` (str) and ``vertebra`` (VerSe
    index) from ``engine.state.batch``, then computes Dice, HD, HD95 and the Chamfer distance with
    :func:`transvert_monai.metrics.compute_vertebra_metrics`, binarizing at half the ``vertebra``
    index; occupancy-coded samples (0/1 targets, predicted probabilities) are scaled by the index
    first, so they are binarised at probability 0.5. The spacing comes from the label MetaTensor's affine when it has one, else from
    ``spacing_mm``. At ``EPOCH_COMPLETED`` it writes, atomically (temporary file + ``os.replace``):

    * ``<output_dir>/vertebra_metrics.csv``: ``case, vertebra, level, dice, hd_mm, hd95_mm,
      chamfer_mm``, one row per sample, in the order seen; distances are ``nan`` for an empty
      prediction.
    * ``<output_dir>/level_summary.csv``: per level (C1 … L6, cranial to caudal) and for ``all``:
      ``n`` (vertebrae), ``n_empty`` (vertebrae with an empty prediction or target: Dice 0 and no
      distances, so they are excluded from the distance statistics),
      and ``<metric>_mean`` / ``<metric>_std`` (sample standard deviation, NaN below two values).

    and logs the summary table at INFO level. With ``figure_dir``, it also draws one figure per case
    (``<figure_dir>/<case>.png``: input patches, ground truth and prediction of the first sample of
    each vertebra seen, see :func:`transvert_monai.visualize.save_case_figure`).

    Distributed runs: only rank 0 writes, and it writes only the vertebrae it evaluated itself; the
    rows of other ranks are not gathered. Run the evaluation on one process for complete files.

    Args:
        output_dir: folder of the CSV files (created if needed).
        spacing_mm: voxel size (mm) for labels without an affine, one or three numbers; 1.5 mm.
        spacing_from_affine: take the spacing of a MetaTensor label from its affine.
        n_points: points per cloud of the Chamfer distance (paper: 2048).
        seed: seed of the Chamfer point sampling.
        pred_key, label_key: keys of the prediction and target in the output dicts.
        case_key, vertebra_key: keys of the case identifier and VerSe index in the batch dicts.
        metrics_filename, summary_filename: names of the two files.
        name: logger name; default this module's.

    Raises:
        ValueError: a bad ``spacing_mm``, ``n_points`` or ``seed``.

    Example:
        >>> VertebraMetricsWriter(output_dir="eval").attach(evaluator)
        >>> evaluator.run()  # writes eval/vertebra_metrics.csv and eval/level_summary.csv
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        spacing_mm: float | Sequence[float] = DEFAULT_SPACING_MM,
        spacing_from_affine: bool = True,
        n_points: int = 2048,
        seed: int = 0,
        pred_key: str = TransVertKeys.PRED.value,
        label_key: str = TransVertKeys.LABEL.value,
        case_key: str = TransVertKeys.CASE.value,
        vertebra_key: str = TransVertKeys.VERTEBRA.value,
        metrics_filename: str = "vertebra_metrics.csv",
        summary_filename: str = "level_summary.csv",
        name: str | None = None,
        figure_dir: str | os.PathLike | None = None,
        image_key: str = TransVertKeys.IMAGE.value,
    ) -> None:
        if int(n_points) < 1:
            raise ValueError(f"`n_points` must be a positive integer (the paper uses 2048), got {n_points!r}.")
        if int(seed) < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}.")
        self.output_dir = Path(output_dir)
        self.spacing_mm = spacing_triple(spacing_mm)
        self.spacing_from_affine = bool(spacing_from_affine)
        self.n_points = int(n_points)
        self.seed = int(seed)
        self.pred_key, self.label_key = str(pred_key), str(label_key)
        self.case_key, self.vertebra_key = str(case_key), str(vertebra_key)
        self.metrics_filename, self.summary_filename = metrics_filename, summary_filename
        self.logger = logging.getLogger(name or __name__)
        self.rows: list[dict[str, Any]] = []
        self.figure_dir = None if figure_dir is None else Path(figure_dir)
        self.image_key = str(image_key)
        # per case, per vertebra: the first (image, label, pred) seen, for one figure per case
        self.figure_samples: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}

    def attach(self, engine: Engine) -> None:
        """Register with ``engine``: reset at EPOCH_STARTED, score per ITERATION_COMPLETED, write at EPOCH_COMPLETED."""
        for event, handler in (
            (Events.EPOCH_STARTED, self.reset),
            (Events.ITERATION_COMPLETED, self.iteration_completed),
            (Events.EPOCH_COMPLETED, self.epoch_completed),
        ):
            if not engine.has_event_handler(handler, event):
                engine.add_event_handler(event, handler)
        if _is_distributed() and torch.distributed.get_world_size() > 1:
            self.logger.warning(
                "VertebraMetricsWriter in a distributed run: rank 0 writes only the vertebrae it evaluated; "
                "evaluate on one process for complete CSV files."
            )

    def reset(self, engine: Engine | None = None) -> None:
        """Forget the rows of the previous epoch."""
        self.rows = []
        self.figure_samples = {}

    def iteration_completed(self, engine: Engine) -> None:
        """Score the samples of the current iteration and keep one row per sample.

        Raises:
            KeyError: a sample without prediction, label, case or vertebra.
            TypeError, ValueError: unexpected output layout or shapes.
        """
        outputs = _per_sample(engine.state.output, "output")
        batch = _per_sample(engine.state.batch, "batch") if engine.state.batch is not None else []
        if batch and len(batch) != len(outputs):
            raise ValueError(
                f"engine.state.batch has {len(batch)} samples but engine.state.output has {len(outputs)}; "
                "the writer pairs them by position, so keep the batch and the output aligned."
            )
        for b, output in enumerate(outputs):
            sample = batch[b] if batch else {}
            pred = torch.as_tensor(_lookup(self.pred_key, output))
            label = torch.as_tensor(_lookup(self.label_key, output))
            case = _lookup(self.case_key, sample, output)
            vertebra = int(torch.as_tensor(_lookup(self.vertebra_key, sample, output)).reshape(-1)[0])
            if float(label.max()) <= 1:  # occupancy coding: probability and 0/1 target × index, binarised at i / 2
                pred, label = pred * vertebra, label * vertebra
            spacing = resolve_spacing_mm(label[None], self.spacing_mm, from_affine=self.spacing_from_affine)
            with warnings.catch_warnings():
                # an empty prediction is recorded as NaN and counted in `n_empty`; no warning per sample
                warnings.simplefilter("ignore", UserWarning)
                scores = compute_vertebra_metrics(
                    pred[None].detach(),
                    label[None].detach(),
                    spacing_mm=spacing,
                    label_index=vertebra,
                    n_points=self.n_points,
                    seed=self.seed,
                )
            if self.figure_dir is not None and self.image_key in sample:
                kept = self.figure_samples.setdefault(str(case), {})
                if vertebra not in kept:
                    kept[vertebra] = (torch.as_tensor(sample[self.image_key]).detach().cpu(), label.detach().cpu(), pred.detach().cpu())
            row: dict[str, Any] = {"case": str(case), "vertebra": vertebra, "level": _level_name(vertebra)}
            row.update({k: float(v.reshape(-1)[0]) for k, v in scores.items()})
            self.rows.append(row)

    def summary(self) -> list[dict[str, Any]]:
        """Per-level rows (cranial to caudal) and the ``all`` row of the level summary."""
        groups: dict[int, list[dict[str, Any]]] = {}
        for row in self.rows:
            groups.setdefault(row["vertebra"], []).append(row)
        ordered = [(_level_name(v), groups[v]) for v in sorted(groups, key=level_order)]
        out = []
        for level, rows in [*ordered, (SUMMARY_ALL, self.rows)]:
            n_empty = sum(math.isnan(r["hd_mm"]) for r in rows)
            entry: dict[str, Any] = {"level": level, "n": len(rows), "n_empty": n_empty}
            for metric in METRIC_NAMES:
                entry[f"{metric}_mean"], entry[f"{metric}_std"] = _nan_stats([r[metric] for r in rows])
            out.append(entry)
        return out

    def epoch_completed(self, engine: Engine | None = None) -> None:
        """Write both CSV files (rank 0 only) and log the summary."""
        if not _is_rank_zero():
            return
        summary = self.summary()
        self.write_csv(self.output_dir / self.metrics_filename, list(VERTEBRA_COLUMNS), self.rows)
        self.write_csv(self.output_dir / self.summary_filename, list(summary[0]), summary)
        self.logger.info("%s", self.format_summary(summary))
        if self.figure_dir is not None:
            from transvert_monai.visualize import save_case_figure

            for case, kept in self.figure_samples.items():
                rows = [(image, label, pred, v) for v, (image, label, pred) in sorted(kept.items(), key=lambda x: level_order(x[0]))]
                save_case_figure(rows, self.figure_dir / f"{case}.png", title=case)

    @staticmethod
    def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
        """Write ``rows`` as CSV with a header, atomically; floats with 6 significant digits."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: format(v, ".6g") if isinstance(v, float) else v for k, v in row.items()})
        text = buffer.getvalue()
        return atomic_write(path, lambda tmp: tmp.write_text(text))

    def format_summary(self, summary: list[dict[str, Any]]) -> str:
        """The level summary as a readable table (mean ± std; distances in mm)."""
        lines = [f"vertebra metrics of {len(self.rows)} vertebrae (written to {self.output_dir}):"]
        header = ("dice", "HD mm", "HD95 mm", "chamfer mm")
        lines.append(f"{'level':>6} {'n':>4} {'empty':>5}  " + "  ".join(f"{h:>13}" for h in header))
        for e in summary:
            cells = [f"{e[f'{m}_mean']:6.3f}±{e[f'{m}_std']:<6.3f}" for m in METRIC_NAMES]
            lines.append(f"{e['level']:>6} {e['n']:>4} {e['n_empty']:>5}  " + "  ".join(cells))
        return "\n".join(lines)
