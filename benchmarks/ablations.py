"""The paper's Table 1 on the embedded example, at a budget a CPU affords (a script, not a test).

Trains every architectural switch of ``TransVert`` (``sagittal_only``, ``naive_fusion``,
``no_attention``, ``transvert``) and ``transvert`` without the adversarial loss with the bundle's
CPU configuration for the same number of iterations and the same seed, keeps each run's best
validation checkpoint, and scores it with ``evaluate.json`` on the fold's testing vertebrae (8 fixed
unseen poses each). Prints a table and, as its last line, one JSON object.

    python benchmarks/ablations.py [--iterations 120] [--vertebrae 8] [--fold 0] [--out /tmp/ablations]

Every run goes through ``monai.bundle``'s ``ConfigWorkflow`` exactly as ``run training`` and
``run evaluating`` do; only the overrides below differ between rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from monai.bundle import ConfigWorkflow

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "transvert" / "configs"
ROWS = {
    "sagittal only": {"variant": "sagittal_only"},
    "naive view fusion (outer product)": {"variant": "naive_fusion"},
    "TransVert, no self-attention": {"variant": "no_attention"},
    "TransVert + self-attention, L1 only": {"variant": "transvert", "adversarial": False},
    "TransVert + self-attention + adversarial": {"variant": "transvert"},
}


def _run(configs: list[str], workflow_type: str, root: Path, overrides: dict) -> None:
    wf = ConfigWorkflow(
        config_file=[str(BUNDLE / c) for c in configs],
        meta_file=str(BUNDLE / "metadata.json"),
        logging_file=str(BUNDLE / "logging.conf"),
        workflow_type=workflow_type,
        bundle_root=str(root),
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=120, help="training iterations per row (10 per epoch)")
    parser.add_argument("--vertebrae", type=int, default=8, help="vertebrae per iteration (train.json's max_vertebrae_per_case)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/transvert_ablations"))
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help="subset of the rows to run")
    args = parser.parse_args(argv)
    results = {}
    for name in args.rows:
        root = args.out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("+", "and")
        common = {"fold": args.fold, "max_vertebrae_per_case": args.vertebrae, **ROWS[name]}
        t0 = time.perf_counter()
        _run(["train.json"], "train", root, {**common, "max_epochs": max(1, args.iterations // 10), "epoch_length": 10, "val_interval": 2})
        train_s = time.perf_counter() - t0
        _run(["train.json", "evaluate.json"], "eval", root, common)
        with open(root / "eval" / "level_summary.csv", newline="") as f:
            overall = next(r for r in csv.DictReader(f) if r["level"] == "all")
        results[name] = {k: float(overall[f"{k}_mean"]) for k in ("dice", "hd_mm", "hd95_mm", "chamfer_mm")}
        results[name]["train_s"] = round(train_s, 1)
        print(name, results[name], flush=True)
    print(f"\nfold {args.fold}, {args.iterations} iterations of {args.vertebrae} vertebrae per row (seed 0), test vertebrae x 8 unseen poses")
    print(f"{'row':45} {'Dice':>6} {'HD':>6} {'HD95':>6} {'Chamfer':>8} {'train s':>8}")
    for name, r in results.items():
        print(
            f"{name:45} {r.get('dice', float('nan')):6.3f} {r.get('hd_mm', float('nan')):6.2f} "
            f"{r.get('hd95_mm', float('nan')):6.2f} {r.get('chamfer_mm', float('nan')):8.2f} {r['train_s']:8.0f}"
        )
    print(json.dumps({"fold": args.fold, "iterations": args.iterations, "vertebrae": args.vertebrae, "rows": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
