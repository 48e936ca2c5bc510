"""The standing posture: vertebra poses, spinal alignment measures, CT fusion, known posture changes."""

from __future__ import annotations

from transvert_monai.posture.frames import (
    ANGLE_CONVENTION,
    FRAME_METHOD,
    VertebraPose,
    angles_to_rotation,
    poses_from_label_map,
    poses_from_reconstruction,
    resample_occupancy,
    rotation_angle_deg,
    rotation_to_angles,
    vertebra_pose,
)

__all__ = [
    "ANGLE_CONVENTION",
    "FRAME_METHOD",
    "VertebraPose",
    "angles_to_rotation",
    "poses_from_label_map",
    "poses_from_reconstruction",
    "resample_occupancy",
    "rotation_angle_deg",
    "rotation_to_angles",
    "vertebra_pose",
]
