"""Prepare a source dataset (VerSe or TotalSegmentator) in our layout, and write its data lists.

Output::

    <output_dir>/cases/<case>/ct.nii.gz        the CT (HU), as read
    <output_dir>/cases/<case>/mask.nii.gz      vertebra labels, VerSe indices (uint8), CT grid
    <output_dir>/cases/<case>/centroids.json   complete vertebrae, world RAS mm
    <output_dir>/cases/<case>/case.json        manifest, written last
    <output_dir>/cases/<case>/body.nii.gz      vertebral bodies (VerSe indices), when the data has a body mask
    <data_list_dir>/<name>_fold<k>.json        Decathlon data lists (default <output_dir>/data_lists)
    <data_list_dir>/<name>_lopo<k>.json        leave-one-patient-out lists (--leave-one-patient-out)
    <data_list_dir>/<name>_test.json           every vertebra under testing (--test-only, instead of folds)

Cases are converted one at a time (the collection is never held in memory), every file is written
atomically, and a case whose manifest and files exist (prepared with the same settings) is skipped,
so an interrupted run resumes where it stopped. Field-of-view rule: a vertebra whose mask touches the
first or last voxel plane along any grid axis, or has fewer than ``min_voxels`` voxels, is left out
as incomplete (listed with its reason in ``case.json``). Centroids are vertebral-body centroids
(:mod:`transvert_monai.data.body_centroid`); the rule's name is part of the settings, so cases
prepared with an older rule are redone.

Command line::

    transvert-prepare verse /data/verse20 /data/verse20_prepared --name verse20
    transvert-prepare totalsegmentator /data/ts /data/ts_prepared --name ts --label-names structures.csv
    transvert-prepare totalsegmentator /data/ts /data/ts_prepared --name ts --leave-one-patient-out
    transvert-prepare verse /data/my_cases /data/my_prepared --name mine --test-only
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.utils import StrEnum, look_up_option
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from transvert_monai.data.body_centroid import BODY_RULE
from transvert_monai.data.case import read_case_manifest, write_case
from transvert_monai.data.convert_totalsegmentator import convert_totalsegmentator_case, find_totalsegmentator_cases
from transvert_monai.data.convert_verse import convert_verse_case, find_verse_cases
from transvert_monai.data.datalist import write_datalists, write_lopo_datalists, write_test_datalist
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS
from transvert_monai.data.labels import label_to_name
from transvert_monai.data.splits import SplitMode
from transvert_monai.cli import add_version_argument, run_command
from transvert_monai.errors import OutputRefusedError, TransVertInputError

__all__ = ["DataSource", "prepare_dataset", "main", "entry_point"]

logger = logging.getLogger(__name__)


class DataSource(StrEnum):
    """Source datasets that :func:`prepare_dataset` reads."""

    VERSE = "verse"
    TOTALSEGMENTATOR = "totalsegmentator"


_LAYOUTS = {
    DataSource.VERSE: "rawdata/sub-*/*_ct.nii.gz with derivatives/sub-*/*_seg-vert_msk.nii.gz, "
    "or verse*.nii.gz with verse*_seg.nii.gz",
    DataSource.TOTALSEGMENTATOR: "<case>/ct.nii.gz with <case>/segmentations/ or <case>/segmentations.nii.gz",
}


def _find_cases(source: DataSource, input_dir: Path, label_names: Path | None) -> list:
    if source == DataSource.VERSE:
        if label_names is not None:
            logger.warning("`label_names` is ignored for VerSe, whose masks already hold VerSe indices.")
        return find_verse_cases(input_dir)
    return find_totalsegmentator_cases(input_dir, label_names)


def _prepare_case(source: DataSource, case: Any, case_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Convert and write one case unless it is already prepared; return its data-list record."""
    manifest = read_case_manifest(case_dir, settings)
    if manifest is not None:
        logger.info("%s: already prepared, skipping.", case.case_id)
    else:
        # one case at a time: its volumes are freed when this function returns
        if source == DataSource.VERSE:
            converted = convert_verse_case(case, settings["min_voxels"])
        else:
            converted = convert_totalsegmentator_case(case, settings["min_voxels"])
        manifest = write_case(converted, case_dir, settings=settings)
        kept = [label_to_name(v) for v in manifest["vertebrae"]]
        logger.info("%s: kept %s.", case.case_id, ", ".join(kept) or "no vertebra")
    return {"case": manifest["case"], "patient": manifest["patient"], "vertebrae": manifest["vertebrae"]}


