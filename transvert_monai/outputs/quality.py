"""Quality checks of one reconstructed vertebra: is its shape plausible, and were its views consistent?

A reconstruction can place a vertebra well and still give it a wrong shape: a model that has not
seen a level may return a template a fifth of the true size. The checks, each with a name (kept in
``summary.json`` under ``quality_checks``) and a sentence (joined into ``quality``):

* ``empty_shape`` — no voxel.
* ``small_shape`` — below ``min_volume_ml`` (1 ml; the smallest cervical vertebrae hold several ml).
  Only used when no training volume range applies: that range is the sharper test.
* ``fragmented_shape`` — the largest 26-connected component holds less than
  ``min_largest_component_fraction`` (0.9) of the foreground. A vertebra is one connected bone; a
  few stray voxels of thresholding or stacking stay far below 10 %, a split shape does not.
* ``volume_below_training_range`` / ``volume_above_training_range`` — the volume lies outside
  ``[min × 0.75, max × 1.33]`` of the range seen for the level in training (``volume_ranges_ml``,
  saved with the weights). The tolerance is needed because a training range from a few patients
  does not cover the population: at one level, adult vertebral volume varies by about a quarter
  either side of its mean with body size and sex. The two factors are reciprocal (a factor 4/3
  either way), and a prediction within the ±25 % accuracy target of a vertebra at the edge of the
  range stays inside; the failure this test is for — shapes holding 9–20 % of the true volume —
  falls far outside. For a level absent from the ranges, the nearest present level(s) in
  cranio-caudal order are used (both, as one range, when two are equally near) and the flag says so.
* ``large_residual`` — the two views disagree about the vertebra's 3D centre by more than
  ``residual_limit_mm`` (5 mm; 2-pixel centroid noise at 1.8 mm gives about 1–2 mm), or the
  residual is not finite.
* ``patch_beyond_image`` — more than ``max_patch_outside_fraction`` (25 %) of the vertebra's patch in
  a view lies outside that radiograph: the network saw a zero-padded vertebra (an image cut too
  tight, or a centroid near its border), and its shape is less reliable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy import ndimage

from transvert_monai.data.labels import label_to_name, level_order, name_to_label

__all__ = [
    "DEFAULT_VOLUME_TOLERANCE",
    "QualityCheck",
    "QualityCheckName",
    "VertebraQuality",
    "VolumeRange",
    "assess_vertebra_quality",
    "check_vertebra_quality",
    "check_volume_ranges",
    "label_component_fractions",
    "largest_component_fraction",
    "training_volume_range",
]

#: (below, above): a volume is flagged under ``min × below`` or over ``max × above`` of its training range.
DEFAULT_VOLUME_TOLERANCE = (0.75, 1.33)
# 26-connectivity: voxels touching by a face, an edge or a corner belong to one component
_STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


class QualityCheckName(str, Enum):
    """Names of the failed checks listed under ``quality_checks`` in ``summary.json``."""

    EMPTY_SHAPE = "empty_shape"
    SMALL_SHAPE = "small_shape"
    FRAGMENTED_SHAPE = "fragmented_shape"
    VOLUME_BELOW_TRAINING_RANGE = "volume_below_training_range"
    VOLUME_ABOVE_TRAINING_RANGE = "volume_above_training_range"
    LARGE_RESIDUAL = "large_residual"
    PATCH_BEYOND_IMAGE = "patch_beyond_image"


@dataclass(frozen=True)
class QualityCheck:
    """One failed check: its name and a sentence for people (``"check: …"``)."""

    name: QualityCheckName
    message: str


@dataclass(frozen=True)
class VolumeRange:
    """The training volume range (ml) applied to one level, and the level(s) it was seen for."""

    min_ml: float
    max_ml: float
    levels: tuple[int, ...]
    fallback: bool  #: True when the level itself was not in training and its nearest level(s) stand in

    def describe(self, label: int) -> str:
        """E.g. ``"18.2–45.0 ml seen for L3 in training"`` (+ the fallback note)."""
        names = " and ".join(label_to_name(v) for v in self.levels)
        text = f"{self.min_ml:.1f}–{self.max_ml:.1f} ml seen for {names} in training"
        if self.fallback:
            nearest = "nearest levels" if len(self.levels) > 1 else "nearest level"
            text += f" ({nearest}; {label_to_name(label)} was not in training)"
        return text


@dataclass(frozen=True)
class VertebraQuality:
    """The outcome of the checks of one vertebra.

    Attributes:
        failed: the failed checks, in the order of the module docstring.
        volume_range: the training range applied (None: no ranges given).
        largest_component_fraction: share of the foreground in its largest 26-connected component (None: not measured).
    """

    failed: tuple[QualityCheck, ...] = ()
    volume_range: VolumeRange | None = None
    largest_component_fraction: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def names(self) -> list[str]:
        """The names of the failed checks (``quality_checks`` in ``summary.json``)."""
        return [c.name.value for c in self.failed]

    @property
    def flag(self) -> str:
        """``"ok"``, or the failed checks' sentences joined with ``"; "`` (``quality`` in ``summary.json``)."""
        return "; ".join(c.message for c in self.failed) or "ok"


