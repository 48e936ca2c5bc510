"""Geometry of TransVert: the one place where voxels, world millimetres and detector pixels meet.

Pure torch, no MONAI types. Everything that renders, annotates, crops, triangulates or stacks goes
through :class:`ProjectionGeometry` and the affine helpers here.

Glossary:
    AP: anterior–posterior radiograph; X-rays enter the patient's front and leave the back.
    LAT: lateral radiograph; here left-lateral, X-rays run from the patient's right to left.
    DRR: digitally reconstructed radiograph, the line integral of attenuation along each ray
        through a CT volume (Staub & Murphy, Med. Phys. 40(1), 2013).
    VOI: vertebra of interest, marked on each view by an annotation image (disc, body or vertebra).
    isocentre: the point the central ray of a view passes through; default the CT grid centre.
    SDD / SID: source-to-detector and source-to-isocentre distances (``source_to_detector_mm``,
        ``source_to_isocentre_mm``), 1800 mm and 1500 mm by default (paper §3.1).
    view-aligned frame: the 3D grid of a vertebra's target and of the network output; axis 0 runs
        along the lateral rows (superior → inferior), axis 1 along the lateral columns
        (posterior → anterior), axis 2 along the AP columns (right → left).
    world: millimetres in the RAS physical space of ``MetaTensor.affine``.
    sampling grid: patch and target sizes, VOI annotation, target coding and the length one patch
        pixel spans at the vertebra (:class:`SamplingGrid`), saved with a model's weights.
"""

from __future__ import annotations

from transvert_monai.geometry.affine import (
    as_affine,
    box_corners_mm,
    frame_affine,
    grid_centre_mm,
    spacing_mm,
    voxel_to_world,
    world_to_voxel,
)
from transvert_monai.geometry.projection import (
    ProjectionGeometry,
    View,
    ap_view,
    biplanar_views,
    lateral_view,
    rotation_matrix,
)
from transvert_monai.geometry.sampling import SamplingGrid, TargetCoding, VOIMode, scale_true_patch_pixels
from transvert_monai.geometry.triangulation import triangulate, view_aligned_axes, view_aligned_frame

__all__ = [
    "ProjectionGeometry",
    "SamplingGrid",
    "TargetCoding",
    "VOIMode",
    "scale_true_patch_pixels",
    "View",
    "ap_view",
    "biplanar_views",
    "as_affine",
    "box_corners_mm",
    "frame_affine",
    "grid_centre_mm",
    "lateral_view",
    "rotation_matrix",
    "spacing_mm",
    "triangulate",
    "view_aligned_axes",
    "view_aligned_frame",
    "voxel_to_world",
    "world_to_voxel",
]
