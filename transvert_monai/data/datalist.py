"""Write and validate Decathlon-style JSON data lists: cross-validation folds, leave-one-patient-out, test only.

Files, in ``<data_list_dir>``:

- ``<name>_fold<k>.json``: cross-validation folds (:func:`write_datalists`);
- ``<name>_lopo<k>.json``: leave-one-patient-out, fold ``k`` tests the ``k``-th patient by sorted id
  (:func:`write_lopo_datalists`);
- ``<name>_test.json``: every vertebra under ``testing``, empty ``training`` and ``validation``, to
  evaluate given weights (:func:`write_test_datalist`).

Layout of every file::

    {"name": ..., "description": ..., "labels": {"0": "background", "1": "C1", ...},
     "split": "patient" | "vertebra_level" | "leave_one_patient_out" | "test_only", "fold": k, ...,
     "training": [{"case": "verse004", "ct": "cases/verse004/ct.nii.gz",
                   "mask": "cases/verse004/mask.nii.gz", "centroids": "cases/verse004/centroids.json",
                   "vertebrae": [16, 17, 18]}, ...],
     "validation": [...], "testing": [...]}

Items have the keys :data:`ITEM_KEYS` (``TransVertKeys`` names); ``vertebrae`` are the VerSe indices
of the case that the list uses, so one case can appear in several lists with disjoint levels. Paths
are relative to the dataset folder, so
``monai.data.load_decathlon_datalist(path, data_list_key="training", base_dir=dataset_dir)`` resolves
them. The splits are stated in :mod:`transvert_monai.data.splits`; by default the folds are by
patient whenever there are at least 2 patients, by vertebra level otherwise, and the data list's
``description`` says which (by level, scores measure generalisation across levels of the same
spines, not across patients).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import look_up_option

from transvert_monai.data.atomic import write_json_atomic
from transvert_monai.data.case import CENTROIDS_FILE, CT_FILE, MASK_FILE
from transvert_monai.data.centroids import read_centroids
from transvert_monai.data.labels import VERTEBRA_LABELS, is_vertebra_label, label_to_name, level_order
from transvert_monai.data.splits import (
    SplitMode,
    leave_one_patient_out,
    split_levels,
    split_patients,
    split_validation_levels,
)
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
    "write_lopo_datalists",
    "write_test_datalist",
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
_PATHS_NOTE = "Paths are relative to the dataset folder."


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


def _description(mode: SplitMode, name: str, fold: int, folds: int, seed: int, patients: int) -> str:
    if mode == SplitMode.PATIENT:
        return (
            f"{name}, fold {fold} of {folds}, split by patient (seed {seed}): testing holds the patients of fold "
            f"{fold}; of the other patients every 6th is validation (5:1) and the rest training. {_PATHS_NOTE}"
        )
    who = "one patient" if patients == 1 else f"each of the {patients} patients, pooled into one list per fold"
    return (
        f"{name}, fold {fold} of {folds}, split by vertebra level ({who}): each spine's vertebrae sorted cranial "
        f"to caudal; testing holds those at sorted position p with p % {folds} == {fold}; of the rest every 5th "
        "(at least one) is validation and the rest training. Training and testing share the patients, so scores "
        f"measure generalisation across vertebral levels, not across patients. {_PATHS_NOTE}"
    )


def _usable(cases: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    usable = [c for c in cases if c[TransVertKeys.VERTEBRAE.value]]
    if not usable:
        raise TransVertInputError(
            f"No case of dataset {name!r} has a complete vertebra; nothing to write in a data list. A vertebra is "
            "complete when its mask has at least `min_voxels` voxels and does not touch the border of the grid; "
            "each case's case.json lists why its vertebrae were excluded (an empty mask has none)."
        )
    return usable


def _case_of(c: Mapping[str, Any]) -> str:
    return str(c[TransVertKeys.CASE.value])


def _patient_of(c: Mapping[str, Any]) -> str:
    return str(c.get("patient", c[TransVertKeys.CASE.value]))


def _write(path: Path, name: str, description: str, lists: dict[str, list], **fields: Any) -> Path:
    data = {
        "name": name,
        "description": description,
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": _LABELS,
        **fields,
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["testing"]),
        **lists,
    }
    return write_json_atomic(path, data)


def write_datalists(
    cases: Sequence[Mapping[str, Any]],
    data_list_dir: str | os.PathLike,
    name: str,
    *,
    folds: int = 3,
    seed: int = 0,
    split: SplitMode | str | None = None,
) -> list[Path]:
    """Write one Decathlon data list per fold: ``<data_list_dir>/<name>_fold<k>.json``.

    Args:
        cases: one mapping per prepared case with ``"case"``, ``"vertebrae"`` (complete VerSe indices)
            and optionally ``"patient"`` (default: the case). Cases without vertebrae are left out.
        data_list_dir: output folder.
        name: dataset name (file prefix and ``"name"`` field).
        folds: number of cross-validation folds (>= 2).
        seed: shuffles the patients of a patient split.
        split: ``"patient"`` or ``"vertebra_level"``; default by patient when there are at least 2
            patients, else by level.

    Returns:
        The written paths, fold 0 first.

    Raises:
        TransVertInputError: if no case has a vertebra.
        ValueError: if there are too few patients (or vertebrae of a case) for ``folds``, or ``split``
            is not a fold split.
    """
    if not isinstance(folds, int) or folds < 2:
        raise ValueError(f"`folds` must be an integer >= 2, got {folds!r}.")
    usable = _usable(cases, name)
    patient_of = {_case_of(c): _patient_of(c) for c in usable}
    n_patients = len(set(patient_of.values()))
    if split is None:
        mode = SplitMode.PATIENT if n_patients >= 2 else SplitMode.VERTEBRA_LEVEL
    else:
        mode = SplitMode(look_up_option(split, [SplitMode.PATIENT, SplitMode.VERTEBRA_LEVEL]))
    paths = []
    for fold in range(folds):
        lists: dict[str, list[dict[str, Any]]] = {key: [] for key in DATALIST_KEYS}
        if mode == SplitMode.PATIENT:
            groups = split_patients(list(patient_of.values()), folds, fold, seed)
            for key, patients in zip(DATALIST_KEYS, groups):
                lists[key] = [
                    make_item(_case_of(c), c[TransVertKeys.VERTEBRAE.value])
                    for c in usable
                    if patient_of[_case_of(c)] in patients
                ]
        else:
            for c in usable:
                for key, subset in zip(DATALIST_KEYS, split_levels(c[TransVertKeys.VERTEBRAE.value], folds, fold)):
                    if subset:
                        lists[key].append(make_item(_case_of(c), subset))
        description = _description(mode, name, fold, folds, seed, n_patients)
        path = Path(data_list_dir) / f"{name}_fold{fold}.json"
        paths.append(_write(path, name, description, lists, split=str(mode), fold=fold, folds=folds, seed=seed))
    return paths


def write_lopo_datalists(
    cases: Sequence[Mapping[str, Any]], data_list_dir: str | os.PathLike, name: str
) -> list[Path]:
    """Write leave-one-patient-out data lists: ``<data_list_dir>/<name>_lopo<k>.json``, one per patient.

    Fold ``k`` tests every vertebra of the ``k``-th patient (patients sorted by id); every other
    patient's cases train, less every 5th of each case's levels (at least one when it has 2 or more),
    which are validation. Each file records ``"test_patient"``.

    Args:
        cases: as :func:`write_datalists`.
        data_list_dir: output folder.
        name: dataset name.

    Returns:
        The written paths, fold 0 first.

    Raises:
        TransVertInputError: if no case has a vertebra.
        ValueError: if there are fewer than 2 patients.
    """
    usable = _usable(cases, name)
    patients = sorted({_patient_of(c) for c in usable})
    leave_one_patient_out(patients, 0)  # fails early with fewer than 2 patients
    paths = []
    for fold in range(len(patients)):
        training_patients, test_patient = leave_one_patient_out(patients, fold)
        lists: dict[str, list[dict[str, Any]]] = {key: [] for key in DATALIST_KEYS}
        for c in usable:
            vertebrae = c[TransVertKeys.VERTEBRAE.value]
            if _patient_of(c) == test_patient:
                lists["testing"].append(make_item(_case_of(c), vertebrae))
                continue
            for key, subset in zip(("training", "validation"), split_validation_levels(vertebrae)):
                if subset:
                    lists[key].append(make_item(_case_of(c), subset))
        description = (
            f"{name}, leave-one-patient-out fold {fold} of {len(patients)}: testing holds every vertebra of patient "
            f"{test_patient!r}; training the other patients ({', '.join(training_patients)}), less every 5th of "
            f"each case's levels (sorted cranial to caudal, at least one), which are validation. {_PATHS_NOTE}"
        )
        path = Path(data_list_dir) / f"{name}_lopo{fold}.json"
        fields = {"split": str(SplitMode.LEAVE_ONE_PATIENT_OUT), "fold": fold, "folds": len(patients)}
        paths.append(_write(path, name, description, lists, **fields, test_patient=test_patient))
    return paths


def write_test_datalist(cases: Sequence[Mapping[str, Any]], data_list_dir: str | os.PathLike, name: str) -> Path:
    """Write ``<data_list_dir>/<name>_test.json``: every complete vertebra under ``testing``.

    ``training`` and ``validation`` are empty; use it to evaluate given weights on one's own cases.
    Any number of vertebrae works (no folds).

    Raises:
        TransVertInputError: if no case has a vertebra.
    """
    usable = _usable(cases, name)
    testing = [make_item(_case_of(c), c[TransVertKeys.VERTEBRAE.value]) for c in usable]
    lists: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "testing": testing}
    description = (
        f"{name}, test only: every complete vertebra of every case under testing; training and validation are "
        f"empty (for evaluating trained weights). {_PATHS_NOTE}"
    )
    path = Path(data_list_dir) / f"{name}_test.json"
    return _write(path, name, description, lists, split=str(SplitMode.TEST_ONLY))


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
            centroids = item.get(TransVertKeys.CENTROIDS.value)
            if not bad and isinstance(centroids, str) and (dataset_dir / centroids).is_file():
                problems += _missing_levels(item, where, dataset_dir / centroids)
    return problems


def _missing_levels(item: dict, where: str, centroids_path: Path) -> list[str]:
    """The problem of a data-list item naming vertebrae its case has no centroid for (none when all are there)."""
    try:
        present = read_centroids(centroids_path)
    except (TransVertInputError, UnreadableFileError) as err:
        return [f"{where}: {err}"]
    missing = [v for v in item[TransVertKeys.VERTEBRAE.value] if v not in present]
    if not missing:
        return []
    names = ", ".join(label_to_name(v) for v in missing)
    have = ", ".join(label_to_name(v) for v in sorted(present)) or "none"
    return [
        f"{where} names {names}, which the case does not have (its centroids hold {have}); "
        "regenerate the data list with `transvert-prepare` or drop those levels"
    ]


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
    items = load_decathlon_datalist(str(path), data_list_key=data_list_key, base_dir=str(dataset_dir))
    if not items:
        raise TransVertInputError(
            f"the data list {path} has no entries under {data_list_key!r}, so there is nothing to "
            f"{'train on' if data_list_key == 'training' else 'run'}; write the list with transvert-prepare, or choose "
            "another data list (data_list_file_path) or fold."
        )
    return items
