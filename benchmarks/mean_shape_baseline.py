"""The trivial baseline a trained TransVert must beat: the mean training shape placed at each centroid.

For one fold of a data list, the training vertebrae's targets (nominal pose plus ``--train-poses``
random poses, the training ranges of the bundle) are averaged voxel by voxel on the view-aligned
grid; the mean shape, binarised at half the index, is then scored against the test vertebrae seen
with the same fixed poses as ``evaluate.json`` (seed 4321, 8 poses). Prints per-level and overall
Dice / HD / HD95 / Chamfer, and as its last line one JSON object.

    python benchmarks/mean_shape_baseline.py                       # the embedded example, fold 0
    python benchmarks/mean_shape_baseline.py --fold 1 --dataset-dir DIR
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import torch
from monai.data import load_decathlon_datalist
from monai.transforms import Compose, LoadImaged, Spacingd

from transvert_monai.data import label_to_name, prepare_example
from transvert_monai.metrics import mean_shape_baseline, score_mean_shape_baseline
from transvert_monai.transforms import ExtractVertebraSamplesd, LoadCentroidsd, with_fixed_poses

#: the bundle's training ranges (configs/train.json)
RANGES = {"rotation_range_rad": [0.05, 0.05, 0.15], "translation_range_mm": [20.0, 20.0, 60.0], "view_angle_range_rad": 0.03}


def _samples(items, poses: int, seed: int, ct_spacing_mm: float):
    load = Compose(
        [
            LoadImaged(["ct", "mask"], ensure_channel_first=True, image_only=True),
            Spacingd(["ct", "mask"], pixdim=(ct_spacing_mm,) * 3, mode=("bilinear", "nearest"), padding_mode="border"),
            LoadCentroidsd("centroids"),
        ]
    )
    extract = ExtractVertebraSamplesd()
    for item in with_fixed_poses(items, poses_per_item=poses, seed=seed, **RANGES):
        yield from extract(load(item))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset-dir", type=Path, default=None, help="prepared dataset (default: the embedded example)")
    parser.add_argument("--data-list", default=None, help="data list file (default: <dataset>/data_lists/example_fold<k>.json)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--train-poses", type=int, default=8)
    parser.add_argument("--eval-poses", type=int, default=8)
    parser.add_argument("--ct-spacing", type=float, default=1.5)
    args = parser.parse_args(argv)
    dataset = args.dataset_dir or prepare_example()
    data_list = args.data_list or str(dataset / "data_lists" / f"example_fold{args.fold}.json")
    torch.set_num_threads(2)
    train = load_decathlon_datalist(data_list, data_list_key="training", base_dir=str(dataset))
    test = load_decathlon_datalist(data_list, data_list_key="testing", base_dir=str(dataset))
    mean = mean_shape_baseline([s["label"].as_tensor() for s in _samples(train, args.train_poses, 1, args.ct_spacing)])
    per_level: dict[int, list[dict[str, float]]] = defaultdict(list)
    for s in _samples(test, args.eval_poses, 4321, args.ct_spacing):
        scores = score_mean_shape_baseline(mean, s["label"].as_tensor()[None], spacing_mm=1.5)
        per_level[s["vertebra"]].append({k: float(torch.as_tensor(v).reshape(-1)[0]) for k, v in scores.items()})
    summary = {}
    print(f"mean-shape baseline, fold {args.fold}: {sum(len(v) for v in per_level.values())} test samples")
    rows = [(label_to_name(v), per_level[v]) for v in sorted(per_level)] + [("all", [r for v in per_level.values() for r in v])]
    for name, values in rows:
        means = {k: sum(r[k] for r in values if not math.isnan(r[k])) / max(1, sum(not math.isnan(r[k]) for r in values)) for k in values[0]}
        summary[name] = {k: round(v, 4) for k, v in means.items()}
        print(f"{name:>5}  " + "  ".join(f"{k} {v:7.3f}" for k, v in means.items()))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
