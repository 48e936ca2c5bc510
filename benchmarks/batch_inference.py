"""Batch inference through the bundle's inference workflow (inference.json): seconds per study, first vs the rest.

N copies of the example radiograph pair (``outputs/example/radiographs``; made with
``transvert-example --skip-training`` if missing) are written as a data list and run with
``monai.bundle.ConfigWorkflow(inference.json)``, the same workflow ``transvert-reconstruct`` runs. Prints the
start-up (config, network, weights), each study's wall time and its steps (reading, patches, inference,
placement/stacking, writing, meshes, DICOM), and the mean per study after the first.

    .venv/bin/python benchmarks/batch_inference.py                       # 20 studies, spine stacked
    .venv/bin/python benchmarks/batch_inference.py --studies 5 --no-stack --threads 2
    .venv/bin/python benchmarks/batch_inference.py --vertebrae T5 T6 T7   # fewer vertebrae per study
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "transvert"
EXAMPLE = ROOT / "outputs" / "example" / "radiographs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    parser.add_argument("--no-stack", action="store_true", help="no stacked spine (no spine.nii.gz, meshes, overlays, report)")
    parser.add_argument("--mesh-formats", nargs="*", default=["stl", "ply"], help="mesh files per vertebra (none: --mesh-formats)")
    parser.add_argument("--vertebrae", nargs="*", default=None, help="keep only these vertebrae of the example's centroids")
    parser.add_argument("--keep", default=None, help="keep the outputs in this folder")
    args = parser.parse_args()

    import torch
    from monai.bundle import ConfigWorkflow

    torch.set_num_threads(args.threads)
    if not (EXAMPLE / "centroids.json").is_file():
        raise SystemExit(f"no example radiographs in {EXAMPLE}: run `transvert-example --skip-training` first.")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="transvert_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    centroids = json.loads((EXAMPLE / "centroids.json").read_text())
    if args.vertebrae:
        centroids = {view: {k: v for k, v in pts.items() if k in args.vertebrae} for view, pts in centroids.items()}
    items = []
    for i in range(args.studies):  # each study its own copy of the files, as from a PACS export
        folder = work / "inputs" / f"study_{i:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("lateral.nii.gz", "lateral.json", "ap.nii.gz", "ap.json"):
            shutil.copy(EXAMPLE / name, folder / name)
        (folder / "centroids.json").write_text(json.dumps(centroids))
        items.append({"id": f"study_{i:02d}", "lateral": f"inputs/study_{i:02d}/lateral.nii.gz",
                      "ap": f"inputs/study_{i:02d}/ap.nii.gz", "centroids": f"inputs/study_{i:02d}/centroids.json"})  # fmt: skip
    (work / "studies.json").write_text(json.dumps({"testing": items}, indent=4))
    configs = [str(BUNDLE / "configs" / "inference.json")] + ([] if args.no_stack else [str(BUNDLE / "configs" / "stacking.json")])

    t0 = time.perf_counter()
    wf = ConfigWorkflow(
        config_file=configs, workflow_type="infer", bundle_root=str(BUNDLE), data_list_file_path=str(work / "studies.json"),
        output_dir=str(work / "outputs"), device="cpu", write_dicom=False, mesh_formats=list(args.mesh_formats),
    )  # fmt: skip
    wf.initialize()
    evaluator = wf.evaluator  # builds the network and loads the weights
    startup = time.perf_counter() - t0
    stamps: list[float] = []
    from ignite.engine import Events

    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: stamps.append(time.perf_counter()))
    t_run = time.perf_counter()
    wf.run()
    per_study = [b - a for a, b in zip([t_run, *stamps[:-1]], stamps)]
    records = wf.handlers[0].records
    print(f"threads {args.threads}, {args.studies} studies of {len(next(iter(centroids.values())))} vertebrae, "
          f"{'no stack' if args.no_stack else 'stacked'}, meshes {args.mesh_formats or 'none'}")  # fmt: skip
    print(f"start-up (config, network, weights): {startup:.2f} s")
    steps = sorted({k for r in records for k in r.get("timings_s", {})})
    print("study    wall_s  " + "  ".join(f"{s[:14]:>14}" for s in steps))
    for record, wall in zip(records, per_study):
        t = record.get("timings_s", {})
        print(f"{record['id']}  {wall:6.2f}  " + "  ".join(f"{t.get(s, float('nan')):14.2f}" for s in steps) + f"  {record['status']}")
    if len(per_study) > 1:
        print(f"first study: {per_study[0]:.2f} s; after the first: mean {statistics.mean(per_study[1:]):.2f} s, "
              f"median {statistics.median(per_study[1:]):.2f} s per study")  # fmt: skip
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
