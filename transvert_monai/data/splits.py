"""How data lists split patients and vertebrae into training, validation and testing.

- By patient (:func:`split_patients`): patients are shuffled with ``seed`` and dealt to the folds in
  turn; fold ``k`` tests its own patients; of the remaining patients every 6th is validation (5:1 as
  in the paper; at least one when 2 or more remain) and the rest training.
- By vertebra level (:func:`split_levels`), per spine: its vertebrae are sorted cranial → caudal;
  fold ``k`` tests those at sorted position ``p`` with ``p % folds == k``; of the rest every 5th (at
  least one) is validation and the rest training.
- Leave one patient out (:func:`leave_one_patient_out`): patients sorted by id; fold ``k`` tests
  the ``k``-th patient; every other patient trains, less every 5th of its levels (at least one,
  :func:`split_validation_levels`) kept for validation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from monai.utils import StrEnum

from transvert_monai.data.labels import level_order

__all__ = [
    "SplitMode",
    "split_patients",
    "split_levels",
    "split_validation_levels",
    "leave_one_patient_out",
]

#: Every n-th training level of a leave-one-patient-out fold is validation.
VALIDATION_EVERY_LEVEL = 5


class SplitMode(StrEnum):
    """How a data list separates training, validation and testing."""

    PATIENT = "patient"  #: folds of whole patients
    VERTEBRA_LEVEL = "vertebra_level"  #: each case's levels dealt to the folds, pooled over cases
    LEAVE_ONE_PATIENT_OUT = "leave_one_patient_out"  #: fold k tests the k-th patient
    TEST_ONLY = "test_only"  #: every vertebra in testing (evaluating given weights)



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
    """Training, validation and testing vertebrae of one fold of one spine (see the module docstring).

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


def split_validation_levels(vertebrae: Sequence[int], every: int = VALIDATION_EVERY_LEVEL) -> tuple[list, list]:
    """Training and validation vertebrae of one training spine: every ``every``-th level (sorted cranial →
    caudal) is validation, at least one when the spine has 2 or more vertebrae."""
    return _validation_share(sorted({int(v) for v in vertebrae}, key=level_order), every)


def leave_one_patient_out(patients: Sequence[str], fold: int) -> tuple[list[str], str]:
    """Training patients and the test patient of leave-one-patient-out fold ``fold``.

    Patients are sorted by id; fold ``k`` tests the ``k``-th.

    Raises:
        ValueError: if there are fewer than 2 distinct patients or ``fold`` is out of range.
    """
    unique = sorted(set(patients))
    if len(unique) < 2:
        raise ValueError(
            f"Leave-one-patient-out needs at least 2 patients, got {len(unique)} ({unique}); add cases of another "
            "patient or drop --leave-one-patient-out."
        )
    _check_folds(len(unique), fold)
    return [p for p in unique if p != unique[fold]], unique[fold]
