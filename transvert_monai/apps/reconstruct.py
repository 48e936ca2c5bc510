"""From a lateral and an AP radiograph to a 3D standing spine: ``transvert-reconstruct`` and :class:`SpineReconstructor`.

Steps (paper §3.2, Fig. 4): read both radiographs with their geometry and the vertebrae's 2D
centroids; cut a patch and a VOI disc per vertebra and view at the working pixel spacing; run
TransVert on all vertebrae in batches; place every vertebra's 3D shape at its centre, triangulated
from its two centroids with the cone-beam geometry (or the paper's orthographic rule); stack the
shapes into one label map; write the label map, meshes, overlays on the radiographs, renderings
and ``summary.json``.

World coordinates of the outputs are the patient frame of the radiographs: millimetres, RAS axes,
origin at the isocentre of the two views (the point both central rays pass through).

Outputs are written safely (:mod:`transvert_monai.outputs.safety`): the output folder may not be or
contain an input; ``--overwrite`` replaces only a previous output of this command (marked by
``.transvert-output.json``); everything is written into a staging folder beside it, created before
the work, and moved into place at the end without replacing anything that appeared meanwhile, so a
failure never leaves a half-written output folder and never deletes anything else.

Exit codes (:mod:`transvert_monai.cli`): 0 done, 2 usage, 3 bad input, 4 output refused, 5 machine
(missing package, device, memory), 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "SpineReconstruction",
    "SpineReconstructor",
    "load_bundle_network",
    "load_weights",
    "read_weights",
    "weights_sampling_grid",
    "main",
    "entry_point",
]

logger = logging.getLogger(__name__)


@dataclass
class SpineReconstruction:
    """What :meth:`SpineReconstructor.reconstruct` computed (before anything is written)."""

    labels: list[int]
    shapes: torch.Tensor  #: (B, 1, S, S, S) foreground probability × VerSe index (binarised at half the index)
    vertebra_affines: torch.Tensor  #: (B, 4, 4) voxel → world of each shape's grid
    centres_mm: torch.Tensor  #: (B, 3) world centres
    residual_mm: torch.Tensor  #: (B,) triangulation residuals
    placement: str
    samples: Any  #: the RadiographSamples (images and geometries at the working spacing)
    input_checks: list = field(default_factory=list)  #: InputCheck findings carried into summary.json
    radiographs: tuple | None = None  #: the (lateral, AP) Radiographs as read, for the full-resolution overlays
    label_volume: torch.Tensor | None = None  #: (X, Y, Z) uint8 stacked spine
    volume_affine: torch.Tensor | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


def load_bundle_network(bundle_dir: str | os.PathLike, model_file: str | None = None, device: str = "cpu") -> torch.nn.Module:
    """The network of a bundle (``configs/inference.json``'s ``network_def``) with its weights, in eval mode.

    Weights are loaded with ``torch.load(weights_only=True)``: a checkpoint can hold only tensors. A
    plain state dict is read, and so are the ``"model"`` entry of a best-metric checkpoint and the
    ``"network"`` entry of a training checkpoint (``checkpoint_final.pt``).

    Raises:
        FileNotFoundError: no such bundle or weights file.
        UnreadableFileError: the inference config is not JSON, or the weights file is truncated, not a
            PyTorch checkpoint, or holds more than tensors.
        TransVertInputError: the config's ``network_def`` cannot be built (an unknown variant, bad widths).
        CheckpointMismatchError: the weights do not fit the network (another architecture or width);
            also a ``RuntimeError``.
    """
    from monai.bundle import ConfigParser

    from transvert_monai.errors import CheckpointMismatchError, TransVertInputError, UnreadableFileError

    bundle = Path(bundle_dir)
    config = bundle / "configs" / "inference.json"
    weights = Path(model_file) if model_file else bundle / "models" / "model.pt"
    for path, what in ((config, "inference config"), (weights, "weights")):
        if not path.is_file():
            raise FileNotFoundError(f"the bundle's {what} {path} does not exist; pass --bundle with a TransVert bundle folder.")
    parser = ConfigParser()
    try:
        parser.read_config(str(config))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise UnreadableFileError(f"the bundle's inference config {config} is not valid JSON: {err}.") from None
    parser["bundle_root"] = str(bundle)
    parser["model_path"] = str(weights)  # inference.json builds the network on the weights' own sampling grid
    try:
        network = parser.get_parsed_content("network_def")
    except Exception as err:  # MONAI wraps the component's own error in a RuntimeError: report the innermost
        cause: BaseException = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (FileNotFoundError, UnreadableFileError, CheckpointMismatchError)):
            raise cause from None  # the weights' own problem (read for their sampling grid), named as such
        raise TransVertInputError(
            f"cannot build the network (`network_def`) of {config}: {str(cause).strip().rstrip('.')}; check its "
            "values (variant, channels, strides, target_size)."
        ) from err
    network = load_weights(network, weights, device, described_by=config).eval()
    network.transvert_model_info = _model_info(bundle, weights)
    return network


def _model_info(bundle: Path, weights: Path) -> dict[str, Any]:
    """Name and version of the bundle (its metadata) and the weights' path and SHA-256, for provenance."""
    import json

    info: dict[str, Any] = {"bundle": str(bundle.resolve())}
    try:
        meta = json.loads((bundle / "configs" / "metadata.json").read_text())
        info.update(name=meta.get("name"), version=meta.get("version"))
    except (OSError, ValueError, AttributeError):
        info.update(name=None, version=None)
    record = _file_record(weights)
    info.update(weights=record["path"], weights_sha256=record["sha256"])
    return info


def load_weights(
    network: torch.nn.Module, weights: str | os.PathLike, device: str | torch.device = "cpu", described_by: object = None
) -> torch.nn.Module:
    """Load a weights file into ``network`` (moved to ``device``) with ``torch.load(weights_only=True)``; return it.

    A plain state dict is read, and so are the ``"model"`` entry of a best-metric checkpoint and the
    ``"network"`` entry of a training checkpoint (``checkpoint_final.pt``). The bundle configs load
    ``initial_weights`` (training) and ``model_path`` (inference) through this function.

    Raises:
        FileNotFoundError: no such file.
        UnreadableFileError: a truncated file, not a PyTorch checkpoint, or one holding more than tensors.
        CheckpointMismatchError: the weights do not fit the network (another architecture or width).
    """
    from transvert_monai.errors import CheckpointMismatchError

    weights = Path(weights)
    config = described_by if described_by is not None else type(network).__name__
    state = read_weights(weights)
    try:
        network.load_state_dict(state)
    except CheckpointMismatchError as err:  # the network's own check (sampling grid)
        raise CheckpointMismatchError(f"the weights {weights} do not fit the network of {config}: {err}") from None
    except (RuntimeError, TypeError, AttributeError) as err:
        raise CheckpointMismatchError(
            f"the weights {weights} do not fit the network of {config}: {_state_dict_mismatch(network, state, err)}; "
            "were they trained with another variant or `channels`/`strides`? Use the config they were trained with."
        ) from None
    return network.to(device)


def _state_dict_mismatch(network: torch.nn.Module, state: Mapping[str, Any], err: BaseException) -> str:
    """One line saying how ``state`` differs from ``network``'s parameters (counts and the first example)."""
    own = network.state_dict()
    shapes = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and isinstance(own[k], torch.Tensor) and v.shape != own[k].shape
    ]
    missing = [k for k in own if k not in state and not k.endswith("_extra_state")]
    unexpected = [k for k in state if k not in own and not k.endswith("_extra_state")]
    parts = []
    if shapes:
        k, a, b = shapes[0]
        parts.append(f"{len(shapes)} tensors differ in shape (e.g. {k}: {list(a)} in the file, {list(b)} in the network)")
    if missing:
        parts.append(f"{len(missing)} network tensors are not in the file (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} file tensors are not in the network (e.g. {unexpected[0]})")
    return "; ".join(parts) or str(err).splitlines()[0][:300]


