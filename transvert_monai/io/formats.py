"""File formats of radiographs: DICOM (pydicom), PNG/TIFF (Pillow), 2D NIfTI (nibabel), and the JSON side-car.

The side-car gives the geometry of an image format that cannot carry it::

    {"pixel_spacing_mm": [0.15, 0.15],      # (row, col) at the detector, or one number
     "source_to_detector_mm": 1800,           # optional, default 1800 (logged)
     "source_to_patient_mm": 1500,            # optional, default 1500 (logged)
     "patient_id": "P001",                    # optional
     "view": "lateral",                       # optional, checked against the view asked for
     "image": "lateral.png"}                  # optional, the image file it belongs to (checked)

A side-car found by name (``<image stem>.json``) is used only if it names that image, or if no other
image of the same stem lies beside it (``lateral.png`` and ``lateral.nii.gz`` would share
``lateral.json``: ambiguous, refused). A 2D NIfTI's pixel spacing comes from its affine; a side-car
that contradicts it is refused.

The side-car written by ``transvert-drr`` next to a PNG (``{"geometry": {...}, ...}``) is read too:
its detector spacing and distances are used, its pose is not (deployment uses the nominal views).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transvert_monai.errors import TransVertInputError, UnreadableFileError
from transvert_monai.io.paths import require_file

__all__ = ["ImageRecord", "default_sidecar", "is_dicom_file", "read_image_file", "read_sidecar", "RADIOGRAPHIC_MODALITIES"]

logger = logging.getLogger(__name__)

#: DICOM modalities read as radiographs (projection X-ray); everything else is rejected.
RADIOGRAPHIC_MODALITIES = frozenset({"DX", "CR", "RF", "XA"})
_DEFAULTS = {"source_to_detector_mm": 1800.0, "source_to_patient_mm": 1500.0}
_SIDECAR_KEYS = ("pixel_spacing_mm", "source_to_detector_mm", "source_to_patient_mm", "patient_id", "view", "image")
_DRR_SIDECAR_KEYS = ("geometry", "detector_affine", "png_scale")
_PIL_SUFFIXES = (".png", ".tif", ".tiff")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
# PatientOrientation (0020,0020) the geometry expects: (direction of increasing column, of increasing row)
_EXPECTED_ORIENTATION = {"lateral": ("A", "F"), "ap": ("L", "F")}
_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L", "H": "F", "F": "H"}
# ViewPosition (0018,5101) values of each view (DICOM PS3.3 C.8.11.5 / CID 4010 codes' legacy strings)
_VIEW_POSITIONS = {"lateral": frozenset({"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}), "ap": frozenset({"AP", "PA"})}
# relative disagreement between a NIfTI affine's spacing and a side-car's above which the pair is refused
_SPACING_TOLERANCE = 0.01


@dataclass
class ImageRecord:
    """What a reader found: pixels (H, W) float32 and the geometry, each with where it came from."""

    pixels: torch.Tensor
    pixel_spacing_mm: tuple[float, float] | None
    source_to_detector_mm: float | None
    source_to_patient_mm: float | None
    patient_id: str | None = None
    spacing_origin: str = "none"
    declared_view: str | None = None  #: the view the file itself declares (DICOM ViewPosition, side-car "view")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` is read as DICOM: a DICOM suffix, or (not PNG/TIFF/NIfTI) the ``DICM`` preamble."""
    suffix = _suffix(path)
    if suffix in _DICOM_SUFFIXES:
        return True
    return suffix not in _PIL_SUFFIXES + _NIFTI_SUFFIXES and path.is_file() and _is_dicom(path)


