"""2D vertebra centroids per radiograph view, the annotation TransVert needs at deployment.

Two JSON layouts are read::

    {"lateral": {"T1": [row, col], "T2": [row, col], ...},
     "ap":      {"T1": [row, col], ...}}

    {"vertebrae": [{"label": "T1", "lateral": [row, col], "ap": [row, col]}, ...]}

Positions are (row, col) in the **original pixels of the image files as stored** (the pixel grid an
annotation tool shows, before any ``flip_horizontal`` and before resampling), with pixel centres at
whole numbers and row 0 at the top. Labels are VerSe names or indices (``"T1"``, ``"t1"``,
``"vertebrae_T1"``, ``8``, ``"8"``; C1–C7, T1–T12, T13, L1–L6), see
:func:`transvert_monai.data.labels.name_to_label`. An optional top-level ``"comment"`` is ignored.

A vertebra annotated in one view only cannot be placed in 3D: it is reported (a warning and the
``missing`` field), skipped, and never silently dropped.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from transvert_monai.data.labels import label_to_name, level_order, name_to_label
from transvert_monai.errors import TransVertInputError, UnreadableFileError

__all__ = ["Centroids2D", "read_centroids_2d", "parse_centroids_2d"]

_VIEWS = ("lateral", "ap")
_IGNORED_KEYS = frozenset({"comment"})


@dataclass
class Centroids2D:
    """Per-view 2D centroids of the vertebrae annotated in both views.

    Attributes:
        lateral: {VerSe index: (row, col)} in the lateral file's pixels.
        ap: {VerSe index: (row, col)} in the AP file's pixels; the same labels as ``lateral``.
        missing: {VerSe index: the view it is missing from} for vertebrae annotated in one view only.
        source: the file they were read from.
    """

    lateral: dict[int, tuple[float, float]]
    ap: dict[int, tuple[float, float]]
    missing: dict[int, str] = field(default_factory=dict)
    source: str | None = None

    @property
    def labels(self) -> list[int]:
        """The vertebrae annotated in both views, cranial to caudal."""
        return sorted(self.lateral, key=level_order)

    def as_tensors(self, labels: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2) float64 lateral and AP (row, col) of ``labels`` (default :attr:`labels`).

        Raises:
            KeyError: a label without centroids in both views.
        """
        labels = self.labels if labels is None else [int(v) for v in labels]
        absent = [v for v in labels if v not in self.lateral]
        if absent:
            raise KeyError(f"no centroids in both views for vertebrae {absent}; annotated: {self.labels}.")
        lat = torch.tensor([self.lateral[v] for v in labels], dtype=torch.float64).reshape(-1, 2)
        ap = torch.tensor([self.ap[v] for v in labels], dtype=torch.float64).reshape(-1, 2)
        return lat, ap

    def check_inside(self, image_sizes: Mapping[str, Sequence[int]]) -> None:
        """Check every centroid against the (H, W) of its view's image (pixel areas, −0.5 … H − 0.5).

        Raises:
            TransVertInputError: naming the first centroid outside its image, its view and the image size.
        """
        for view in _VIEWS:
            if view not in image_sizes:
                continue
            h, w = (int(s) for s in image_sizes[view])
            for label, (r, c) in getattr(self, view).items():
                if not (-0.5 <= r <= h - 0.5 and -0.5 <= c <= w - 0.5):
                    raise TransVertInputError(
                        f"the {view} centroid of {label_to_name(label)} (row, col) = ({r:g}, {c:g}) lies outside the "
                        f"{h}×{w} {view} image{f' ({self.source})' if self.source else ''}; centroids are in the original "
                        "pixels of the image file (row 0 at the top)."
                    )


