"""Vertebra centroids: our centroid JSON, VerSe centroid files, and centres of mass of a mask.

All centroids are world coordinates in millimetres, RAS, as ``MetaTensor.affine`` defines them
(DESIGN §2). Our file format::

    {"coordinate_system": "RAS", "units": "mm",
     "source": "verse_body_centroid" | "body_mask_centre_of_mass" | "body_rule_estimate",
     "centroids": {"20": [x, y, z], ...}}

keys are VerSe indices as strings. Every centroid is the vertebral-body centroid (DESIGN §2); the
source says how it was obtained: ``verse_body_centroid`` annotated by VerSe,
``body_mask_centre_of_mass`` the centre of mass of (vertebral-body mask ∩ vertebra) and
``body_rule_estimate`` the canal rule on the whole-vertebra mask (both in
:mod:`transvert_monai.data.body_centroid`). ``mask_centre_of_mass`` (the whole vertebra's centre of
mass, 9–14 mm posterior of the body centroid) is still read in files written before version 0.3 but
no longer written by the converters.

A VerSe centroid file (``*_seg-subreg_ctd.json``, ``verseXXX_ctd.json``) is a list whose first entry
``{"direction": ["P", "I", "R"]}`` names the axis codes of the voxel grid its coordinates refer to:
the image reoriented to those codes (axes permuted and flipped only, spacing unchanged). The
following entries ``{"label": 20, "X": .., "Y": .., "Z": ..}`` are continuous voxel indices on that
grid. Labels above 28 (the subregion centroids of ``seg-subreg`` files) are ignored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.utils import StrEnum, look_up_option
from nibabel import orientations
from scipy import ndimage

from transvert_monai.data.atomic import write_json_atomic
from transvert_monai.data.labels import VALID_VERTEBRA_LABELS, is_vertebra_label, label_to_name
from transvert_monai.errors import TransVertInputError, UnreadableFileError
from transvert_monai.geometry import as_affine, voxel_to_world

__all__ = [
    "CentroidSource",
    "as_label_array",
    "compute_centroids",
    "read_verse_centroids",
    "write_centroids",
    "read_centroids",
]


class CentroidSource(StrEnum):
    """Where a centroid comes from (the ``source`` field of a centroid JSON)."""

    VERSE_BODY_CENTROID = "verse_body_centroid"  #: annotated by VerSe
    BODY_MASK_CENTRE_OF_MASS = "body_mask_centre_of_mass"  #: centre of mass of (body mask ∩ vertebra)
    BODY_RULE_ESTIMATE = "body_rule_estimate"  #: canal rule on the whole-vertebra mask
    MASK_CENTRE_OF_MASS = "mask_centre_of_mass"  #: whole vertebra's centre of mass (legacy, not a body centroid)


def as_label_array(mask: NdarrayOrTensor, *, name: str = "mask") -> np.ndarray:
    """Return a label map as a 3D integer numpy array (a leading channel of size 1 is dropped).

    Raises:
        TransVertInputError: if it is not 3D or holds non-integer values.
    """
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise TransVertInputError(f"`{name}` must be a 3D label map (X, Y, Z) or (1, X, Y, Z), got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            raise TransVertInputError(
                f"`{name}` must hold integer labels, got non-integer values of dtype {arr.dtype}."
            )
        arr = arr.astype(np.int64)
    return arr


def compute_centroids(
    mask: NdarrayOrTensor, affine: torch.Tensor | Sequence, labels: Iterable[int] | None = None
) -> dict[int, torch.Tensor]:
    """Centre of mass of each label's voxels, in world millimetres through ``affine``.

    Args:
        mask: label map (X, Y, Z) or (1, X, Y, Z), integer values.
        affine: 4×4 voxel → world (RAS mm) map of ``mask``.
        labels: labels to compute; default every non-zero label present.

    Returns:
        ``{label: float64 tensor (3,)}`` in world mm, sorted by label.

    Raises:
        TransVertInputError: if ``mask`` is not a 3D integer label map or a requested label has no voxel.
        ValueError: if ``affine`` is unusable.
    """
    arr = as_label_array(mask)
    aff = as_affine(affine)
    if arr.size and arr.min() < 0:
        raise TransVertInputError(f"`mask` labels must be non-negative, got minimum {arr.min()}.")
    boxes = ndimage.find_objects(arr)
    present = [i + 1 for i, box in enumerate(boxes) if box is not None]
    wanted = sorted(present if labels is None else {int(x) for x in labels})
    out: dict[int, torch.Tensor] = {}
    for label in wanted:
        box = boxes[label - 1] if 0 < label <= len(boxes) else None
        if box is None:
            raise TransVertInputError(
                f"Label {label} has no voxel in the mask (labels present: {present}); "
                "drop it from `labels` or check the mask."
            )
        # centre of mass inside the label's bounding box, shifted back to whole-grid indices
        ijk = np.nonzero(arr[box] == label)
        offset = np.array([s.start for s in box], dtype=np.float64)
        centre = np.array([axis.mean() for axis in ijk], dtype=np.float64) + offset
        out[label] = voxel_to_world(aff, torch.from_numpy(centre))
    return out


def _load_json(path: Path, what: str) -> Any:
    """The JSON document in ``path``.

    Raises:
        UnreadableFileError: not UTF-8 JSON (also for nesting too deep to parse), naming the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise UnreadableFileError(f"{what} {path} is not valid JSON: {err}.") from None