def prepare_dataset(
    source: DataSource | str,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    name: str,
    folds: int = 3,
    seed: int = 0,
    data_list_dir: str | os.PathLike | None = None,
    min_voxels: int = DEFAULT_MIN_VOXELS,
    label_names: str | os.PathLike | None = None,
    *,
    split: SplitMode | str | None = None,
    leave_one_patient_out: bool = False,
    test_only: bool = False,
) -> list[Path]:
    """Convert every case of a source dataset into our layout, then write its data lists.

    Args:
        source: ``"verse"`` or ``"totalsegmentator"``.
        input_dir: the source dataset folder (layouts in :mod:`~transvert_monai.data.convert_verse` and
            :mod:`~transvert_monai.data.convert_totalsegmentator`).
        output_dir: the dataset folder to write (``dataset_dir`` of the bundle).
        name: dataset name, the prefix of the data-list files.
        folds: number of cross-validation folds.
        seed: seed of the patient shuffle of the folds.
        data_list_dir: where to write the data lists; default ``<output_dir>/data_lists``.
        min_voxels: smallest voxel count of a complete vertebra (field-of-view rule).
        label_names: structure names of TotalSegmentator multi-label files (CSV or JSON).
        split: ``"patient"`` or ``"vertebra_level"`` folds; default by patient with 2 or more patients.
        leave_one_patient_out: also write ``<name>_lopo<k>.json``, one per patient.
        test_only: write only ``<name>_test.json`` (every vertebra under testing), no folds; works
            with any number of vertebrae.

    Returns:
        The data-list paths: folds first (fold 0 first), then the leave-one-patient-out lists; or
        only the test list.

    Raises:
        FileNotFoundError: if ``input_dir`` (or ``label_names``) does not exist.
        ValueError: for an unknown ``source`` or ``split``, an empty ``name``, no case found, bad input
            data, too few patients/vertebrae for ``folds``, or fewer than 2 patients for
            ``leave_one_patient_out``.
    """
    source = DataSource(look_up_option(source, DataSource))
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"`name` must be a non-empty file-name prefix without slashes, got {name!r}.")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    from transvert_monai.io.paths import require_folder

    require_folder(input_dir, "input folder", f"pass the {source} dataset folder")
    _check_output_folder(output_dir, input_dir, data_list_dir, label_names)
    cases = _find_cases(source, input_dir, Path(label_names) if label_names is not None else None)
    for case in cases:
        check_case_id(case.case_id, getattr(case, "ct", input_dir))
    if not cases:
        raise TransVertInputError(
            f"No {source} case found in {input_dir}; expected {_LAYOUTS[source]} "
            f"(see transvert_monai.data.convert_{source})."
        )
    if split is not None:  # fail before any work
        look_up_option(split, [SplitMode.PATIENT, SplitMode.VERTEBRA_LEVEL])
    settings = {"source": str(source), "min_voxels": int(min_voxels), "body_centroid_rule": BODY_RULE}
    records: list[dict[str, Any]] = []
    with logging_redirect_tqdm():
        for case in tqdm(cases, desc=f"prepare {name}", unit="case"):
            records.append(_prepare_case(source, case, output_dir / "cases" / case.case_id, settings))
    for record in records:
        if not record["vertebrae"]:
            logger.warning("%s has no complete vertebra and is left out of the data lists.", record["case"])
    data_list_dir = Path(data_list_dir) if data_list_dir is not None else output_dir / "data_lists"
    if test_only:
        return [write_test_datalist(records, data_list_dir, name)]
    paths = write_datalists(records, data_list_dir, name, folds=folds, seed=seed, split=split)
    if leave_one_patient_out:
        paths += write_lopo_datalists(records, data_list_dir, name)
    return paths