def read_weights(weights: str | os.PathLike) -> dict[str, Any]:
    """The state dict in a weights file, read with ``torch.load(weights_only=True)``.

    A plain state dict is read, and so are the ``"model"`` entry of a best-metric checkpoint and the
    ``"network"`` entry of a training checkpoint (``checkpoint_final.pt``).

    Raises:
        FileNotFoundError: no such file.
        UnreadableFileError: a truncated file, not a PyTorch checkpoint, or one holding more than tensors.
        CheckpointMismatchError: the file holds no state dict.
    """
    from transvert_monai.errors import CheckpointMismatchError
    from transvert_monai.io.checkpoint import load_plain_checkpoint

    weights = Path(weights)
    state = load_plain_checkpoint(weights, "weights file", "train the bundle first or give another file")
    if isinstance(state, dict):
        state = next((state[k] for k in ("model", "network") if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict):
        raise CheckpointMismatchError(
            f"the weights file {weights} holds a {type(state).__name__}, not a state dict "
            "({parameter name: tensor}); save network.state_dict()."
        )
    return state


def weights_sampling_grid(weights: str | os.PathLike) -> Any:
    """The :class:`~transvert_monai.geometry.SamplingGrid` a weights file was trained with.

    ``inference.json`` builds its network with it, so a model always runs on the grid it learnt.

    Raises:
        FileNotFoundError, UnreadableFileError: see :func:`read_weights`.
        CheckpointMismatchError: the weights carry no (readable) sampling grid.
    """
    from transvert_monai.errors import CheckpointMismatchError
    from transvert_monai.geometry import SamplingGrid

    extra = read_weights(weights).get("_extra_state")
    if not isinstance(extra, dict) or "sampling_grid" not in extra:
        raise CheckpointMismatchError(
            f"the weights {weights} carry no sampling grid: they predate version 0.3 (scale-true patches, occupancy "
            "targets); retrain them with this version's train.json."
        )
    try:
        return SamplingGrid.from_dict(extra["sampling_grid"])
    except (TypeError, ValueError) as err:
        raise CheckpointMismatchError(f"the weights {weights} carry an unreadable sampling grid: {err}") from None


def channels_last_3d(network: torch.nn.Module) -> torch.nn.Module:
    """Store ``network``'s 5D (3D convolution) weights channels-last, in place; return it.

    The outputs are unchanged (up to float rounding); oneDNN (CPU) and cuDNN then pick their
    channels-last 3D kernels, which for TransVert's decoder at 64³ are ~20 % faster on 2 CPU cores.
    """
    for p in network.parameters():
        if p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return network


class SpineReconstructor:
    """Reconstruct a spine from a radiograph pair with a trained TransVert.

    The patches, the output grid and the target coding come from the network's own
    :class:`~transvert_monai.geometry.SamplingGrid` (``network.sampling_grid``, saved with its
    weights); the quality flags use the volume ranges of its training vertebrae
    (``network.volume_ranges_ml``).

    Args:
        network: the trained network (eval mode is set here).
        placement: ``"cone_beam"`` (triangulation) or ``"orthographic"`` (the paper's rule).
        stack: also stack the vertebrae into one label map (``stacking.json`` sets it).
        stack_spacing_mm: voxel size of the stacked label map (default: the grid's target spacing,
            the network's own resolution; a finer grid interpolates the shapes, it adds no detail).
        batch_size: vertebrae per forward pass.
        device: where the network runs.
        mesh_formats: mesh files written per vertebra and for the spine (needs ``trimesh``, checked here).
        model_info: provenance of the weights (``{"name", "version", "weights", "weights_sha256"}``), written to
            ``summary.json``; :func:`load_bundle_network` attaches it to the network it returns.
        ct, ct_mask: the patient's supine CT and its vertebra mask (paths or MetaTensors): each CT vertebra is
            then rigidly placed in the standing posture (:func:`transvert_monai.posture.fusion.fuse_ct`), giving
            ``standing_ct_labels.nii.gz``, ``standing_ct_meshes/`` and ``ct_transforms.json``.
        ct_mask_format: ``"verse"`` (VerSe indices) or ``"totalsegmentator"`` (a v2 ``total`` multi-label file).
        ct_radiograph_fit: also turn each placed CT vertebra to match both radiographs (2D/3D, gradient
            correlation; :mod:`transvert_monai.posture.radiograph_fit`). Off by default: see its measured effect
            and limits in the bundle docs; it costs seconds per vertebra.
        inferer: runs the network over a study's patches (``inferer(patches, network, levels)``; default
            :class:`~transvert_monai.inferers.VertebraInferer` with ``batch_size``), the bundle's ``inferer``.

    Raises:
        ValueError: a bad placement, spacing or batch size.
        EnvironmentProblemError: a device this machine does not have, or ``trimesh`` missing for the meshes.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        placement: str = "cone_beam",
        stack: bool = True,
        stack_spacing_mm: float | None = None,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        mesh_formats: Sequence[str] = ("stl", "ply"),
        model_info: Mapping[str, Any] | None = None,
        inferer: Any = None,
        ct: Any = None,
        ct_mask: Any = None,
        ct_mask_format: str = "verse",
        ct_radiograph_fit: bool = False,
    ) -> None:
        from monai.utils import look_up_option

        from transvert_monai.geometry import SamplingGrid
        from transvert_monai.transforms.stacking import Placement

        self.grid: SamplingGrid = getattr(network, "sampling_grid", None) or SamplingGrid()
        stack_spacing_mm = self.grid.target_spacing_mm if stack_spacing_mm is None else stack_spacing_mm
        self.placement = look_up_option(placement, Placement).value
        if not stack_spacing_mm > 0:
            raise ValueError(f"`stack_spacing_mm` must be positive, got {stack_spacing_mm!r}.")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive whole number, got {batch_size!r}.")
        from transvert_monai.resources import require_module, resolve_device

        self.device = resolve_device(device)
        self.stack, self.stack_spacing_mm = bool(stack), float(stack_spacing_mm)
        self.batch_size, self.mesh_formats = int(batch_size), tuple(mesh_formats)
        if self.stack and self.mesh_formats:
            require_module("trimesh", "writing the meshes (STL/PLY)", "trimesh>=4.0")
        self.network = channels_last_3d(network.to(self.device).eval())
        self.model_info = dict(model_info if model_info is not None else getattr(network, "transvert_model_info", {}))
        from transvert_monai.inferers import VertebraInferer

        self.inferer = VertebraInferer(self.batch_size) if inferer is None else inferer  # inference.json's `inferer`
        self._input_files: dict[str, str] = {}
        if (ct is None) != (ct_mask is None):
            raise ValueError("give both the CT and its vertebra mask (--ct and --ct-mask), or neither.")
        self.ct, self.ct_mask, self.ct_mask_format = ct, ct_mask, ct_mask_format
        self.ct_radiograph_fit = bool(ct_radiograph_fit)

    def reconstruct(self, lateral: Any, ap: Any, centroids: Any) -> SpineReconstruction:
        """Shapes, placement and (with ``stack``) the stacked label map of one radiograph pair.

        Args:
            lateral, ap: :class:`transvert_monai.io.Radiograph` (see ``read_radiograph``).
            centroids: :class:`transvert_monai.io.Centroids2D`, its JSON object or file.
        """
        from transvert_monai.resources import check_memory
        from transvert_monai.transforms.radiograph import extract_radiograph_samples
        from transvert_monai.transforms.stacking import estimate_stack_bytes, place_vertebrae, stack_vertebrae

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        samples = extract_radiograph_samples(lateral, ap, centroids, self.grid)
        timings["patches"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        placed = place_vertebrae(
            samples.lateral_geometry, samples.ap_geometry, samples.centroid_px, self.placement, self.grid.target_size,
            self.grid.target_spacing_mm,
        )  # fmt: skip
        if self.stack:  # refuse a map too large for this machine before the network runs
            check_memory(
                estimate_stack_bytes(placed.affines, [self.grid.target_size] * 3, self.stack_spacing_mm),
                f"stacking {len(samples.labels)} vertebrae at {self.stack_spacing_mm:g} mm",
                "use a larger --stack-spacing-mm (the network's own spacing is "
                f"{self.grid.target_spacing_mm:g} mm; a finer map adds no detail)",
            )
        timings["placement_and_stacking"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        levels = torch.tensor(samples.labels, dtype=torch.long)
        with torch.no_grad():
            outputs = self.inferer(samples.image.to(self.device), self.network, levels.to(self.device)).float().cpu()
        # probability × index: every later step binarises at half the index, whatever the coding
        shapes = self.grid.to_probability(outputs, levels) * levels.reshape(-1, 1, 1, 1, 1).float()
        timings["inference"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = SpineReconstruction(
            labels=list(samples.labels),
            shapes=shapes,
            vertebra_affines=placed.affines,
            centres_mm=placed.centres_mm,
            residual_mm=placed.residual_mm,
            placement=placed.placement,
            samples=samples,
            input_checks=list(samples.input_checks) + _views_agreement_checks(placed.residual_mm, samples.labels),
            radiographs=(lateral, ap) if hasattr(lateral, "pixels") and hasattr(ap, "pixels") else None,
            timings_s=timings,
        )
        if self.stack:
            result.label_volume, result.volume_affine = stack_vertebrae(
                shapes, samples.labels, placed.affines, spacing_mm=self.stack_spacing_mm
            )
        timings["placement_and_stacking"] += time.perf_counter() - t0
        return result

    def write(self, result: SpineReconstruction, folder: Path, title: str | None = None) -> dict[str, Any]:
        """Write the outputs of ``result`` into ``folder`` (which must exist); return the summary rows.

        With a stacked spine, ``report.html`` (:func:`~transvert_monai.outputs.write_report`) is written last;
        ``title`` is its heading (default: the folder's name).
        """
        import nibabel as nib
        import numpy as np

        from transvert_monai.data.atomic import atomic_write
        from transvert_monai.data.labels import label_to_name
        from transvert_monai.metrics import binarize_prediction
        from transvert_monai.outputs import (
            overlay_projection,
            overlay_radiograph,
            render_views,
            write_colour_tables,
            vertebra_summary_rows,
            write_label_volume_nifti,
            write_meshes,
            write_summary,
        )

        t0 = time.perf_counter()
        ranges = getattr(self.network, "volume_ranges_ml", None) or None  # saved with the weights
        fractions = result.samples.outside_fraction
        outside = (
            None if fractions is None else {v: float(f.max()) for v, f in zip(result.labels, fractions)}
        )
        shapes_dir = folder / "vertebrae"
        shapes_dir.mkdir()
        masks = binarize_prediction(result.shapes, result.labels)[:, 0].numpy()
        for label, mask, affine in zip(result.labels, masks, result.vertebra_affines):
            image = nib.Nifti1Image((mask * np.uint8(label)).astype(np.uint8), affine.numpy())
            image.header.set_xyzt_units("mm")
            atomic_write(shapes_dir / f"{label_to_name(label)}.nii.gz", lambda tmp, im=image: nib.save(im, str(tmp)))
        rows: list[dict[str, Any]] = []
        if result.label_volume is not None:
            write_label_volume_nifti(result.label_volume, result.volume_affine, folder / "spine.nii.gz")
            write_colour_tables(folder, result.labels)  # label names and colours for 3D Slicer and ITK-SNAP
            t_mesh = time.perf_counter()
            write_meshes(result.label_volume, result.volume_affine, folder / "meshes", formats=self.mesh_formats)
            result.timings_s["writing_meshes"] = time.perf_counter() - t_mesh
            s = result.samples
            for view, image, geometry, col in (
                ("lateral", s.lateral_image, s.lateral_geometry, 0),
                ("ap", s.ap_image, s.ap_geometry, 1),
            ):
                if result.radiographs is not None:  # the radiograph's own pixels (capped at 2048 px a side)
                    overlay_radiograph(
                        result.radiographs[col], folder / f"overlay_{view}.png", result.label_volume,
                        result.volume_affine, geometry=geometry, points_px=s.centroid_px[:, col],
                    )  # fmt: skip
                else:
                    overlay_projection(
                        image, geometry, result.label_volume, result.volume_affine, folder / f"overlay_{view}.png",
                        points_px=s.centroid_px[:, col],
                    )  # fmt: skip
            render_views(result.label_volume, result.volume_affine, folder / "views.png")
            rows = vertebra_summary_rows(
                result.label_volume, result.volume_affine, result.labels, result.centres_mm, result.residual_mm,
                volume_ranges_ml=ranges, patch_outside_fractions=outside,
            )  # fmt: skip
        else:  # no stacking: each shape's volume on its own grid
            from transvert_monai.outputs import largest_component_fraction, summary_row

            for v, mask, affine, c, r in zip(
                result.labels, masks, result.vertebra_affines, result.centres_mm, result.residual_mm
            ):
                voxels = int(mask.sum())
                volume_ml = voxels * abs(float(torch.linalg.det(affine[:3, :3]))) / 1000.0
                fraction = largest_component_fraction(mask)
                rows.append(
                    summary_row(
                        v, c.tolist(), float(r), voxels, volume_ml, volume_ranges_ml=ranges,
                        largest_component_fraction=fraction, patch_outside_fraction=None if outside is None else outside[v],
                    )
                )  # fmt: skip
        for check in result.input_checks:
            logger.warning("input check %s: %s", check.name, check.message)
        extra: dict[str, Any] = {"provenance": self.provenance()}
        if result.label_volume is not None and self.mesh_formats:
            extra["mesh_coordinate_system"] = "LPS (x, y of the RAS world negated; SPACE=LPS in each mesh file)"
        if result.label_volume is not None:
            extra.update(self._posture(result, folder, rows))
        write_summary(
            folder / "summary.json", rows, placement=result.placement, skipped=result.samples.missing,
            input_checks=result.input_checks, extra=extra,
        )  # fmt: skip
        if result.label_volume is not None:
            from transvert_monai.outputs import write_report

            write_report(folder, title=title or f"TransVert reconstruction: {folder.name}")
        result.timings_s["writing"] = time.perf_counter() - t0 - result.timings_s.get("writing_meshes", 0.0)
        return {"rows": rows}

    def _posture(self, result: SpineReconstruction, folder: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Poses (into ``rows``), alignment measures and, with a CT, the CT vertebrae placed upright (written here)."""
        from transvert_monai.data.labels import label_to_name
        from transvert_monai.posture.alignment import posture_summary
        from transvert_monai.posture.frames import poses_from_reconstruction

        from transvert_monai.errors import TransVertInputError

        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        try:
            poses = poses_from_reconstruction(result)
            posture = posture_summary(result, poses=poses)
        except TransVertInputError as err:  # shapes without a definable frame (an untrained model's blobs)
            logger.warning("no vertebra poses or alignment measures: %s", err)
            result.timings_s["posture"] = time.perf_counter() - t0
            return {"alignment": {"measures": [], "absent_reason": f"the poses could not be determined: {err}"}}
        for row in rows:
            if row["name"] in posture["poses"]:
                row["pose"] = posture["poses"][row["name"]]
        extra["alignment"] = posture["alignment"]
        if self.ct is not None:
            from transvert_monai.posture.fusion import fuse_ct, write_fusion_outputs

            fusion = fuse_ct(
                self.ct, self.ct_mask, result, mask_format=self.ct_mask_format, standing_poses=poses,
                radiograph_fit=self.ct_radiograph_fit,
            )  # fmt: skip
            write_fusion_outputs(fusion, folder, mesh_formats=self.mesh_formats or ("stl",))
            fused = posture_summary(fusion)
            extra["ct_fusion"] = {
                **{k: v for k, v in fusion.to_dict().items() if k != "vertebrae"},
                "files": ["standing_ct_labels.nii.gz", "standing_ct_meshes/", "ct_transforms.json"],
                "vertebrae": {
                    label_to_name(v): {**f.to_dict(), "pose": fused["poses"].get(label_to_name(v))}
                    for v, f in fusion.vertebrae.items()
                },
                "alignment": fused["alignment"],
            }
            for flag in fusion.flags:
                logger.warning("CT fusion: %s", flag)
        result.timings_s["posture"] = time.perf_counter() - t0
        return extra

    def provenance(self) -> dict[str, Any]:
        """What made the result: software and model versions, the weights' SHA-256, the input files' SHA-256."""
        import platform

        from transvert_monai import __version__

        return {
            "software": {"name": "transvert_monai", "version": __version__, "python": platform.python_version(),
                         "torch": torch.__version__},
            "model": dict(self.model_info),
            "sampling_grid": self.grid.to_dict(),
            "inputs": dict(self._input_files),
        }  # fmt: skip

    def run(
        self,
        lateral_path: str | os.PathLike,
        ap_path: str | os.PathLike,
        centroids_path: str | os.PathLike,
        output_dir: str | os.PathLike,
        overwrite: bool = False,
        lateral_sidecar: str | os.PathLike | None = None,
        ap_sidecar: str | os.PathLike | None = None,
        other_inputs: Sequence[str | os.PathLike] = (),
        dicom_sources: Any = "auto",
    ) -> SpineReconstruction:
        """Read, reconstruct and write into ``output_dir``; nothing is written there if any step fails.

        The output folder is checked before any work (see :mod:`transvert_monai.outputs.safety`): it may not be
        or contain an input (``other_inputs`` adds files such as the weights), and an existing non-empty folder
        is replaced only with ``overwrite`` and only if it is a previous output of ``transvert-reconstruct``.

        DICOM results (``dicom/``: a TID 1500 SR, Encapsulated STL meshes, Secondary Capture overlays, in the
        source study; :func:`transvert_monai.dicom.write_dicom_results`) are written when ``dicom_sources`` is a
        :class:`~transvert_monai.dicom.Study` or the (lateral, AP) DICOM files, and with ``"auto"`` (default)
        when both radiographs are DICOM files. ``None`` writes none.

        Raises:
            OutputRefusedError: the output folder is refused (see above), or something appeared there during
                the run (the finished result is then kept under the name the message gives).
            FileNotFoundError, TransVertInputError: unreadable, implausible or inconsistent inputs (see the readers).
            EnvironmentProblemError: not enough memory for the stacked map.
        """
        from transvert_monai.apps.workflow import COMMAND, _input_paths, run_studies
        from transvert_monai.outputs import OutputFolder

        study = {"id": Path(output_dir).name, "lateral": lateral_path, "ap": ap_path, "centroids": centroids_path,
                 "output": output_dir, "lateral_sidecar": lateral_sidecar, "ap_sidecar": ap_sidecar,
                 "dicom_study": dicom_sources}  # fmt: skip
        if dicom_sources is None:
            study["dicom_study"], dicom = None, False
        else:
            dicom = True
        # the output folder is checked before any work (write_study checks it again when it writes)
        OutputFolder(output_dir, COMMAND, overwrite=overwrite, inputs=[*_input_paths(study), *other_inputs])
        # the inference workflow of inference.json on this one study (transvert_monai.apps.workflow)
        writer = run_studies(self, [study], overwrite=overwrite, other_inputs=other_inputs, dicom=dicom)
        (record,) = writer.records
        if record["status"] != "ok":
            raise writer.errors[str(record["id"])]
        return writer.results[str(record["id"])]

def _dicom_sources(sources: Any, lateral_path: str | os.PathLike, ap_path: str | os.PathLike) -> Any:
    """What :meth:`SpineReconstructor.run` links its DICOM results to (None: no DICOM results)."""
    if isinstance(sources, str) and sources == "auto":
        from transvert_monai.io.formats import is_dicom_file

        both = is_dicom_file(Path(lateral_path)) and is_dicom_file(Path(ap_path))
        return (Path(lateral_path), Path(ap_path)) if both else None
    return sources


def _file_record(path: str | os.PathLike) -> dict[str, Any]:
    from transvert_monai.data.download import sha256_of

    return {"path": str(Path(path).resolve()), "sha256": sha256_of(Path(path))}


def _views_agreement_checks(residual_mm: torch.Tensor, labels: Sequence[int]) -> list:
    """``views_disagree`` when the median triangulation residual exceeds 5 mm: the two views do not show one spine
    in one geometry (swapped or mislabelled views, wrong distances or spacing)."""
    from transvert_monai.io.plausibility import InputCheck

    if not len(labels):
        return []
    median = float(torch.as_tensor(residual_mm, dtype=torch.float64).median())
    if median <= 5.0 and median == median:
        return []
    return [
        InputCheck(
            "views_disagree",
            f"the two views disagree about the vertebrae's 3D centres by {median:.1f} mm (median residual > 5 mm): "
            "check that the lateral and AP files, their pixel spacings and source distances are right.",
        )
    ]


def default_bundle() -> Path:
    """The bundle ``transvert-reconstruct`` uses without ``--bundle``: the one installed with the package
    (``transvert_monai/bundle``), else the source checkout's ``bundles/transvert``."""
    installed = Path(__file__).resolve().parents[1] / "bundle"
    if (installed / "configs" / "inference.json").is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "bundles" / "transvert"


def _parser() -> argparse.ArgumentParser:
    from transvert_monai.cli import add_version_argument

    parser = argparse.ArgumentParser(
        prog="transvert-reconstruct",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 done, 1 bug, 2 usage, 3 bad input, 4 output refused, 5 machine (package, device, memory).",
    )
    parser.add_argument("--lateral", default=None, help="lateral radiograph (DICOM, PNG/TIFF or NIfTI + .json side-car)")
    parser.add_argument("--ap", default=None, help="AP radiograph")
    parser.add_argument("--centroids", default=None, help="2D centroid JSON (label → (row, col) per view, file pixels); with --dicom-study default: the study's centroids.json")
    parser.add_argument("--dicom-study", default=None, help="a folder of DICOM files (PACS/DICOMweb export): its study's lateral and AP radiographs are found by ViewPosition (instead of --lateral/--ap); DICOM results go to <output>/dicom/")
    parser.add_argument("--study-uid", default=None, help="with --dicom-study: the StudyInstanceUID to use when the folder holds several")
    parser.add_argument("--lateral-sidecar", default=None, help="geometry side-car JSON of the lateral image (default: <image stem>.json beside a PNG/TIFF/NIfTI)")
    parser.add_argument("--ap-sidecar", default=None, help="geometry side-car JSON of the AP image")
    parser.add_argument("--bundle", default=None, help="TransVert bundle folder (default: the one installed with the package)")
    parser.add_argument("--model", default=None, help="weights file (default: <bundle>/models/model.pt)")
    parser.add_argument("--output", required=True, help="output folder (new or empty; --overwrite replaces a previous output of this command)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous output of transvert-reconstruct (never anything else)")
    parser.add_argument("--placement", choices=("cone_beam", "orthographic"), default="cone_beam")
    parser.add_argument("--stack-spacing-mm", type=float, default=None, help="voxel size of spine.nii.gz (default: the network's output spacing)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:<index> (default: cuda if available, else cpu)")
    parser.add_argument("--ct", default=None, help="the patient's supine CT: its vertebrae are placed in the standing posture (needs --ct-mask)")
    parser.add_argument("--ct-mask", default=None, help="vertebra mask of --ct on its grid (VerSe indices, or see --ct-mask-format)")
    parser.add_argument("--ct-radiograph-fit", action="store_true", help="with --ct: also turn each CT vertebra to match both radiographs (2D/3D; slower; see the bundle docs for its measured effect)")
    parser.add_argument("--ct-mask-format", choices=("verse", "totalsegmentator"), default="verse", help="labels of --ct-mask: VerSe indices or a TotalSegmentator v2 'total' multi-label file")
    add_version_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``transvert-reconstruct``; returns the exit code (see :mod:`transvert_monai.cli`)."""
    from transvert_monai.cli import run_command
    from transvert_monai.resources import resolve_device

    parser = _parser()
    args = parser.parse_args(argv)
    if args.dicom_study is None and (args.lateral is None or args.ap is None or args.centroids is None):
        parser.error("give --lateral, --ap and --centroids, or --dicom-study")
    if (args.ct is None) != (args.ct_mask is None):
        parser.error("--ct and --ct-mask go together")
    if args.ct_radiograph_fit and args.ct is None:
        parser.error("--ct-radiograph-fit needs --ct and --ct-mask")
    if args.dicom_study is not None and (args.lateral or args.ap):
        parser.error("--dicom-study finds the lateral and AP radiographs itself; leave out --lateral/--ap")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # it logs every attribute it copies at INFO

    def body() -> int:
        from transvert_monai.outputs import OutputFolder

        device = resolve_device(args.device)
        sources: Any = "auto"
        if args.dicom_study is not None:
            from transvert_monai.dicom import find_study

            study = find_study(args.dicom_study, study_uid=args.study_uid, centroids=args.centroids)
            for note in study.notes:
                logger.info("study %s: %s", study.study_uid, note)
            if study.centroids is None:
                raise FileNotFoundError(
                    f"the study {study.study_uid} in {args.dicom_study} has no centroids.json beside its radiographs; "
                    "give the 2D centroids with --centroids."
                )
            args.lateral, args.ap, args.centroids, sources = study.lateral_path, study.ap_path, study.centroids, study
            logger.info("study %s: lateral %s, AP %s, centroids %s", study.study_uid, args.lateral, args.ap, args.centroids)
        bundle = Path(args.bundle) if args.bundle else default_bundle()
        model = Path(args.model) if args.model else bundle / "models" / "model.pt"
        # the output is checked before the network is loaded (run() checks it again with every input)
        OutputFolder(args.output, "transvert-reconstruct", overwrite=args.overwrite,
                     inputs=[args.lateral, args.ap, args.centroids, args.lateral_sidecar, args.ap_sidecar, model, bundle])  # fmt: skip
        if args.stack_spacing_mm is not None and not args.stack_spacing_mm > 0:
            raise ValueError(f"--stack-spacing-mm must be positive, got {args.stack_spacing_mm!r}.")
        logger.info("[1/3] loading the network from %s", bundle)
        network = load_bundle_network(bundle, args.model, str(device))
        logger.info("[2/3] reading, inferring and stacking")
        options = {} if args.stack_spacing_mm is None else {"stack_spacing_mm": args.stack_spacing_mm}
        if args.ct is not None:
            from transvert_monai.io.paths import require_file

            require_file(args.ct, "CT (--ct)")
            require_file(args.ct_mask, "CT mask (--ct-mask)")
        reconstructor = SpineReconstructor(
            network, placement=args.placement, device=device, ct=args.ct, ct_mask=args.ct_mask,
            ct_mask_format=args.ct_mask_format, ct_radiograph_fit=args.ct_radiograph_fit, **options,
        )  # fmt: skip
        result = reconstructor.run(
            args.lateral, args.ap, args.centroids, args.output, overwrite=args.overwrite,
            lateral_sidecar=args.lateral_sidecar, ap_sidecar=args.ap_sidecar,
            other_inputs=[model, bundle, *(x for x in (args.ct, args.ct_mask) if x)], dicom_sources=sources,
        )  # fmt: skip
        logger.info("[3/3] wrote %d vertebrae to %s", len(result.labels), args.output)
        for v, c, r in zip(result.labels, result.centres_mm.tolist(), result.residual_mm.tolist()):
            logger.info("  %-4s centre (%.1f, %.1f, %.1f) mm, residual %.2f mm", _name(v), *c, r)
        logger.info("timings: %s", ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_s.items()))
        return 0

    return run_command("transvert-reconstruct", body)


def _name(label: int) -> str:
    from transvert_monai.data.labels import label_to_name

    return label_to_name(label)


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
