"""Surface meshes of the spine: one per vertebra and one of the whole spine, in world millimetres.

Each surface is the marching-cubes iso-surface at 0.5 of the vertebra's mask padded with background
(:func:`transvert_monai.metrics.mask_surface_mesh`, scikit-image), mapped through the label map's
affine into world (RAS) mm, faces wound so that normals point outwards, and written with trimesh.
A mask of one connected component gives a closed (watertight) surface. Files are
``<name>.<format>`` (``L1.stl``, ``spine.ply``), written atomically after every mesh is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import label_to_name, level_order
from transvert_monai.metrics.surface import mask_surface_mesh
from transvert_monai.outputs.volume import as_label_volume

__all__ = ["MESH_FORMATS", "label_mesh", "write_meshes"]

#: Formats written by :func:`write_meshes`.
MESH_FORMATS = ("stl", "ply", "obj")


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


def write_meshes(
    label_volume: object,
    affine: object,
    folder: str | os.PathLike,
    formats: Sequence[str] = ("stl", "ply"),
) -> dict[str, list[Path]]:
    """Write one mesh per vertebra and one of the spine (all vertebrae together).

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
    folder = Path(folder)
    written: dict[str, list[Path]] = {}
    for name, mesh in meshes.items():
        written[name] = [
            atomic_write(folder / f"{name}.{fmt}", lambda tmp, m=mesh, f=fmt: m.export(str(tmp), file_type=f))
            for fmt in formats
        ]
    return written