def check_volume_ranges(volume_ranges_ml: Mapping[object, Sequence[float]]) -> dict[int, tuple[float, float]]:
    """Training volume ranges keyed by VerSe index, checked.

    Args:
        volume_ranges_ml: {level: (min_ml, max_ml)}; a level is a VerSe index or a name (``20``, ``"20"``,
            ``"L1"``: JSON turns integer keys into strings).

    Raises:
        ValueError: an unknown level, or a range that is not two finite numbers with ``0 ≤ min ≤ max``.
    """
    ranges: dict[int, tuple[float, float]] = {}
    for key, value in volume_ranges_ml.items():
        try:
            label = name_to_label(int(key) if isinstance(key, np.integer) else key)  # type: ignore[arg-type]
            low, high = (float(v) for v in value)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"`volume_ranges_ml` must map VerSe levels to (min_ml, max_ml), got {key!r}: {value!r} ({err})."
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
            raise ValueError(
                f"`volume_ranges_ml` for {key!r} must satisfy 0 ≤ min ≤ max (ml), got ({low}, {high})."
            )
        ranges[label] = (low, high)
    return ranges


def training_volume_range(label: int, volume_ranges_ml: Mapping[object, Sequence[float]]) -> VolumeRange | None:
    """The training volume range for ``label``: its own, else that of the nearest level(s) in cranio-caudal order.

    Two levels equally near (one above, one below) give one range spanning both. None when
    ``volume_ranges_ml`` is empty.

    Raises:
        ValueError: see :func:`check_volume_ranges`.
    """
    ranges = check_volume_ranges(volume_ranges_ml)
    if not ranges:
        return None
    if label in ranges:
        return VolumeRange(*ranges[label], levels=(label,), fallback=False)
    distance = {v: abs(level_order(v) - level_order(label)) for v in ranges}
    nearest = sorted((v for v in ranges if distance[v] == min(distance.values())), key=level_order)
    low = min(ranges[v][0] for v in nearest)
    high = max(ranges[v][1] for v in nearest)
    return VolumeRange(low, high, levels=tuple(nearest), fallback=True)


def largest_component_fraction(mask: np.ndarray) -> float:
    """Share of a binary 3D mask's voxels in its largest 26-connected component (0.0 for an empty mask)."""
    components, count = ndimage.label(np.asarray(mask, dtype=bool), structure=_STRUCTURE_26)
    if count == 0:
        return 0.0
    sizes = np.bincount(components.reshape(-1))[1:]
    return float(sizes.max() / sizes.sum())