#: A case id is a folder name under ``cases/``: letters, digits, ``.``, ``_``, ``-``; not ``.`` or ``..``.
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_case_id(case_id: str, source: object = "") -> str:
    """Refuse a case id that is not a plain folder name (``.``, ``..``, slashes, spaces, control characters).

    Case ids come from file and folder names of the source dataset and become ``cases/<id>/``; an id such as
    ``..`` would put a case's files at another level of the dataset.

    Raises:
        TransVertInputError: naming the id, the file it came from and the rule.
    """
    if not isinstance(case_id, str) or not _CASE_ID.fullmatch(case_id) or case_id in (".", ".."):
        raise TransVertInputError(
            f"the case id {case_id!r} (from {source}) is not a plain folder name: it must start with a letter or digit "
            "and hold only letters, digits, '.', '_' and '-'. Rename the source file or folder."
        )
    return case_id


def _check_output_folder(
    output_dir: Path, input_dir: Path, data_list_dir: str | os.PathLike | None, label_names: str | os.PathLike | None
) -> None:
    """Refuse a dataset folder that overlaps the source dataset or cannot be written, before any work."""
    from transvert_monai.outputs.safety import check_no_overlap, check_writable_parent

    for out, what in ((output_dir, "output folder"), (data_list_dir, "data-list folder")):
        if out is None:
            continue
        check_no_overlap(out, [input_dir, label_names], what)
        if Path(os.path.realpath(input_dir)) in Path(os.path.realpath(out)).parents:
            raise OutputRefusedError(
                f"the {what} {out} lies inside the source dataset {input_dir}; write the prepared dataset elsewhere, "
                "so that the source stays as it was."
            )
        if Path(out).exists() and not Path(out).is_dir():
            raise OutputRefusedError(f"the {what} {out} is a file, not a folder; choose another {what}.")
        check_writable_parent(Path(out) / "x", what)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transvert-prepare",
        description="Convert VerSe or TotalSegmentator data to the TransVert layout and write Decathlon data lists.",
    )
    parser.add_argument("source", help="source dataset: verse | totalsegmentator")
    parser.add_argument("input_dir", type=Path, help="source dataset folder")
    parser.add_argument("output_dir", type=Path, help="dataset folder to write (cases/, data_lists/)")
    parser.add_argument(
        "--name", default=None, help="dataset name, prefix of the data lists (default: the output folder name)"
    )
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient split (default 0)")
    parser.add_argument(
        "--split",
        default=None,
        help="folds by 'patient' or by 'vertebra_level' (default: patient with 2 or more patients, else level)",
    )
    parser.add_argument(
        "--leave-one-patient-out",
        action="store_true",
        help="also write <name>_lopo<k>.json: fold k tests the k-th patient (sorted ids)",
    )
    parser.add_argument(
        "--test-only",
        action="store_true",
        help="write only <name>_test.json with every vertebra under testing (to evaluate trained weights)",
    )
    parser.add_argument("--data-list-dir", type=Path, default=None, help="default <output_dir>/data_lists")
    parser.add_argument(
        "--min-voxels", type=int, default=DEFAULT_MIN_VOXELS, help="smallest complete vertebra (default 1000)"
    )
    parser.add_argument(
        "--label-names", type=Path, default=None, help="TotalSegmentator structure names (CSV structure,id or JSON)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    add_version_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line interface of :func:`prepare_dataset`; returns the exit code (see :mod:`transvert_monai.cli`)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")

    def body() -> None:
        paths = prepare_dataset(
            args.source,
            args.input_dir,
            args.output_dir,
            args.name or args.output_dir.name,
            folds=args.folds,
            seed=args.seed,
            data_list_dir=args.data_list_dir,
            min_voxels=args.min_voxels,
            label_names=args.label_names,
            split=args.split,
            leave_one_patient_out=args.leave_one_patient_out,
            test_only=args.test_only,
        )
        logger.info("transvert-prepare: wrote %s", ", ".join(str(p) for p in paths))

    return run_command("transvert-prepare", body)


def entry_point() -> None:
    """Console script ``transvert-prepare``."""
    sys.exit(main())
