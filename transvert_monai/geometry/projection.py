"""Cone-beam projection geometry: one value object serves rendering, annotation, cropping, triangulation, stacking.

A view is a point source and a flat detector. Its pose is the isocentre (world mm) and a proper
rotation whose columns are, in world (RAS) coordinates:

* ``u`` — the detector's column axis (the direction in which the column index grows),
* ``v`` — the detector's row axis (the direction in which the row index grows),
* ``w`` — the beam direction, from the source through the isocentre to the detector centre,

with ``u × v = w``. The source sits at ``isocentre − source_to_isocentre_mm · w`` and the
detector centre at ``source + source_to_detector_mm · w``; the central ray hits the detector
centre. Pixel ``(r, c)`` of an ``H × W`` detector is centred at
``((c − (W − 1)/2) · spacing_col, (r − (H − 1)/2) · spacing_row)`` mm from it along ``(u, v)``.

Images are beam's-eye views (seen from the source) with superior at row 0:

=========  ===================  ==========================  ==============================
view       rays (``w``)         columns (``u``) run          rows (``v``) run
=========  ===================  ==========================  ==============================
lateral    right → left (−x)    posterior → anterior (+y)   superior → inferior (−z)
AP         anterior → posterior right → left (−x)           superior → inferior (−z)
           (−y)
=========  ===================  ==========================  ==============================

so a left-lateral radiograph shows the face on the right, and an AP radiograph shows the patient's
right on the viewer's left, as radiographs are read.

The *view-aligned frame* (:func:`view_aligned_frame`) is the 3D grid on which a vertebra's target
and the network's output live: index axis 0 follows the lateral rows (superior → inferior),
axis 1 the lateral columns (posterior → anterior) and axis 2 the AP columns (right → left).
The lateral image therefore sees axes (0, 1) and is blind along axis 2; the AP image sees axes
(0, 2) and is blind along axis 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import torch


__all__ = [
    "View",
    "ProjectionGeometry",
    "lateral_view",
    "ap_view",
    "biplanar_views",
    "rotation_matrix",
]


class View(str, Enum):
    """The two radiographic views of TransVert."""

    LATERAL = "lateral"
    AP = "ap"


# Nominal view axes as a 3×3 matrix written row by row; its columns are u, v, w in world RAS.
_NOMINAL_AXES = {
    View.LATERAL: ((0.0, 0.0, -1.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    View.AP: ((-1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
}


def rotation_matrix(angles_rad: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Rotation about the world x, then y, then z axis (right-hand rule), ``R = Rz @ Ry @ Rx``."""
    ax, ay, az = (float(a) for a in torch.as_tensor(angles_rad, dtype=torch.float64).reshape(3))
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    return rz @ ry @ rx


def _pair(value: float | Sequence[float], name: str, cast: type = float) -> tuple:
    seq = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(seq) != 2:
        raise ValueError(f"`{name}` must be one number or (rows, cols), got {value!r}.")
    return tuple(cast(s) for s in seq)