def label_component_fractions(label_volume: np.ndarray, labels: Sequence[int]) -> dict[int, float]:
    """:func:`largest_component_fraction` of every label of a 3D label map, each on its bounding box only.

    Args:
        label_volume: (X, Y, Z) integer label map (0 background).
        labels: the labels to measure; a label with no voxel gets 0.0.
    """
    boxes = ndimage.find_objects(np.asarray(label_volume))
    out = {}
    for label in labels:
        box = boxes[label - 1] if 0 < label <= len(boxes) else None
        out[int(label)] = 0.0 if box is None else largest_component_fraction(label_volume[box] == label)
    return out


def check_vertebra_quality(
    label: int | None,
    voxels: int,
    volume_ml: float,
    residual_mm: float,
    volume_ranges_ml: Mapping[object, Sequence[float]] | None = None,
    largest_component_fraction: float | None = None,
    *,
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
    min_largest_component_fraction: float = 0.9,
    volume_tolerance: Sequence[float] = DEFAULT_VOLUME_TOLERANCE,
    patch_outside_fraction: float | None = None,
    max_patch_outside_fraction: float = 0.25,
) -> VertebraQuality:
    """Run the checks (module docstring) on one vertebra's measured numbers.

    Args:
        label: its VerSe index (needed with ``volume_ranges_ml``).
        voxels: its voxel count.
        volume_ml: its volume in ml.
        residual_mm: its triangulation residual in mm.
        volume_ranges_ml: {level: (min_ml, max_ml)} seen in training; None or empty skips the range test.
        largest_component_fraction: share of its voxels in the largest 26-connected component; None skips
            the fragmentation test.
        residual_limit_mm: largest acceptable residual (mm).
        min_volume_ml: smallest acceptable volume (ml) when no training range applies.
        min_largest_component_fraction: smallest acceptable ``largest_component_fraction`` (0–1).
        volume_tolerance: (below, above) factors on the training range's min and max.
        patch_outside_fraction: the largest share, over both views, of its patch lying outside the radiograph;
            None skips that check.
        max_patch_outside_fraction: the largest acceptable ``patch_outside_fraction``.

    Raises:
        ValueError: bad limits or ranges, or ranges without a valid ``label``.
    """
    below, above = (float(v) for v in volume_tolerance)
    if not 0 < below <= 1 <= above < math.inf:
        raise ValueError(
            f"`volume_tolerance` must be (below, above) with 0 < below ≤ 1 ≤ above, got {tuple(volume_tolerance)}."
        )
    if not 0 <= min_largest_component_fraction <= 1:
        raise ValueError(
            f"`min_largest_component_fraction` must lie in [0, 1], got {min_largest_component_fraction!r}."
        )
    volume_range = None
    if volume_ranges_ml:
        label_to_name(label)  # type: ignore[arg-type]  # raises ValueError naming a bad label
        volume_range = training_volume_range(int(label), volume_ranges_ml)  # type: ignore[arg-type]
    failed = []
    if voxels == 0:
        failed.append(QualityCheck(QualityCheckName.EMPTY_SHAPE, "check: empty shape"))
    else:
        if volume_range is None and volume_ml < min_volume_ml:
            message = f"check: small shape ({volume_ml:.2f} ml < {min_volume_ml:g} ml)"
            failed.append(QualityCheck(QualityCheckName.SMALL_SHAPE, message))
        fraction = largest_component_fraction
        if fraction is not None and fraction < min_largest_component_fraction:
            failed.append(
                QualityCheck(
                    QualityCheckName.FRAGMENTED_SHAPE,
                    f"check: fragmented shape (largest connected part {fraction:.0%} of its voxels "
                    f"< {min_largest_component_fraction:.0%})",
                )
            )
        if volume_range is not None:
            where = volume_range.describe(int(label))  # type: ignore[arg-type]
            if volume_ml < volume_range.min_ml * below:
                limit = volume_range.min_ml * below
                failed.append(
                    QualityCheck(
                        QualityCheckName.VOLUME_BELOW_TRAINING_RANGE,
                        f"check: volume {volume_ml:.1f} ml below the {where} (limit {limit:.1f} ml)",
                    )
                )
            elif volume_ml > volume_range.max_ml * above:
                limit = volume_range.max_ml * above
                failed.append(
                    QualityCheck(
                        QualityCheckName.VOLUME_ABOVE_TRAINING_RANGE,
                        f"check: volume {volume_ml:.1f} ml above the {where} (limit {limit:.1f} ml)",
                    )
                )
    if not math.isfinite(residual_mm) or residual_mm > residual_limit_mm:
        message = f"check: residual {residual_mm:.1f} mm > {residual_limit_mm:g} mm"
        failed.append(QualityCheck(QualityCheckName.LARGE_RESIDUAL, message))
    if patch_outside_fraction is not None and patch_outside_fraction > max_patch_outside_fraction:
        message = (
            f"check: {patch_outside_fraction:.0%} of its patch lies outside the radiograph "
            f"(> {max_patch_outside_fraction:.0%}; the image is cut too tight)"
        )
        failed.append(QualityCheck(QualityCheckName.PATCH_BEYOND_IMAGE, message))
    return VertebraQuality(tuple(failed), volume_range, largest_component_fraction)


