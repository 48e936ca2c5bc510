"""``transvert-drr``: render a DRR of a CT for people and for checks.

Example:
    transvert-drr --ct ct.nii.gz --view lateral --sdd 1800 --sid 1500 --size 256 --spacing 2.0 --output lat.png

The output format follows the extension: ``.npy`` (float32 [rows, cols]), ``.nii``/``.nii.gz`` (the
image with the detector's 4×4 affine, so it sits in the CT's world space in a viewer) or ``.png``
(8-bit, scaled from 0 to the image maximum; the geometry goes to a ``.json`` side-car). Files are
written atomically.
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


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"cannot tell the output format of '{path}': use one of {', '.join(_SUFFIXES)}.")


def load_ct(path: str | Path):  # noqa: ANN201 - MetaTensor
    """Load a CT (NIfTI, NRRD, DICOM folder, anything MONAI's ``LoadImage`` reads) as a MetaTensor (1, X, Y, Z), RAS.

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: the file is not a 3D volume or cannot be read.
    """
    from monai.transforms import EnsureChannelFirst, LoadImage

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CT '{path}' does not exist.")
    try:
        image = LoadImage(image_only=True)(str(path))
    except Exception as err:  # MONAI wraps the readers' many error types in RuntimeError/OSError
        raise ValueError(f"cannot read CT '{path}': {err}") from err
    image = EnsureChannelFirst()(image)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"'{path}' is not a single-channel 3D volume (got shape {tuple(image.shape)}); a CT is expected.")
    return image


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
) -> Path:
    """Render one view of the CT at ``ct`` and write it to ``output`` (format from the extension).

    Returns:
        the written path.

    Raises:
        ValueError: bad geometry values, an unknown extension, an unreadable CT.
    """
    from transvert_monai.data.atomic import atomic_write
    from transvert_monai.keys import TransVertKeys
    from transvert_monai.transforms.drr.array import RenderDRR

    output = Path(output)
    suffix = _suffix(output)
    renderer = RenderDRR(
        view=view,
        source_to_detector_mm=source_to_detector_mm,
        source_to_isocentre_mm=source_to_isocentre_mm,
        detector_size_px=tuple(size),
        detector_spacing_mm=spacing_mm,
        isocentre_mm=isocentre_mm,
        output=drr_output,
    )
    drr = renderer(load_ct(ct))
    image = drr.as_tensor()[0].to(torch.float32).numpy()
    affine = drr.affine.to(torch.float64).numpy()
    geometry = drr.meta[TransVertKeys.GEOMETRY.value]
    if suffix == ".npy":
        atomic_write(output, lambda tmp: np.save(str(tmp), image))
    elif suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        atomic_write(output, lambda tmp: nib.save(nib.Nifti1Image(image, affine), str(tmp)))
    else:
        from PIL import Image

        scaled = np.clip(image / max(float(image.max()), 1e-12), 0, 1) * 255.0
        atomic_write(output, lambda tmp: Image.fromarray(scaled.round().astype(np.uint8)).save(tmp, format="PNG"))
        sidecar = {"geometry": geometry, "detector_affine": affine.tolist(), "png_scale": float(image.max())}
        atomic_write(output.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(sidecar, indent=2) + "\n"))
    logger.info("wrote %s (%s view, %d×%d, %.3g mm pixels)", output, view, *image.shape, spacing_mm)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``transvert-drr``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="transvert-drr", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ct", required=True, help="CT volume in HU (NIfTI, NRRD, DICOM folder)")
    parser.add_argument("--view", choices=("lateral", "ap"), default="lateral")
    parser.add_argument("--sdd", type=float, default=1800.0, help="source-to-detector distance, mm")
    parser.add_argument("--sid", type=float, default=1500.0, help="source-to-isocentre distance, mm")
    parser.add_argument("--size", type=int, nargs="+", default=[256], help="detector rows [cols] in pixels")
    parser.add_argument("--spacing", type=float, default=2.0, help="detector pixel spacing, mm")
    parser.add_argument("--isocentre", type=float, nargs=3, default=None, help="world RAS mm (default: CT grid centre)")
    parser.add_argument("--output-type", choices=("line_integral", "beer_lambert"), default="line_integral")
    parser.add_argument("--output", required=True, help="output file: .npy, .nii.gz or .png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = args.size * 2 if len(args.size) == 1 else args.size
    if len(size) != 2:
        parser.error("--size takes one or two numbers (rows [cols])")
    try:
        render_drr_file(args.ct, args.output, args.view, args.sdd, args.sid, size, args.spacing, args.isocentre, args.output_type)
    except (ValueError, TypeError, FileNotFoundError) as err:
        logger.error("transvert-drr: %s", err)
        return 2
    return 0


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