def _position(value: Any, label: Any, view: str, where: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    if ok:
        try:
            rc = (float(value[0]), float(value[1]))
        except (TypeError, ValueError, OverflowError):
            ok = False
        else:
            ok = all(math.isfinite(x) for x in rc) and not any(isinstance(x, bool) for x in value)
    if not ok:
        raise TransVertInputError(
            f"{where}: the {view} centroid of {label!r} must be [row, col] (two finite numbers), got {value!r}."
        )
    return rc


def _add(store: dict[int, tuple[float, float]], name: Any, value: Any, view: str, where: str) -> None:
    try:
        label = name_to_label(name)
    except ValueError as err:
        raise TransVertInputError(f"{where}, {view} view: {err}") from None
    if label in store:
        raise TransVertInputError(
            f"{where}: vertebra {label_to_name(label)} is given twice in the {view} view (as {name!r} and before)."
        )
    store[label] = _position(value, name, view, where)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise TransVertInputError(f"keys {dup} appear twice in one JSON object.")
    return dict(pairs)


def parse_centroids_2d(
    data: Any, source: str | None = None, image_sizes: Mapping[str, Sequence[int]] | None = None
) -> Centroids2D:
    """Centroids from an already loaded JSON object (see the module docstring for the layouts).

    Args:
        data: the JSON object.
        source: where it came from, for messages.
        image_sizes: optional ``{"lateral": (H, W), "ap": (H, W)}`` of the original images to check against.

    Raises:
        TransVertInputError: another layout, a bad position or label, a label given twice, a centroid outside
            its image, or no vertebra annotated in both views.
    """
    where = f"2D centroid file {source}" if source else "2D centroids"
    layout = (
        '{"lateral": {"T1": [row, col], ...}, "ap": {"T1": [row, col], ...}} or '
        '{"vertebrae": [{"label": "T1", "lateral": [row, col], "ap": [row, col]}, ...]}'
    )
    if not isinstance(data, Mapping):
        raise TransVertInputError(f"{where} must hold a JSON object, got a {type(data).__name__}; expected {layout}.")
    keys = set(data) - _IGNORED_KEYS
    views: dict[str, dict[int, tuple[float, float]]] = {"lateral": {}, "ap": {}}
    if keys == set(_VIEWS):
        for view in _VIEWS:
            if not isinstance(data[view], Mapping):
                raise TransVertInputError(
                    f"{where}: '{view}' must map vertebra names to [row, col], got {type(data[view]).__name__}."
                )
            for name, value in data[view].items():
                _add(views[view], name, value, view, where)
    elif keys == {"vertebrae"} and isinstance(data["vertebrae"], list):
        for i, entry in enumerate(data["vertebrae"]):
            if not isinstance(entry, Mapping) or "label" not in entry or set(entry) - {"label", *_VIEWS}:
                raise TransVertInputError(
                    f"{where}: entry {i} of 'vertebrae' must be {{'label', 'lateral', 'ap'}}, got {entry!r}."
                )
            for view in _VIEWS:
                if entry.get(view) is not None:
                    _add(views[view], entry["label"], entry[view], view, where)
    else:
        raise TransVertInputError(f"{where} has the keys {sorted(data)}; expected {layout}.")
    missing = {v: "ap" for v in views["lateral"] if v not in views["ap"]}
    missing.update({v: "lateral" for v in views["ap"] if v not in views["lateral"]})
    if missing:
        listed = ", ".join(f"{label_to_name(v)} (no {view} centroid)" for v, view in sorted(missing.items()))
        warnings.warn(f"{where}: vertebrae annotated in one view only are skipped: {listed}.", stacklevel=2)
    both = sorted((v for v in views["lateral"] if v in views["ap"]), key=level_order)
    if not both:
        raise TransVertInputError(f"{where}: no vertebra has centroids in both the lateral and the AP view.")
    out = Centroids2D(
        lateral={v: views["lateral"][v] for v in both},
        ap={v: views["ap"][v] for v in both},
        missing=missing,
        source=source,
    )
    if image_sizes is not None:
        out.check_inside(image_sizes)
    return out


def read_centroids_2d(path: str | os.PathLike, image_sizes: Mapping[str, Sequence[int]] | None = None) -> Centroids2D:
    """Read a 2D centroid JSON file (see the module docstring).

    Args:
        path: the JSON file.
        image_sizes: optional ``{"lateral": (H, W), "ap": (H, W)}`` of the original images to check against.

    Returns:
        :class:`Centroids2D` of the vertebrae annotated in both views, with the others in ``missing``.

    Raises:
        FileNotFoundError: no such file.
        UnreadableFileError: not JSON (or not UTF-8 text).
        TransVertInputError: another layout, bad entries, a centroid outside its image (see
            :func:`parse_centroids_2d`).
    """
    path = Path(path)
    from transvert_monai.io.paths import require_file

    require_file(path, "2D centroid file")
    try:
        data = json.loads(path.read_text(), object_pairs_hook=_no_duplicate_keys)
    except TransVertInputError as err:  # a key given twice (_no_duplicate_keys)
        raise TransVertInputError(f"2D centroid file {path}: {err}") from None
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise UnreadableFileError(f"2D centroid file {path} is not valid JSON: {err}.") from None
    return parse_centroids_2d(data, str(path), image_sizes)