@dataclass(frozen=True)
class ProjectionGeometry:
    """A validated cone-beam view (see the module docstring for the conventions).

    Args:
        isocentre_mm: world (RAS) position of the isocentre, the point the central ray passes through.
        axes: 3×3 proper rotation, columns ``(u, v, w)``: detector column axis, detector row axis,
            beam direction, in world coordinates.
        source_to_detector_mm: distance from the focal spot to the detector plane (default 1800).
        source_to_isocentre_mm: distance from the focal spot to the isocentre (default 1500).
        detector_size_px: detector (rows, cols).
        detector_spacing_mm: pixel spacing (rows, cols) in mm, or one number for square pixels.

    Raises:
        ValueError: non-positive or non-finite distances, spacing or size; a source-to-isocentre
            distance not shorter than the source-to-detector distance; axes that are not a proper rotation.

    Example:
        >>> g = lateral_view(isocentre_mm=(0, 0, 0), detector_size_px=(256, 256), detector_spacing_mm=2.0)
        >>> g.project(torch.tensor([[0.0, 0.0, 0.0]]))  # the isocentre lands on the detector centre
        tensor([[127.5000, 127.5000]], dtype=torch.float64)
    """

    isocentre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axes: tuple[tuple[float, float, float], ...] = _NOMINAL_AXES[View.LATERAL]
    source_to_detector_mm: float = 1800.0
    source_to_isocentre_mm: float = 1500.0
    detector_size_px: tuple[int, int] = (256, 256)
    detector_spacing_mm: tuple[float, float] = (2.0, 2.0)
    view: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        iso = tuple(float(x) for x in torch.as_tensor(self.isocentre_mm, dtype=torch.float64).reshape(-1).tolist())
        if len(iso) != 3 or not all(math.isfinite(x) for x in iso):
            raise ValueError(f"`isocentre_mm` must be three finite numbers, got {self.isocentre_mm!r}.")
        axes = torch.as_tensor(self.axes, dtype=torch.float64)
        if axes.shape != (3, 3) or not torch.isfinite(axes).all():
            raise ValueError(f"`axes` must be a finite 3×3 rotation, got {self.axes!r}.")
        if not torch.allclose(axes.T @ axes, torch.eye(3, dtype=torch.float64), atol=1e-6) or torch.linalg.det(axes) < 0:
            raise ValueError("`axes` must be a proper rotation (orthonormal columns u, v, w with u × v = w).")
        for name in ("source_to_detector_mm", "source_to_isocentre_mm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a positive distance in mm, got {value!r}.")
        if self.source_to_isocentre_mm >= self.source_to_detector_mm:
            raise ValueError(
                f"`source_to_isocentre_mm` ({self.source_to_isocentre_mm}) must be shorter than "
                f"`source_to_detector_mm` ({self.source_to_detector_mm}): the patient stands between source and detector."
            )
        size = _pair(self.detector_size_px, "detector_size_px", cast=lambda s: s)
        if not all(float(s).is_integer() and s > 0 for s in size):
            raise ValueError(f"`detector_size_px` must be positive whole numbers (rows, cols), got {self.detector_size_px!r}.")
        spacing = _pair(self.detector_spacing_mm, "detector_spacing_mm")
        if not all(math.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"`detector_spacing_mm` must be positive, got {self.detector_spacing_mm!r}.")
        object.__setattr__(self, "isocentre_mm", iso)
        object.__setattr__(self, "axes", tuple(tuple(float(x) for x in row) for row in axes.tolist()))
        object.__setattr__(self, "detector_size_px", tuple(int(s) for s in size))
        object.__setattr__(self, "detector_spacing_mm", spacing)
        object.__setattr__(self, "source_to_detector_mm", float(self.source_to_detector_mm))
        object.__setattr__(self, "source_to_isocentre_mm", float(self.source_to_isocentre_mm))

    # ------------------------------------------------------------------ derived quantities
    @property
    def rotation(self) -> torch.Tensor:
        """(3, 3) float64, columns ``(u, v, w)``."""
        return torch.tensor(self.axes, dtype=torch.float64)

    @property
    def beam_direction(self) -> torch.Tensor:
        """Unit vector ``w`` from the source through the isocentre."""
        return self.rotation[:, 2]

    @property
    def source_mm(self) -> torch.Tensor:
        """World position of the focal spot."""
        return torch.tensor(self.isocentre_mm, dtype=torch.float64) - self.source_to_isocentre_mm * self.beam_direction

    @property
    def detector_centre_mm(self) -> torch.Tensor:
        """World position of the detector centre (where the central ray hits)."""
        return self.source_mm + self.source_to_detector_mm * self.beam_direction

    @property
    def magnification(self) -> float:
        """Magnification of an object at the isocentre, ``SDD / SID``."""
        return self.source_to_detector_mm / self.source_to_isocentre_mm

    @property
    def principal_point_px(self) -> tuple[float, float]:
        """(row, col) of the detector centre."""
        h, w = self.detector_size_px
        return (h - 1) / 2.0, (w - 1) / 2.0

    def detector_affine(self) -> torch.Tensor:
        """4×4 affine mapping ``(row, col, 0)`` pixel indices to the pixel's world position on the detector.

        The third column is the beam direction (1 mm), so the affine is invertible and a DRR saved
        as NIfTI with it sits in the CT's world space.
        """
        rot = self.rotation
        r0, c0 = self.principal_point_px
        sr, sc = self.detector_spacing_mm
        a = torch.eye(4, dtype=torch.float64)
        a[:3, 0] = rot[:, 1] * sr
        a[:3, 1] = rot[:, 0] * sc
        a[:3, 2] = rot[:, 2]
        a[:3, 3] = self.detector_centre_mm - a[:3, 0] * r0 - a[:3, 1] * c0
        return a

    # ------------------------------------------------------------------ maps
    def pixel_to_world(self, rc: torch.Tensor) -> torch.Tensor:
        """World position of detector pixels ``(..., 2)`` given as (row, col) → ``(..., 3)``."""
        rc = torch.as_tensor(rc, dtype=torch.float64)
        a = self.detector_affine().to(rc.device)
        return rc[..., 0:1] * a[:3, 0] + rc[..., 1:2] * a[:3, 1] + a[:3, 3]

    def rays(self, rc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays through detector pixels ``(..., 2)``: the source ``(3,)`` and unit directions ``(..., 3)``."""
        target = self.pixel_to_world(rc)
        source = self.source_mm.to(target.device)
        direction = target - source
        return source, direction / torch.linalg.norm(direction, dim=-1, keepdim=True)

    def project(self, points_mm: torch.Tensor, return_depth: bool = False) -> Any:
        """Project world points ``(..., 3)`` to detector (row, col) ``(..., 2)``, float64.

        Args:
            points_mm: world (RAS) positions in mm.
            return_depth: also return the distance along the beam from the source (mm).

        Raises:
            ValueError: if a point lies at or behind the source plane (it has no projection).
        """
        p = torch.as_tensor(points_mm, dtype=torch.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"`points_mm` must end in 3 coordinates (x, y, z), got shape {tuple(p.shape)}.")
        rot = self.rotation.to(p.device)
        local = (p - self.source_mm.to(p.device)) @ rot  # (..., 3): along u, v, w
        depth = local[..., 2]
        if (depth <= 0).any():
            raise ValueError("a point lies at or behind the source plane and cannot be projected onto the detector.")
        scale = self.source_to_detector_mm / depth
        r0, c0 = self.principal_point_px
        sr, sc = self.detector_spacing_mm
        rc = torch.stack((local[..., 1] * scale / sr + r0, local[..., 0] * scale / sc + c0), dim=-1)
        return (rc, depth) if return_depth else rc

    # ------------------------------------------------------------------ variants
    def with_pose(
        self,
        rotation_rad: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
        translation_mm: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
        centre_mm: Sequence[float] | torch.Tensor | None = None,
    ) -> ProjectionGeometry:
        """Move the C-arm: rotate source and detector about ``centre_mm`` (default: the isocentre), then translate.

        Rotations are about the world x, y, z axes (see :func:`rotation_matrix`); equivalently the
        patient is seen rotated by the inverse rotation.
        """
        rot = rotation_matrix(rotation_rad)
        iso = torch.tensor(self.isocentre_mm, dtype=torch.float64)
        centre = iso if centre_mm is None else torch.as_tensor(centre_mm, dtype=torch.float64)
        new_iso = centre + rot @ (iso - centre) + torch.as_tensor(translation_mm, dtype=torch.float64)
        return replace(self, isocentre_mm=tuple(new_iso.tolist()), axes=tuple(map(tuple, (rot @ self.rotation).tolist())))

    def with_detector(
        self, detector_size_px: Sequence[int] | None = None, detector_spacing_mm: float | Sequence[float] | None = None
    ) -> ProjectionGeometry:
        """Same pose and distances, another detector size or pixel spacing."""
        return replace(
            self,
            detector_size_px=self.detector_size_px if detector_size_px is None else tuple(detector_size_px),
            detector_spacing_mm=self.detector_spacing_mm if detector_spacing_mm is None else detector_spacing_mm,
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form for ``MetaTensor.meta`` and JSON side-cars."""
        return {
            "view": self.view,
            "isocentre_mm": list(self.isocentre_mm),
            "axes": [list(row) for row in self.axes],
            "source_to_detector_mm": self.source_to_detector_mm,
            "source_to_isocentre_mm": self.source_to_isocentre_mm,
            "detector_size_px": list(self.detector_size_px),
            "detector_spacing_mm": list(self.detector_spacing_mm),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProjectionGeometry:
        """Inverse of :meth:`to_dict`.

        Raises:
            KeyError: if an entry is missing.
        """
        names = ("isocentre_mm", "axes", "source_to_detector_mm", "source_to_isocentre_mm")
        missing = [n for n in names + ("detector_size_px", "detector_spacing_mm") if n not in data]
        if missing:
            raise KeyError(f"projection geometry is missing {missing}; expected the keys of ProjectionGeometry.to_dict().")
        return cls(
            isocentre_mm=tuple(data["isocentre_mm"]),
            axes=tuple(map(tuple, data["axes"])),
            source_to_detector_mm=float(data["source_to_detector_mm"]),
            source_to_isocentre_mm=float(data["source_to_isocentre_mm"]),
            detector_size_px=tuple(data["detector_size_px"]),
            detector_spacing_mm=tuple(data["detector_spacing_mm"]),
            view=str(data.get("view", "custom")),
        )


def _preset(view: View, **kwargs: Any) -> ProjectionGeometry:
    kwargs.setdefault("isocentre_mm", (0.0, 0.0, 0.0))
    return ProjectionGeometry(axes=_NOMINAL_AXES[view], view=view.value, **kwargs)


def lateral_view(**kwargs: Any) -> ProjectionGeometry:
    """Left-lateral view (rays right → left); keyword arguments as :class:`ProjectionGeometry`."""
    return _preset(View.LATERAL, **kwargs)


def ap_view(**kwargs: Any) -> ProjectionGeometry:
    """Anterior–posterior view (rays anterior → posterior); keyword arguments as :class:`ProjectionGeometry`."""
    return _preset(View.AP, **kwargs)


def biplanar_views(
    isocentre_mm: Sequence[float] | torch.Tensor,
    rotation_rad: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
    translation_mm: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
    view_angle_rad: float = 0.0,
    **kwargs: Any,
) -> tuple[ProjectionGeometry, ProjectionGeometry]:
    """The lateral and AP views of one acquisition, optionally with a C-arm pose error.

    Both views share the isocentre, the rotation (about the isocentre, see :func:`rotation_matrix`)
    and the translation; the AP view is further turned by ``view_angle_rad`` about the superior
    axis, so the two views meet at ``π/2 + view_angle_rad``.

    Args:
        isocentre_mm: world (RAS) isocentre of both views.
        rotation_rad: C-arm rotation about the world x, y, z axes.
        translation_mm: C-arm translation in world mm.
        view_angle_rad: deviation of the angle between the views from 90°.
        kwargs: distances and detector of both views (see :class:`ProjectionGeometry`).
    """
    iso = tuple(float(x) for x in torch.as_tensor(isocentre_mm, dtype=torch.float64).reshape(3))
    lat = lateral_view(isocentre_mm=iso, **kwargs).with_pose(rotation_rad, translation_mm)
    ap = ap_view(isocentre_mm=iso, **kwargs).with_pose((0.0, 0.0, float(view_angle_rad)))
    return lat, ap.with_pose(rotation_rad, translation_mm)