def _finite(value: Any) -> float | None:
    """``value`` as a finite float if it is a JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is a whole JSON number or a short string of digits, else None."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if len(text) < 10 and text.lstrip("+-").isdecimal() else None
    number = _finite(value)
    return int(number) if number is not None and number.is_integer() else None


def _verse_entries(path: Path) -> tuple[list[str], list[dict]]:
    """Read a VerSe centroid file and check its layout; return the direction codes and the entries."""
    data = _load_json(path, "VerSe centroid file")
    if not isinstance(data, list) or not data:
        raise TransVertInputError(
            f"VerSe centroid file {path} must be a non-empty JSON list "
            f"([{{\"direction\": [...]}}, {{\"label\": .., \"X\": .., \"Y\": .., \"Z\": ..}}, ...]), "
            f"got {type(data).__name__}."
        )
    first = data[0]
    if not isinstance(first, dict) or "direction" not in first:
        raise TransVertInputError(
            f"VerSe centroid file {path} has no direction entry: its first item must be "
            f"{{\"direction\": [\"P\", \"I\", \"R\"]}} (axis codes of the grid of the coordinates), got {first!r}. "
            "Older VerSe 2019 releases lack it; use the re-released VerSe files (github.com/anjany/verse)."
        )
    direction = first["direction"]
    if not isinstance(direction, (list, tuple)) or len(direction) != 3:
        raise TransVertInputError(f"VerSe centroid file {path}: direction must list 3 axis codes, got {direction!r}.")
    return [str(c) for c in direction], data[1:]


def read_verse_centroids(
    path: str | os.PathLike, image_affine: torch.Tensor | Sequence, image_shape: Sequence[int]
) -> dict[int, torch.Tensor]:
    """Read a VerSe centroid JSON and return the vertebral-body centroids in world mm.

    The coordinates are voxel indices of the image reoriented to the file's ``direction`` codes. They
    are mapped back to the image's own voxel indices with nibabel orientations (the image's closest
    axis codes from its affine; a flipped axis maps index ``k`` to ``shape - 1 - k``), then to world
    mm through the affine. Only vertebra labels 1–25 and 28 are returned.

    Args:
        path: the VerSe ``*_ctd.json`` file.
        image_affine: 4×4 voxel → world (RAS mm) affine of the CT (or mask) it annotates.
        image_shape: spatial shape (X, Y, Z) of that image.

    Returns:
        ``{VerSe index: float64 tensor (3,)}`` world mm, sorted by label.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFileError: if the file is not JSON.
        TransVertInputError: if the file layout is wrong (not a list, no direction entry, bad axis codes,
            an entry without label/X/Y/Z or with non-finite ones, a label given twice), or a vertebra
            centroid lies outside the image grid.
        ValueError: if the affine is unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VerSe centroid file {path} does not exist.")
    aff = as_affine(image_affine, name="image_affine")
    shape = [int(s) for s in image_shape]
    if len(shape) != 3:
        raise TransVertInputError(f"`image_shape` must be the 3 spatial sizes, got {tuple(image_shape)}.")
    direction, entries = _verse_entries(path)
    try:
        file_ornt = orientations.axcodes2ornt(direction)
    except ValueError as err:
        raise TransVertInputError(
            f"VerSe centroid file {path}: direction {direction!r} is not 3 axis codes: {err}."
        ) from None
    if np.isnan(file_ornt).any() or sorted(file_ornt[:, 0].tolist()) != [0.0, 1.0, 2.0]:
        raise TransVertInputError(f"VerSe centroid file {path}: direction {direction!r} must use 3 of L/R, A/P, S/I.")
    # image axis i goes to file axis transform[i, 0], flipped when transform[i, 1] == -1
    transform = orientations.ornt_transform(orientations.io_orientation(aff.numpy()), file_ornt)
    out: dict[int, torch.Tensor] = {}
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "label" not in entry:
            raise TransVertInputError(f"VerSe centroid file {path}: entry {n} has no 'label': {entry!r}.")
        label = _integer(entry["label"])
        if label is None:
            raise TransVertInputError(
                f"VerSe centroid file {path}: entry {n} has a non-integer label {entry['label']!r}."
            )
        if label not in VALID_VERTEBRA_LABELS:
            continue  # subregion centroids (labels > 40) and sacrum/coccyx
        missing = [k for k in ("X", "Y", "Z") if k not in entry]
        if missing:
            raise TransVertInputError(
                f"VerSe centroid file {path}: entry {n} (label {label}) lacks {missing}: {entry!r}."
            )
        if label in out:
            raise TransVertInputError(f"VerSe centroid file {path}: label {label} is given twice.")
        file_ijk = [_finite(entry[k]) for k in ("X", "Y", "Z")]
        if any(v is None for v in file_ijk):
            raise TransVertInputError(
                f"VerSe centroid file {path}: entry {n} (label {label}) must give X, Y, Z as finite numbers (voxel "
                f"indices), got {[entry[k] for k in ('X', 'Y', 'Z')]!r}."
            )
        ijk = torch.empty(3, dtype=torch.float64)
        for axis in range(3):
            target, flip = int(transform[axis, 0]), transform[axis, 1]
            value = file_ijk[target]
            ijk[axis] = shape[axis] - 1 - value if flip < 0 else value
        if ((ijk < -0.5) | (ijk > torch.tensor(shape, dtype=torch.float64) - 0.5)).any():
            raise TransVertInputError(
                f"VerSe centroid file {path}: the centroid of {label_to_name(label)} (X, Y, Z = {file_ijk}) lies "
                f"outside the {'×'.join(map(str, shape))} image grid; check that the file belongs to this CT and "
                f"that its direction entry {direction} is right."
            )
        out[label] = voxel_to_world(aff, ijk)
    return dict(sorted(out.items()))


