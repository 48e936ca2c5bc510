"""Outputs of a reconstruction: the spine label map (NIfTI), meshes, overlays on the radiographs, renderings, summary."""

from __future__ import annotations

from transvert_monai.outputs.colour_table import (
    ITKSNAP_LABELS_NAME,
    SLICER_COLOUR_TABLE_NAME,
    colour_table_rows,
    write_colour_tables,
)
from transvert_monai.outputs.meshes import (
    MESH_FORMATS,
    MESH_SPACE,
    RAS_TO_LPS,
    label_mesh,
    load_mesh_ras,
    mesh_bytes,
    mesh_space,
    write_meshes,
)
from transvert_monai.outputs.overlay import (
    MAX_OVERLAY_SIDE_PX,
    overlay_projection,
    overlay_radiograph,
    project_label_volume,
)
from transvert_monai.outputs.palette import label_colour
from transvert_monai.outputs.quality import (
    DEFAULT_VOLUME_TOLERANCE,
    QualityCheck,
    QualityCheckName,
    VertebraQuality,
    VolumeRange,
    assess_vertebra_quality,
    check_vertebra_quality,
    check_volume_ranges,
    label_component_fractions,
    largest_component_fraction,
    training_volume_range,
)
from transvert_monai.outputs.report import REPORT_NAME, decimate_mesh, write_report
from transvert_monai.outputs.safety import MARKER_NAME, OutputFolder, write_file_safely
from transvert_monai.outputs.summary import SUMMARY_FIELDS, quality_flag, summary_row, vertebra_summary_rows, write_summary
from transvert_monai.outputs.views import label_projection, render_views, to_ras
from transvert_monai.outputs.volume import as_label_volume, write_label_volume_nifti

__all__ = [
    "REPORT_NAME",
    "decimate_mesh",
    "write_report",
    "MARKER_NAME",
    "OutputFolder",
    "write_file_safely",
    "DEFAULT_VOLUME_TOLERANCE",
    "ITKSNAP_LABELS_NAME",
    "SLICER_COLOUR_TABLE_NAME",
    "colour_table_rows",
    "write_colour_tables",
    "MESH_FORMATS",
    "MESH_SPACE",
    "RAS_TO_LPS",
    "load_mesh_ras",
    "mesh_bytes",
    "mesh_space",
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
    "SUMMARY_FIELDS",
    "as_label_volume",
    "label_colour",
    "label_mesh",
    "label_projection",
    "overlay_projection",
    "overlay_radiograph",
    "MAX_OVERLAY_SIDE_PX",
    "project_label_volume",
    "quality_flag",
    "render_views",
    "to_ras",
    "vertebra_summary_rows",
    "write_label_volume_nifti",
    "write_meshes",
    "summary_row",
    "write_summary",
]
