"""Surface meshes of the spine: one per vertebra and one of the whole spine, in world millimetres.

Each surface is the marching-cubes iso-surface at 0.5 of the vertebra's mask padded with background
(:func:`transvert_monai.metrics.mask_surface_mesh`, scikit-image), mapped through the label map's
affine into world (RAS) mm, faces wound so that normals point outwards (:func:`label_mesh`).
A mask of one connected component gives a closed (watertight) surface.

**Files are in LPS.** :func:`write_meshes` writes the vertices in LPS millimetres (x and y of the RAS
world negated: a rotation by 180° about the superior axis, so the winding and the outward normals
stay as they are) and declares it in the file, the way 3D Slicer writes and reads meshes (Slicer ≥ 4.11
reads STL/PLY/OBJ as LPS unless the header says ``SPACE=RAS``): ``SPACE=LPS`` opens the 80-byte binary
STL header, a ``comment SPACE=LPS`` line the PLY header, a ``# SPACE=LPS`` line the OBJ file. The
meshes therefore overlay ``spine.nii.gz`` in Slicer and ITK-SNAP without a flip (NIfTI readers map the
RAS affine to their own LPS frame). :func:`mesh_space` reads the declaration back;
:func:`load_mesh_ras` loads a file into RAS whichever space it declares (none: RAS, as files of
transvert_monai ≤ 0.3.0 were). Files are ``<name>.<format>`` (``L1.stl``, ``spine.ply``), written
atomically after every mesh is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import label_to_name, level_order
from transvert_monai.metrics.surface import mask_surface_mesh
from transvert_monai.outputs.volume import as_label_volume

__all__ = [
    "MESH_FORMATS",
    "MESH_SPACE",
    "RAS_TO_LPS",
    "label_mesh",
    "load_mesh_ras",
    "mesh_bytes",
    "mesh_space",
    "write_meshes",
]

#: Formats written by :func:`write_meshes`.
MESH_FORMATS = ("stl", "ply", "obj")
#: The coordinate system of the mesh files (3D Slicer's default for meshes, DICOM's patient frame).
MESH_SPACE = "LPS"
#: RAS ↔ LPS (its own inverse): x and y negated, a proper rotation (determinant +1).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SPACE = re.compile(rb"SPACE=(RAS|LPS)")
_HEADER_BYTES = 1024  # where a SPACE declaration may stand: the STL header, the PLY header, the OBJ's first lines


def label_mesh(mask: np.ndarray, affine: np.ndarray):  # noqa: ANN201 - trimesh.Trimesh (optional dependency)
    """Watertight-where-possible surface of a binary (X, Y, Z) mask in world mm, normals outwards.

    Raises:
        ImportError: trimesh is not installed.
        ValueError: an empty mask.
    """
    try:
        import trimesh
    except ImportError as err:
        raise ImportError("writing meshes needs trimesh: pip install 'transvert_monai[mesh]'.") from err
    verts, faces = mask_surface_mesh(mask, 1.0)  # voxel index units
    world = verts @ affine[:3, :3].T + affine[:3, 3]
    mesh = trimesh.Trimesh(vertices=world, faces=faces, process=True)
    if mesh.is_watertight and mesh.volume < 0:  # marching-cubes winding, or a mirroring affine
        mesh.invert()
    return mesh


def mesh_bytes(mesh: object, file_type: str, space: str = MESH_SPACE) -> bytes:
    """The file of ``mesh`` (vertices already in ``space``) with ``SPACE=<space>`` declared in its header.

    Args:
        mesh: a ``trimesh.Trimesh``.
        file_type: ``"stl"`` (binary), ``"ply"`` (binary) or ``"obj"``.
        space: ``"LPS"`` or ``"RAS"``.

    Raises:
        ValueError: another file type or space.
    """
    if space not in ("LPS", "RAS"):
        raise ValueError(f"`space` must be 'LPS' or 'RAS', got {space!r}.")
    tag = f"SPACE={space}".encode()
    data = mesh.export(file_type=file_type)  # type: ignore[attr-defined]
    data = data.encode() if isinstance(data, str) else bytes(data)
    if file_type == "stl":  # binary STL: 80-byte header (never starting with "solid", the ASCII marker)
        return (tag + b" transvert_monai mesh, mm").ljust(80, b" ")[:80] + data[80:]
    if file_type == "ply":  # after "ply\nformat ...\n"
        first, second, rest = data.split(b"\n", 2)
        return b"\n".join((first, second, b"comment " + tag, rest))
    if file_type == "obj":
        return b"# " + tag + b"\n" + data
    raise ValueError(f"mesh file types are {list(MESH_FORMATS)}, got {file_type!r}.")


def mesh_space(path: str | os.PathLike) -> str | None:
    """``"LPS"`` or ``"RAS"`` as declared in a mesh file's header (``SPACE=...``), None if it declares none."""
    with open(path, "rb") as f:
        found = _SPACE.search(f.read(_HEADER_BYTES))
    return found.group(1).decode() if found else None


def load_mesh_ras(path: str | os.PathLike):  # noqa: ANN201 - trimesh.Trimesh (optional dependency)
    """A mesh file in RAS millimetres: LPS-declared files (as :func:`write_meshes` writes) are turned back.

    A file that declares no space is taken as RAS (the files of transvert_monai ≤ 0.3.0).

    Raises:
        ImportError: trimesh is not installed.
    """
    import trimesh

    mesh = trimesh.load(str(path), force="mesh")
    if mesh_space(path) == "LPS":
        mesh.apply_transform(RAS_TO_LPS)  # its own inverse; a rotation, so the winding stays outward
    return mesh


def write_meshes(
    label_volume: object,
    affine: object,
    folder: str | os.PathLike,
    formats: Sequence[str] = ("stl", "ply"),
) -> dict[str, list[Path]]:
    """Write one mesh per vertebra and one of the spine (all vertebrae together), in LPS mm, ``SPACE=LPS`` declared.

    Args:
        label_volume: (X, Y, Z) or (1, X, Y, Z) VerSe indices.
        affine: 4×4 voxel → world map (None: the MetaTensor's).
        folder: output folder (created if needed).
        formats: any of ``"stl"``, ``"ply"``, ``"obj"``.

    Returns:
        ``{name: [paths]}`` with the vertebra names and ``"spine"``.

    Raises:
        ValueError: an unknown format, an empty label map, see :func:`~transvert_monai.outputs.volume.as_label_volume`.
    """
    formats = [str(f).lower().lstrip(".") for f in formats]
    unknown = [f for f in formats if f not in MESH_FORMATS]
    if unknown or not formats:
        raise ValueError(f"mesh formats must be some of {list(MESH_FORMATS)}, got {list(formats)}.")
    data, aff = as_label_volume(label_volume, affine)
    labels = sorted((int(v) for v in np.unique(data) if v != 0), key=level_order)
    if not labels:
        raise ValueError("the label map is empty (no vertebra), so there is no mesh to write.")
    # build every mesh before writing any file
    meshes = {label_to_name(v): label_mesh(data == v, aff) for v in labels}
    meshes["spine"] = label_mesh(data > 0, aff)
    for mesh in meshes.values():
        mesh.apply_transform(RAS_TO_LPS)  # the files' space, see the module docstring
    folder = Path(folder)
    written: dict[str, list[Path]] = {}
    for name, mesh in meshes.items():
        written[name] = [
            atomic_write(folder / f"{name}.{fmt}", lambda tmp, m=mesh, f=fmt: tmp.write_bytes(mesh_bytes(m, f)))
            for fmt in formats
        ]
    return written
