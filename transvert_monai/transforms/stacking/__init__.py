"""Postprocessing at deployment: 3D placement of each vertebra and stacking into the spine label map."""

from __future__ import annotations

from transvert_monai.transforms.stacking.array import PlaceVertebrae, StackVertebrae
from transvert_monai.transforms.stacking.dictionary import PlaceVertebraed, StackVertebraed
from transvert_monai.transforms.stacking.functional import (
    Placement,
    VertebraPlacement,
    orthographic_centres,
    estimate_stack_bytes,
    place_vertebrae,
    stack_vertebrae,
    triangulate_centres,
)

__all__ = [
    "PlaceVertebrae",
    "PlaceVertebraed",
    "Placement",
    "StackVertebrae",
    "StackVertebraed",
    "VertebraPlacement",
    "orthographic_centres",
    "estimate_stack_bytes",
    "place_vertebrae",
    "stack_vertebrae",
    "triangulate_centres",
]