def write_centroids(
    path: str | os.PathLike, centroids: Mapping[int, torch.Tensor | Sequence[float]], source: CentroidSource | str
) -> Path:
    """Write centroids (world RAS mm) in our centroid JSON format, atomically.

    Raises:
        ValueError: for an unknown ``source``.
        TransVertInputError: for a non-vertebra label or a non-finite coordinate.
    """
    source = look_up_option(source, CentroidSource)
    body: dict[str, list[float]] = {}
    for label, xyz in sorted(centroids.items()):
        if not is_vertebra_label(int(label)):
            raise TransVertInputError(f"Centroid label {label!r} is not a VerSe vertebra label (1–25 or 28).")
        values = [float(v) for v in torch.as_tensor(xyz, dtype=torch.float64).reshape(-1).tolist()]
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise TransVertInputError(
                f"Centroid of {label_to_name(int(label))} must be 3 finite mm values, got {values}."
            )
        body[str(int(label))] = values
    data = {"coordinate_system": "RAS", "units": "mm", "source": str(source), "centroids": body}
    return write_json_atomic(path, data)


def read_centroids(path: str | os.PathLike) -> dict[int, torch.Tensor]:
    """Read our centroid JSON: ``{VerSe index: float64 tensor (3,)}`` world RAS mm.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFileError: if the file is not JSON.
        TransVertInputError: if the file is not in our format (see the module docstring), or a
            coordinate is not a finite number; the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Centroid file {path} does not exist; write it with `transvert-prepare` or "
            "`transvert_monai.data.write_centroids`."
        )
    data = _load_json(path, "Centroid file")
    if not isinstance(data, dict) or not isinstance(data.get("centroids"), dict):
        raise TransVertInputError(
            f"Centroid file {path} must be a JSON object with a 'centroids' object "
            "({\"coordinate_system\": \"RAS\", \"units\": \"mm\", \"centroids\": {\"20\": [x, y, z]}}). "
            "A VerSe centroid list is read with `read_verse_centroids`."
        )
    if data.get("coordinate_system", "RAS") != "RAS" or data.get("units", "mm") != "mm":
        raise TransVertInputError(
            f"Centroid file {path} must hold RAS millimetres, got coordinate_system="
            f"{data.get('coordinate_system')!r}, units={data.get('units')!r}."
        )
    out: dict[int, torch.Tensor] = {}
    for key, xyz in data["centroids"].items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise TransVertInputError(
                f"Centroid file {path}: key {key!r} is not a VerSe index string such as \"20\"."
            ) from None
        if not is_vertebra_label(label):
            raise TransVertInputError(
                f"Centroid file {path}: label {label} is not a VerSe vertebra label (1–25 or 28)."
            )
        values = [_finite(v) for v in xyz] if isinstance(xyz, list) else []
        if len(values) != 3 or any(v is None for v in values):
            raise TransVertInputError(
                f"Centroid file {path}: label {label} must map to [x, y, z], three finite numbers of mm, got {xyz!r}."
            )
        out[label] = torch.tensor(values, dtype=torch.float64)
    return dict(sorted(out.items()))
