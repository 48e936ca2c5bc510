"""Write and validate Decathlon-style JSON data lists with cross-validation folds.

One file per fold, ``<data_list_dir>/<name>_fold<k>.json``::

    {"name": ..., "description": ..., "labels": {"0": "background", "1": "C1", ...}, ...,
     "training": [{"case": "verse004", "ct": "cases/verse004/ct.nii.gz",
                   "mask": "cases/verse004/mask.nii.gz", "centroids": "cases/verse004/centroids.json",
                   "vertebrae": [16, 17, 18]}, ...],
     "validation": [...], "testing": [...]}

Paths are relative to the dataset folder, so
``monai.data.load_decathlon_datalist(path, data_list_key="training", base_dir=dataset_dir)`` resolves
them.

Splits:

- By patient, whenever there are at least 2 patients: patients are shuffled with ``seed`` and dealt
  to the folds in turn; fold ``k`` tests its own patients; of the remaining patients every 6th is
  validation (5:1 as in the paper; at least one when 2 or more remain) and the rest training. No
  patient is in two lists of one fold.
- By vertebra level, with a single patient: its vertebrae are sorted cranial → caudal; fold ``k``
  tests those at sorted position ``p`` with ``p % folds == k``; of the rest every 5th (at least one)
  is validation and the rest training. Each list then holds one item per case with its subset of
  ``vertebrae``. The data list's ``description`` says so: scores then measure generalisation across
  levels of one spine, not across patients.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import StrEnum

from transvert_monai.data.atomic import write_json_atomic
from transvert_monai.data.case import CENTROIDS_FILE, CT_FILE, MASK_FILE
from transvert_monai.data.labels import VERTEBRA_LABELS, is_vertebra_label, level_order
from transvert_monai.errors import TransVertInputError, UnreadableFileError
from transvert_monai.keys import TransVertKeys

__all__ = [
    "DATALIST_KEYS",
    "ITEM_KEYS",
    "SplitMode",
    "make_item",
    "split_patients",
    "split_levels",
    "write_datalists",
    "validate_datalist",
    "load_datalist",
]

#: The three lists of every data list file.
DATALIST_KEYS = ("training", "validation", "testing")
#: The keys of every item.
ITEM_KEYS = (
    TransVertKeys.CASE.value,
    TransVertKeys.CT.value,
    TransVertKeys.MASK.value,
    TransVertKeys.CENTROIDS.value,
    TransVertKeys.VERTEBRAE.value,
)
_FILE_KEYS = (TransVertKeys.CT.value, TransVertKeys.MASK.value, TransVertKeys.CENTROIDS.value)
_LABELS = {"0": "background", **{str(v): k for k, v in sorted(VERTEBRA_LABELS.items(), key=lambda kv: kv[1])}}


class SplitMode(StrEnum):
    """How a data list separates training, validation and testing."""

    PATIENT = "patient"
    VERTEBRA_LEVEL = "vertebra_level"


def make_item(case_id: str, vertebrae: Sequence[int], cases_dir: str = "cases") -> dict[str, Any]:
    """A data-list item for a prepared case; paths relative to the dataset folder."""
    base = f"{cases_dir}/{case_id}"
    return {
        TransVertKeys.CASE.value: case_id,
        TransVertKeys.CT.value: f"{base}/{CT_FILE}",
        TransVertKeys.MASK.value: f"{base}/{MASK_FILE}",
        TransVertKeys.CENTROIDS.value: f"{base}/{CENTROIDS_FILE}",
        TransVertKeys.VERTEBRAE.value: sorted((int(v) for v in vertebrae), key=level_order),
    }


def _check_folds(folds: int, fold: int | None = None) -> None:
    if not isinstance(folds, int) or folds < 2:
        raise ValueError(f"`folds` must be an integer >= 2, got {folds!r}.")
    if fold is not None and not 0 <= fold < folds:
        raise ValueError(f"`fold` must be in 0..{folds - 1}, got {fold}.")


def _validation_share(rest: list, every: int) -> tuple[list, list]:
    """Every ``every``-th element of ``rest`` → validation (at least one if 2 or more); the rest → training."""
    validation = rest[every - 1 :: every]
    if not validation and len(rest) >= 2:
        validation = [rest[len(rest) // 2]]
    training = [x for x in rest if x not in validation]
    return training, validation


def split_patients(patients: Sequence[str], folds: int, fold: int, seed: int = 0) -> tuple[list, list, list]:
    """Training, validation and testing patients of one fold (see the module docstring).

    Raises:
        ValueError: if there are fewer distinct patients than folds, or ``folds``/``fold`` are invalid.
    """
    _check_folds(folds, fold)
    unique = sorted(set(patients))
    if len(unique) < folds:
        raise ValueError(
            f"{folds} folds by patient need at least {folds} patients, got {len(unique)}; lower `folds` "
            "(--folds) or add cases."
        )
    order = list(unique)
    random.Random(seed).shuffle(order)
    testing = [p for i, p in enumerate(order) if i % folds == fold]
    rest = [p for i, p in enumerate(order) if i % folds != fold]
    training, validation = _validation_share(rest, 6)
    return training, validation, testing


def split_levels(vertebrae: Sequence[int], folds: int, fold: int) -> tuple[list, list, list]:
    """Training, validation and testing vertebrae of one fold of a single spine (see the module docstring).

    Raises:
        ValueError: if there are fewer vertebrae than folds, or ``folds``/``fold`` are invalid.
    """
    _check_folds(folds, fold)
    ordered = sorted({int(v) for v in vertebrae}, key=level_order)
    if len(ordered) < folds:
        raise ValueError(
            f"{folds} folds by vertebra level need at least {folds} complete vertebrae, got {len(ordered)}; "
            "lower `folds` (--folds)."
        )
    testing = [v for p, v in enumerate(ordered) if p % folds == fold]
    rest = [v for p, v in enumerate(ordered) if p % folds != fold]
    training, validation = _validation_share(rest, 5)
    return training, validation, testing


def _description(mode: SplitMode, name: str, fold: int, folds: int, seed: int) -> str:
    if mode == SplitMode.PATIENT:
        return (
            f"{name}, fold {fold} of {folds}, split by patient (seed {seed}): testing holds the patients of fold "
            f"{fold}; of the other patients every 6th is validation (5:1) and the rest training. "
            "Paths are relative to the dataset folder."
        )
    return (
        f"{name}, fold {fold} of {folds}, split by vertebra level (single patient): vertebrae sorted cranial to "
        f"caudal; testing holds those at sorted position p with p % {folds} == {fold}; of the rest every 5th "
        "(at least one) is validation and the rest training. All lists share one patient, so scores measure "
        "generalisation across vertebral levels, not across patients. Paths are relative to the dataset folder."
    )


def write_datalists(
    cases: Sequence[Mapping[str, Any]],
    data_list_dir: str | os.PathLike,
    name: str,
    *,
    folds: int = 3,
    seed: int = 0,
) -> list[Path]:
    """Write one Decathlon data list per fold: ``<data_list_dir>/<name>_fold<k>.json``.

    Args:
        cases: one mapping per prepared case with ``"case"``, ``"vertebrae"`` (complete VerSe indices)
            and optionally ``"patient"`` (default: the case). Cases without vertebrae are left out.
        data_list_dir: output folder.
        name: dataset name (file prefix and ``"name"`` field).
        folds: number of cross-validation folds (>= 2).
        seed: shuffles the patients of a patient split.

    Returns:
        The written paths, fold 0 first.

    Raises:
        TransVertInputError: if no case has a vertebra.
        ValueError: if there are too few patients (or vertebrae) for ``folds``.
    """
    _check_folds(folds)
    usable = [c for c in cases if c[TransVertKeys.VERTEBRAE.value]]
    if not usable:
        raise TransVertInputError(
            f"No case of dataset {name!r} has a complete vertebra; nothing to write in a data list. A vertebra is "
            "complete when its mask has at least `min_voxels` voxels and does not touch the border of the grid; "
            "each case's case.json lists why its vertebrae were excluded (an empty mask has none)."
        )
    patient_of = {str(c[TransVertKeys.CASE.value]): str(c.get("patient", c[TransVertKeys.CASE.value])) for c in usable}
    mode = SplitMode.PATIENT if len(set(patient_of.values())) >= 2 else SplitMode.VERTEBRA_LEVEL
    paths = []
    for fold in range(folds):
        lists: dict[str, list[dict[str, Any]]] = {key: [] for key in DATALIST_KEYS}
        if mode == SplitMode.PATIENT:
            groups = split_patients(list(patient_of.values()), folds, fold, seed)
            for key, patients in zip(DATALIST_KEYS, groups):
                lists[key] = [
                    make_item(str(c[TransVertKeys.CASE.value]), c[TransVertKeys.VERTEBRAE.value])
                    for c in usable
                    if patient_of[str(c[TransVertKeys.CASE.value])] in patients
                ]
        else:
            for c in usable:
                groups = split_levels(c[TransVertKeys.VERTEBRAE.value], folds, fold)
                for key, subset in zip(DATALIST_KEYS, groups):
                    if subset:
                        lists[key].append(make_item(str(c[TransVertKeys.CASE.value]), subset))
        data = {
            "name": name,
            "description": _description(mode, name, fold, folds, seed),
            "tensorImageSize": "3D",
            "modality": {"0": "CT"},
            "labels": _LABELS,
            "split": str(mode),
            "fold": fold,
            "folds": folds,
            "seed": seed,
            "numTraining": len(lists["training"]),
            "numValidation": len(lists["validation"]),
            "numTest": len(lists["testing"]),
            **lists,
        }
        paths.append(write_json_atomic(Path(data_list_dir) / f"{name}_fold{fold}.json", data))
    return paths


def _item_problems(item: Any, where: str, dataset_dir: Path) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where} must be an object with keys {list(ITEM_KEYS)}, got {type(item).__name__}"]
    problems = [f"{where} lacks the key {key!r}" for key in ITEM_KEYS if key not in item]
    for key in _FILE_KEYS:
        value = item.get(key)
        if key not in item:
            continue
        if not isinstance(value, str):
            problems.append(f"{where} key {key!r} must be a path string, got {value!r}")
        elif not (dataset_dir / value).is_file():
            problems.append(f"{where} key {key!r}: file {dataset_dir / value} does not exist")
    vertebrae = item.get(TransVertKeys.VERTEBRAE.value)
    if TransVertKeys.VERTEBRAE.value in item:
        if not isinstance(vertebrae, list) or not vertebrae:
            problems.append(f"{where} key 'vertebrae' must be a non-empty list of VerSe indices, got {vertebrae!r}")
        else:
            bad = [v for v in vertebrae if not is_vertebra_label(v)]
            if bad:
                problems.append(f"{where} key 'vertebrae' holds {bad}, not VerSe indices (1–25 or 28)")
    return problems


def validate_datalist(path: str | os.PathLike, dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """Check a data list: its lists and item keys, that its files exist, and its vertebra indices.

    Also checks that no vertebra of a case is in two lists of the file. Compare
    ``monai.data.decathlon_datalist.check_missing_files``, which only checks the files.

    Args:
        path: the data list JSON.
        dataset_dir: the folder its relative paths start from.

    Returns:
        The parsed data list.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFileError: if it is not JSON.
        TransVertInputError: listing every problem, each naming the list, the item and the key.
    """
    path = Path(path)
    dataset_dir = Path(dataset_dir)
    if not path.is_file():
        raise FileNotFoundError(f"Data list {path} does not exist; write it with `transvert-prepare`.")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise UnreadableFileError(f"Data list {path} is not valid JSON: {err}.") from None
    if not isinstance(data, dict):
        raise TransVertInputError(f"Data list {path} must be a JSON object with lists {list(DATALIST_KEYS)}.")
    problems = [f"the key {key!r} (a list) is missing" for key in DATALIST_KEYS if not isinstance(data.get(key), list)]
    owner: dict[tuple[str, int], str] = {}
    for key in DATALIST_KEYS:
        for i, item in enumerate(data.get(key) or []):
            case = item.get(TransVertKeys.CASE.value) if isinstance(item, dict) else None
            where = f"{key}[{i}] (case {case!r})"
            item_problems = _item_problems(item, where, dataset_dir)
            problems += item_problems
            if item_problems:
                continue
            for v in item[TransVertKeys.VERTEBRAE.value]:
                first = owner.setdefault((str(case), v), key)
                if first != key:
                    problems.append(f"{where}: vertebra {v} of case {case!r} is also in {first!r}")
    if problems:
        raise TransVertInputError(
            f"Data list {path} (dataset folder {dataset_dir}) is invalid:\n- " + "\n- ".join(problems)
        )
    return data


def load_datalist(path: str | os.PathLike, data_list_key: str, dataset_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Validate a data list (:func:`validate_datalist`), then load one of its lists with absolute paths.

    The bundle configs use this instead of ``monai.data.load_decathlon_datalist`` so that a missing
    file or a malformed item fails when the config is built, with a message naming the list, the
    item and the key, instead of deep inside a data loader.

    Raises:
        FileNotFoundError, ValueError: as :func:`validate_datalist`.
    """
    from monai.data import load_decathlon_datalist

    validate_datalist(path, dataset_dir)
    return load_decathlon_datalist(str(path), data_list_key=data_list_key, base_dir=str(dataset_dir))