def assess_vertebra_quality(
    mask: object,
    voxel_volume_mm3: float,
    label: int,
    residual_mm: float,
    volume_ranges_ml: Mapping[object, Sequence[float]] | None = None,
    *,
    residual_limit_mm: float = 5.0,
    min_volume_ml: float = 1.0,
    min_largest_component_fraction: float = 0.9,
    volume_tolerance: Sequence[float] = DEFAULT_VOLUME_TOLERANCE,
) -> VertebraQuality:
    """Check one vertebra's predicted shape: empty, fragmented, volume outside its training range, large residual.

    Args:
        mask: (X, Y, Z) binary shape (numpy or torch; non-zero is foreground), or (1, X, Y, Z).
        voxel_volume_mm3: volume of one voxel in mm³.
        label: its VerSe index.
        residual_mm: its triangulation residual in mm.
        volume_ranges_ml: {level: (min_ml, max_ml)} seen in training (saved with the weights).
        residual_limit_mm, min_volume_ml, min_largest_component_fraction, volume_tolerance: see
            :func:`check_vertebra_quality`.

    Returns:
        A :class:`VertebraQuality`; ``.names`` and ``.flag`` are what ``summary.json`` stores.

    Raises:
        ValueError: a mask that is not 3D, a non-positive voxel volume, bad limits or ranges.

    Example:
        >>> q = assess_vertebra_quality(mask, 1.5**3, 22, 0.8, {22: (25.0, 50.0)})
        >>> q.names, q.flag  # (['volume_below_training_range'], 'check: volume 4.0 ml below the 25.0–50.0 ml ...')
    """
    data = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)  # type: ignore[union-attr]
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise ValueError(
            f"assess_vertebra_quality expects a 3D mask (X, Y, Z) or (1, X, Y, Z), got shape {data.shape}."
        )
    if not (math.isfinite(voxel_volume_mm3) and voxel_volume_mm3 > 0):
        raise ValueError(f"`voxel_volume_mm3` must be positive, got {voxel_volume_mm3!r}.")
    foreground = data != 0
    voxels = int(foreground.sum())
    return check_vertebra_quality(
        label,
        voxels,
        voxels * voxel_volume_mm3 / 1000.0,
        residual_mm,
        volume_ranges_ml,
        largest_component_fraction(foreground),
        residual_limit_mm=residual_limit_mm,
        min_volume_ml=min_volume_ml,
        min_largest_component_fraction=min_largest_component_fraction,
        volume_tolerance=volume_tolerance,
    )
