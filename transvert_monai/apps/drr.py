"""``transvert-drr``: render a DRR of a CT for people and for checks.

Example:
    transvert-drr --ct ct.nii.gz --view lateral --sdd 1800 --sid 1500 --size 256 --spacing 2.0 --output lat.png

The output format follows the extension: ``.npy`` (float32 [rows, cols]), ``.nii``/``.nii.gz`` (the
image with the detector's 4×4 affine, so it sits in the CT's world space in a viewer) or ``.png``
(8-bit, scaled from 0 to the image maximum). A NIfTI or PNG gets a ``<stem>.json`` geometry side-car
naming its image, so ``transvert-reconstruct`` reads either directly.

Checked before rendering: the output is not the CT (nor any other input) and does not exist unless
``--overwrite``; the CT is a 3D volume with a valid affine (the checks ``transvert-prepare`` makes),
finite values and a plausible voxel spacing; the isocentre lies near the CT; the detector fits in
memory. A DRR that misses the CT (all zero) is refused rather than written. Files are written
atomically and never replace a file that appeared meanwhile.

Exit codes (:mod:`transvert_monai.cli`): 0 done, 2 usage, 3 bad input, 4 output refused, 5 machine, 1 a bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["render_drr_file", "main", "entry_point"]

logger = logging.getLogger(__name__)

_SUFFIXES = (".npy", ".nii", ".nii.gz", ".png")
#: Bytes per detector pixel while rendering: the output and the ray-casting temporaries of one plane chunk.
_BYTES_PER_DETECTOR_PIXEL = 64


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return suffix
    from transvert_monai.errors import TransVertInputError

    raise TransVertInputError(f"cannot tell the output format of '{path}': use one of {', '.join(_SUFFIXES)}.")


def load_ct(path: str | Path):  # noqa: ANN201 - MetaTensor
    """Load a CT (NIfTI, NRRD, DICOM folder, anything MONAI's ``LoadImage`` reads) as a MetaTensor (1, X, Y, Z), RAS.

    A NIfTI file first passes the checks of ``transvert-prepare``
    (:func:`transvert_monai.data.volume.load_volume`: 3D, a qform/sform, an invertible finite affine,
    complete finite voxel data); every CT then needs finite values and a plausible voxel spacing
    (:mod:`transvert_monai.io.plausibility`).

    Raises:
        FileNotFoundError: no such file or folder.
        UnreadableFileError: the file cannot be read.
        TransVertInputError: not a 3D volume, a singular or missing affine, NaN/Inf voxels, an implausible spacing.
    """
    from monai.transforms import EnsureChannelFirst, LoadImage

    from transvert_monai.data.volume import load_volume
    from transvert_monai.errors import TransVertInputError, UnreadableFileError
    from transvert_monai.geometry import as_affine
    from transvert_monai.io.plausibility import check_ct_geometry

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"the CT {path} does not exist.")
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
        load_volume(path, role="CT")  # the same checks as transvert-prepare, before MONAI reads it
    elif not path.is_dir() and not path.is_file():
        from transvert_monai.io.paths import require_file

        require_file(path, "CT")
    try:
        image = LoadImage(image_only=True)(str(path))
    except Exception as err:  # MONAI wraps the readers' many error types in RuntimeError/OSError
        raise UnreadableFileError(f"cannot read the CT {path}: {str(err).splitlines()[0][:300]}") from None
    image = EnsureChannelFirst()(image)
    if image.ndim != 4 or image.shape[0] != 1:
        raise TransVertInputError(
            f"the CT {path} is not a single-channel 3D volume (got shape {tuple(image.shape)}); a CT is expected."
        )
    try:
        affine = as_affine(image.affine, name=f"affine of the CT {path}")
    except ValueError as err:
        raise TransVertInputError(str(err)) from None
    bad = int((~torch.isfinite(image.as_tensor())).sum())
    if bad:
        raise TransVertInputError(
            f"the CT {path} has {bad} NaN/Inf voxels; repair or re-export it with finite values only (air is -1000 HU)."
        )
    check_ct_geometry(torch.linalg.norm(affine[:3, :3], dim=0).tolist(), f"the CT {path}")
    return image


def _check_isocentre(ct, isocentre_mm: Sequence[float] | None, where: str) -> None:  # noqa: ANN001 - MetaTensor
    """Refuse an isocentre farther from the CT's box than :data:`~transvert_monai.io.plausibility.PLAUSIBLE` allows."""
    from transvert_monai.errors import TransVertInputError
    from transvert_monai.geometry import box_corners_mm
    from transvert_monai.io.plausibility import PLAUSIBLE

    if isocentre_mm is None:
        return
    world = box_corners_mm(ct.affine, [-0.5] * 3, [n - 0.5 for n in ct.shape[1:]])
    lo, hi = world.amin(0), world.amax(0)
    iso = torch.tensor([float(x) for x in isocentre_mm], dtype=torch.float64)
    distance = float(torch.linalg.norm(torch.clamp(lo - iso, min=0) + torch.clamp(iso - hi, min=0)))
    limit = PLAUSIBLE["isocentre_to_ct_mm"]
    if distance not in limit:
        raise TransVertInputError(
            f"{where}: the isocentre {tuple(round(float(x), 1) for x in isocentre_mm)} mm lies {distance:.0f} mm outside "
            f"the CT (its box spans {tuple(round(float(x)) for x in lo)} to {tuple(round(float(x)) for x in hi)} mm, "
            f"RAS); the DRR would miss it. Give an isocentre within {limit.high:g} mm of the CT, or none (the CT centre)."
        )


def render_drr_file(
    ct: str | Path,
    output: str | Path,
    view: str = "lateral",
    source_to_detector_mm: float = 1800.0,
    source_to_isocentre_mm: float = 1500.0,
    size: Sequence[int] = (256, 256),
    spacing_mm: float = 2.0,
    isocentre_mm: Sequence[float] | None = None,
    drr_output: str = "line_integral",
    overwrite: bool = False,
) -> Path:
    """Render one view of the CT at ``ct`` and write it to ``output`` (format from the extension).

    Args:
        overwrite: replace an existing output (and side-car); never the CT.

    Returns:
        the written path.

    Raises:
        OutputRefusedError: the output (or its side-car) is the CT, exists without ``overwrite``, or cannot be written.
        TransVertInputError: bad geometry values, an unknown extension, an unreadable or implausible CT, a DRR that
            misses the CT.
        EnvironmentProblemError: a detector too large for the memory.
    """
    from transvert_monai.errors import OutputRefusedError, TransVertInputError
    from transvert_monai.keys import TransVertKeys
    from transvert_monai.outputs.safety import check_no_overlap, check_writable_parent, write_file_safely
    from transvert_monai.resources import check_memory
    from transvert_monai.transforms.drr.array import RenderDRR

    output = Path(output)
    suffix = _suffix(output)
    from transvert_monai.io.formats import default_sidecar

    sidecar_path = default_sidecar(output) if suffix != ".npy" else None  # the side-car transvert-reconstruct reads
    for path, what in ((output, "output file"), (sidecar_path, "side-car")):
        if path is None:
            continue
        check_no_overlap(path, [ct], what)
        check_writable_parent(path, what)
        if path.exists() and not overwrite:
            raise OutputRefusedError(f"the {what} {path} exists; choose another output name or pass --overwrite.")
    rows, cols = (int(x) for x in size)
    check_memory(
        _BYTES_PER_DETECTOR_PIXEL * rows * cols,
        f"rendering a {rows} × {cols}-pixel detector",
        "use a smaller --size (and a larger --spacing for the same field of view)",
    )
    renderer = RenderDRR(
        view=view,
        source_to_detector_mm=source_to_detector_mm,
        source_to_isocentre_mm=source_to_isocentre_mm,
        detector_size_px=tuple(size),
        detector_spacing_mm=spacing_mm,
        isocentre_mm=isocentre_mm,
        output=drr_output,
    )
    volume = load_ct(ct)
    _check_isocentre(volume, isocentre_mm, f"transvert-drr of {ct}")
    drr = renderer(volume)
    image = drr.as_tensor()[0].to(torch.float32).numpy()
    if not np.isfinite(image).all():  # pragma: no cover - load_ct refuses non-finite CTs
        raise TransVertInputError(f"the DRR of {ct} has NaN/Inf pixels; the CT must hold finite values only.")
    if float(np.abs(image).max()) == 0.0:
        raise TransVertInputError(
            f"the {view} DRR of {ct} is all zero: no ray crosses the CT (check --isocentre, --sdd/--sid, --size and "
            "--spacing); nothing was written."
        )
    affine = drr.affine.to(torch.float64).numpy()
    geometry = drr.meta[TransVertKeys.GEOMETRY.value]
    if suffix == ".npy":
        write_file_safely(output, lambda tmp: np.save(str(tmp), image), overwrite, [ct])
    elif suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        write_file_safely(output, lambda tmp: nib.save(nib.Nifti1Image(image, affine), str(tmp)), overwrite, [ct])
    else:
        from PIL import Image

        scaled = np.clip(image / max(float(image.max()), 1e-12), 0, 1) * 255.0
        write_file_safely(
            output, lambda tmp: Image.fromarray(scaled.round().astype(np.uint8)).save(tmp, format="PNG"), overwrite, [ct]
        )
    if sidecar_path is not None:
        sidecar = {"geometry": geometry, "detector_affine": affine.tolist(), "image": output.name}
        if suffix == ".png":
            sidecar["png_scale"] = float(image.max())
        text = json.dumps(sidecar, indent=2) + "\n"
        write_file_safely(sidecar_path, lambda tmp: tmp.write_text(text), overwrite, [ct], what="side-car")
    logger.info("wrote %s (%s view, %d×%d, %.3g mm pixels)", output, view, *image.shape, spacing_mm)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``transvert-drr``; returns the exit code (see :mod:`transvert_monai.cli`)."""
    from transvert_monai.cli import add_version_argument, run_command

    parser = argparse.ArgumentParser(
        prog="transvert-drr",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 done, 1 bug, 2 usage, 3 bad input, 4 output refused, 5 machine (memory).",
    )
    parser.add_argument("--ct", required=True, help="CT volume in HU (NIfTI, NRRD, DICOM folder)")
    parser.add_argument("--view", choices=("lateral", "ap"), default="lateral")
    parser.add_argument("--sdd", type=float, default=1800.0, help="source-to-detector distance, mm")
    parser.add_argument("--sid", type=float, default=1500.0, help="source-to-isocentre distance, mm")
    parser.add_argument("--size", type=int, nargs="+", default=[256], help="detector rows [cols] in pixels")
    parser.add_argument("--spacing", type=float, default=2.0, help="detector pixel spacing, mm")
    parser.add_argument("--isocentre", type=float, nargs=3, default=None, help="world RAS mm (default: CT grid centre)")
    parser.add_argument("--output-type", choices=("line_integral", "beer_lambert"), default="line_integral")
    parser.add_argument("--output", required=True, help="output file: .npy, .nii.gz or .png (+ a .json side-car)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file (never the CT)")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = args.size * 2 if len(args.size) == 1 else args.size
    if len(size) != 2:
        parser.error("--size takes one or two numbers (rows [cols])")

    def body() -> None:
        from transvert_monai.io.plausibility import check_distances

        check_distances(args.sdd, args.sid, "transvert-drr")
        render_drr_file(
            args.ct, args.output, args.view, args.sdd, args.sid, size, args.spacing, args.isocentre, args.output_type,
            overwrite=args.overwrite,
        )  # fmt: skip

    return run_command("transvert-drr", body)


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