def _spacing_pair(value: Any, where: str) -> tuple[float, float]:
    seq = [value, value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        pair = tuple(float(v) for v in seq)
    except (TypeError, ValueError, OverflowError):
        pair = ()
    if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
        raise TransVertInputError(
            f"{where}: the pixel spacing must be one positive number or (row, col) mm, got {value!r}."
        )
    return pair  # type: ignore[return-value]


def _distance(value: Any, name: str, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        out = float("nan")
    if not math.isfinite(out) or out <= 0:
        raise TransVertInputError(f"{where}: `{name}` must be a positive number of mm, got {value!r}.")
    return out


def read_sidecar(path: Path, view: str) -> dict[str, Any]:
    """Read a geometry side-car (see the module docstring) into ``{pixel_spacing_mm, source_to_*_mm, patient_id}``.

    Raises:
        FileNotFoundError: no such file.
        UnreadableFileError: not JSON.
        TransVertInputError: not an object, unknown keys, bad values, or another view than ``view``.
    """
    require_file(path, "geometry side-car")
    try:
        data = json.loads(path.read_text())
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise UnreadableFileError(f"geometry side-car {path} is not valid JSON: {err}.") from None
    if not isinstance(data, dict):
        raise TransVertInputError(f"geometry side-car {path} must hold a JSON object, got a {type(data).__name__}.")
    if "geometry" in data:  # written by transvert-drr
        unknown = sorted(set(data) - set(_DRR_SIDECAR_KEYS) - set(_SIDECAR_KEYS))
        g = data["geometry"]
        if not isinstance(g, dict):
            raise TransVertInputError(
                f"geometry side-car {path}: 'geometry' must be an object (ProjectionGeometry.to_dict())."
            )
        data = {
            "pixel_spacing_mm": g.get("detector_spacing_mm"),
            "source_to_detector_mm": g.get("source_to_detector_mm"),
            "source_to_patient_mm": g.get("source_to_isocentre_mm"),
            "view": g.get("view"),
            **{k: data[k] for k in ("patient_id", "image") if k in data},
        }
    else:
        unknown = sorted(set(data) - set(_SIDECAR_KEYS))
    if unknown:
        raise TransVertInputError(
            f"geometry side-car {path} has unknown keys {unknown}; expected some of {list(_SIDECAR_KEYS)}."
        )
    where = f"geometry side-car {path}"
    out: dict[str, Any] = {}
    if data.get("pixel_spacing_mm") is not None:
        out["pixel_spacing_mm"] = _spacing_pair(data["pixel_spacing_mm"], where)
    for name in ("source_to_detector_mm", "source_to_patient_mm"):
        if data.get(name) is not None:
            out[name] = _distance(data[name], name, where)
    if data.get("patient_id") is not None:
        out["patient_id"] = str(data["patient_id"])
    if data.get("view") not in (None, "custom") and str(data["view"]).lower() != view:
        raise TransVertInputError(
            f"{where} describes a {data['view']!r} view, but the image is read as {view!r}: the lateral and AP files "
            "are swapped, or the side-car belongs to another image; check the file pairing."
        )
    if data.get("view") not in (None, "custom"):
        out["view"] = str(data["view"]).lower()
    if data.get("image") is not None:
        out["image"] = str(data["image"])
    return out


# ---------------------------------------------------------------------------------------------- DICOM
def _check_dicom_orientation(ds: Any, view: str, path: Path, flip_horizontal: bool) -> None:
    """Report a PatientOrientation (0020,0020) that contradicts the orientation the view expects."""
    value = ds.get("PatientOrientation")
    if not value or len(value) != 2:
        return
    found = tuple(str(v)[:1].upper() for v in value)
    expected = _EXPECTED_ORIENTATION[view]
    columns = _OPPOSITE.get(found[0], found[0]) if flip_horizontal else found[0]
    if columns == _OPPOSITE[expected[0]]:
        logger.warning(
            "%s: PatientOrientation %s says the columns run towards %s%s, but the %s view expects %s; "
            "read it with flip_horizontal=%s.",
            path,
            list(value),
            found[0],
            " (before the flip)" if flip_horizontal else "",
            view,
            expected[0],
            not flip_horizontal,
        )
    if found[1] == _OPPOSITE[expected[1]]:
        logger.warning(
            "%s: PatientOrientation %s says the image is upside down (rows towards the head).", path, list(value)
        )


def _read_dicom(path: Path, view: str, flip_horizontal: bool = False) -> ImageRecord:
    try:
        import pydicom
    except ImportError as err:
        raise ImportError("reading DICOM needs pydicom: pip install 'transvert_monai[dicom]'.") from err
    try:
        ds = pydicom.dcmread(str(path))
    except Exception as err:  # pydicom raises many types for damaged or non-DICOM files
        raise UnreadableFileError(
            f"cannot read DICOM file {path}: {err}; check that it is a complete DICOM file."
        ) from None
    try:
        return _dicom_record(ds, path, view, flip_horizontal)
    except TransVertInputError:
        raise
    except Exception as err:  # pydicom converts tag values on access: a damaged value raises there
        raise UnreadableFileError(
            f"DICOM file {path} has a damaged or invalid tag value ({type(err).__name__}: {err}); "
            "check that it is a complete DICOM file, or export the image again."
        ) from None


def _dicom_record(ds: Any, path: Path, view: str, flip_horizontal: bool) -> ImageRecord:
    """The pixels and geometry of a DICOM dataset read by pydicom."""
    from transvert_monai.dicom.pixels import dicom_pixels

    if "PixelData" in ds:  # the pixel checks (frames, photometric, decoding) come after the modality check
        modality = str(ds.get("Modality", "")).upper()
        if modality not in RADIOGRAPHIC_MODALITIES:
            raise TransVertInputError(
                f"{path} is a DICOM of modality {modality or 'unknown'!r}, not a radiograph; expected one of "
                f"{sorted(RADIOGRAPHIC_MODALITIES)}. Use the lateral and AP X-ray images (DX/CR), or export a "
                "radiograph stored otherwise as PNG with a geometry side-car."
            )
    pixels = dicom_pixels(ds)  # pydicom's modality and presentation LUTs (MONOCHROME1 / INVERSE honoured)
    spacing, origin = None, "none"
    for keyword, tag in (("ImagerPixelSpacing", "(0018,1164)"), ("PixelSpacing", "(0028,0030)")):
        if ds.get(keyword):
            spacing, origin = _spacing_pair(list(ds.get(keyword)), f"DICOM {path} {keyword}"), f"DICOM {keyword} {tag}"
            break
    if origin.startswith("DICOM PixelSpacing"):
        logger.warning(
            "%s: no ImagerPixelSpacing; using PixelSpacing %s, which may be calibrated at the patient rather than the "
            "detector (pass pixel_spacing_mm if it is).",
            path,
            list(spacing or ()),
        )
    distances = {}
    for name, keyword in (
        ("source_to_detector_mm", "DistanceSourceToDetector"),
        ("source_to_patient_mm", "DistanceSourceToPatient"),
    ):
        if ds.get(keyword) is not None and str(ds.get(keyword)) != "":
            distances[name] = _distance(ds.get(keyword), keyword, f"DICOM {path}")
    _check_dicom_orientation(ds, view, path, flip_horizontal)
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    declared = next((v for v, codes in _VIEW_POSITIONS.items() if position in codes), None)
    if declared is not None and declared != view:
        raise TransVertInputError(
            f"{path} is read as the {view} radiograph, but its ViewPosition (0018,5101) is {position!r}, an {declared} "
            f"view: the lateral and AP files are swapped; give each file to its own option."
        )
    pid = ds.get("PatientID")
    return ImageRecord(
        pixels=torch.from_numpy(pixels.astype(np.float32)),
        pixel_spacing_mm=spacing,
        source_to_detector_mm=distances.get("source_to_detector_mm"),
        source_to_patient_mm=distances.get("source_to_patient_mm"),
        patient_id=str(pid) if pid else None,
        spacing_origin=origin,
        declared_view=declared,
    )


# ---------------------------------------------------------------------------------------------- PNG / TIFF / NIfTI
def _read_pil(path: Path) -> ImageRecord:
    from PIL import Image

    try:
        with Image.open(path) as img:
            frames = int(getattr(img, "n_frames", 1))
            img.load()
            array = np.asarray(img)
            mode = img.mode
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError ... for truncated or foreign files
        raise UnreadableFileError(
            f"cannot read image file {path}: {err}; check that it is a complete PNG/TIFF file."
        ) from None
    if frames > 1:
        raise TransVertInputError(
            f"{path} holds {frames} frames; a radiograph is one 2D image (3D files are not read)."
        )
    if mode == "1":
        raise TransVertInputError(
            f"{path} is a black-and-white (1-bit) image; a radiograph has grey levels: export it as 8- or 16-bit greyscale."
        )
    if mode in ("P", "PA"):  # palette: the stored values are indices into a colour table, not intensities
        array = _palette_to_grey(path)
    if array.ndim == 3:
        if mode not in ("RGB", "RGBA", "LA") or not all(
            np.array_equal(array[..., 0], array[..., k]) for k in range(1, min(3, array.shape[-1]))
        ):
            raise TransVertInputError(f"{path} is a colour image (mode {mode}); a greyscale radiograph is expected.")
        array = array[..., 0]
    if array.ndim != 2:
        raise TransVertInputError(f"{path} holds an image of shape {array.shape}; a radiograph is one 2D image.")
    return ImageRecord(torch.from_numpy(array.astype(np.float32)), None, None, None)


def _palette_to_grey(path: Path) -> np.ndarray:
    """The grey levels of a palette image (its indices looked up in its palette); refuse a colour palette."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        raise TransVertInputError(
            f"{path} is a palette image whose colours are not grey; a greyscale radiograph is expected (export it as "
            "8- or 16-bit greyscale)."
        )
    logger.info("%s: palette image, read through its (grey) palette.", path)
    return rgb[..., 0]


def _nifti_spacing(img: Any) -> tuple[float, float] | None:
    """(row, col) pixel spacing of a 2D NIfTI from its affine; ``None`` without a valid qform/sform."""
    header = img.header
    codes = [int(header.get(k, 0)) for k in ("sform_code", "qform_code")] if hasattr(header, "get") else [1]
    if not any(codes):
        return None
    columns = np.linalg.norm(np.asarray(img.affine, dtype=np.float64)[:3, :2], axis=0)
    if not np.all(np.isfinite(columns)) or np.any(columns <= 0):
        return None
    return float(columns[0]), float(columns[1])


def _read_nifti(path: Path) -> ImageRecord:
    import nibabel as nib

    from transvert_monai.data.volume import check_voxel_data

    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.spatialimages.SpatialImage):
            raise TypeError(f"not an image but a {type(img).__name__}")
    except Exception as err:  # nibabel raises ImageFileError, EOFError, OSError, zlib errors, ...
        raise UnreadableFileError(
            f"cannot read NIfTI file {path}: {err}; check that it is a complete NIfTI file."
        ) from None
    check_voxel_data(img, role="radiograph")  # a truncated file fails here, before the array is allocated
    try:
        array = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises ImageFileError, EOFError, OSError, zlib errors, ...
        raise UnreadableFileError(
            f"cannot read NIfTI file {path}: {err}; check that it is a complete NIfTI file."
        ) from None
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise TransVertInputError(
            f"{path} holds an image of shape {array.shape}; a radiograph is one 2D image (3D files are not read)."
        )
    spacing = _nifti_spacing(img)
    return ImageRecord(
        torch.from_numpy(np.asarray(array, dtype=np.float32)),
        spacing,
        None,
        None,
        spacing_origin="NIfTI affine" if spacing else "none",
    )


def _image_stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def default_sidecar(path: str | os.PathLike) -> Path:
    """The side-car a PNG/TIFF/NIfTI image is read with by default: ``<image stem>.json`` beside it."""
    path = Path(path)
    return path.with_name(_image_stem(path) + ".json")


def read_image_file(
    path: Path, view: str, sidecar: Path | None, overrides: Mapping[str, Any], flip_horizontal: bool = False
) -> ImageRecord:
    """Read ``path`` and settle its geometry (arguments > side-car > DICOM tags > defaults).

    Raises:
        FileNotFoundError: no such image or side-car.
        UnreadableFileError, TransVertInputError: see :func:`transvert_monai.io.read_radiograph`.
    """
    require_file(path, "radiograph")
    suffix = _suffix(path)
    is_dicom = suffix in _DICOM_SUFFIXES or (suffix not in _PIL_SUFFIXES + _NIFTI_SUFFIXES and _is_dicom(path))
    if suffix in _PIL_SUFFIXES:
        record = _read_pil(path)
    elif suffix in _NIFTI_SUFFIXES:
        record = _read_nifti(path)
    elif is_dicom:
        record = _read_dicom(path, view, flip_horizontal)
    else:
        raise UnreadableFileError(
            f"cannot tell the format of {path}: use DICOM ({', '.join(_DICOM_SUFFIXES)} or the DICM preamble), "
            f"{', '.join(_PIL_SUFFIXES)} or {', '.join(_NIFTI_SUFFIXES)}."
        )
    found_by_name = sidecar is None and not is_dicom and default_sidecar(path).is_file()
    if found_by_name:
        sidecar = default_sidecar(path)
    side = read_sidecar(sidecar, view) if sidecar is not None else {}
    if side.get("image") is not None and Path(side["image"]).name != path.name:
        if found_by_name:
            raise TransVertInputError(
                f"the side-car {sidecar} beside {path} belongs to another image ({side['image']!r}); give this image's "
                "own side-car with --lateral-sidecar/--ap-sidecar (Python: sidecar=...)."
            )
        raise TransVertInputError(
            f"the side-car {sidecar} describes the image {side['image']!r}, not {path.name!r}; check the file pairing."
        )
    if found_by_name and side.get("image") is None:
        twins = sorted(
            p.name for p in path.parent.iterdir()
            if p != path and p.is_file() and _image_stem(p) == _image_stem(path)
            and _suffix(p) in _PIL_SUFFIXES + _NIFTI_SUFFIXES + _DICOM_SUFFIXES
        )  # fmt: skip
        if twins:
            raise TransVertInputError(
                f"the side-car {sidecar} could belong to {path.name} or to {', '.join(twins)} (same name stem); add "
                f'"image": "{path.name}" to it, or give the side-car explicitly with --lateral-sidecar/--ap-sidecar.'
            )
    if side.get("view"):
        record.declared_view = side["view"]
    if "pixel_spacing_mm" in side:
        identity = record.pixel_spacing_mm == (1.0, 1.0)  # nibabel's default affine: no spacing was stored
        if record.spacing_origin == "NIfTI affine" and record.pixel_spacing_mm is not None and not identity:
            a, b = record.pixel_spacing_mm, side["pixel_spacing_mm"]
            if any(abs(x - y) > _SPACING_TOLERANCE * max(x, y) for x, y in zip(a, b)):
                raise TransVertInputError(
                    f"{path}: the NIfTI affine gives a pixel spacing of {a[0]:g} × {a[1]:g} mm, the side-car {sidecar} "
                    f"{b[0]:g} × {b[1]:g} mm; fix the one that is wrong (or drop pixel_spacing_mm from the side-car)."
                )
        record.pixel_spacing_mm, record.spacing_origin = side["pixel_spacing_mm"], f"side-car {sidecar}"
    for name in _DEFAULTS:
        if name in side:
            setattr(record, name, side[name])
    if side.get("patient_id"):
        record.patient_id = side["patient_id"]
    if overrides.get("pixel_spacing_mm") is not None:
        record.pixel_spacing_mm = _spacing_pair(overrides["pixel_spacing_mm"], f"{path}: argument pixel_spacing_mm")
        record.spacing_origin = "argument"
    for name, default in _DEFAULTS.items():
        if overrides.get(name) is not None:
            setattr(record, name, _distance(overrides[name], name, f"{path}: argument"))
        elif getattr(record, name) is None:
            logger.warning(
                "%s: no %s in the file, side-car or arguments; using the default %.0f mm.", path, name, default
            )
            setattr(record, name, default)
    if record.pixel_spacing_mm is None:
        found = "no ImagerPixelSpacing (0018,1164) or PixelSpacing (0028,0030)" if is_dicom else "no pixel spacing"
        raise TransVertInputError(
            f"{path} has {found}: give the detector pixel size in a JSON side-car "
            f'{{"pixel_spacing_mm": [row, col]}} ({"" if is_dicom else default_sidecar(path).name + " beside the image, or "}'
            "--lateral-sidecar / --ap-sidecar on the command line; Python: read_radiograph(..., pixel_spacing_mm=...))."
        )
    return record
