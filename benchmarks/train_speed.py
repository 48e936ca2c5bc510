"""Training speed and memory of the bundle's CPU and paper-size configurations (a script, not a test).

For each configuration, a fresh subprocess builds the network, discriminator, losses and
optimisers from the bundle configs and runs ``TransVertTrainer`` for ``--iterations`` iterations on
batches of ``max_vertebrae_per_case`` vertebrae (the batch the configs give one training call), so
that its peak resident memory (``ru_maxrss``) belongs to that configuration alone. The data are
synthetic tensors of the real shapes: the network's cost does not depend on the values; the data
pipeline (DRR rendering of one case's vertebrae with a random pose) is timed apart on the embedded
example. Inference time per vertebra is the eval-mode forward of a 17-vertebra batch (a T1–L5 spine)
divided by 17.

    python benchmarks/train_speed.py                 # both configurations, 2 threads
    python benchmarks/train_speed.py --configs cpu --iterations 10

Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "transvert" / "configs"
CONFIGS = {"cpu": ["train.json"], "paper": ["train.json", "train_paper.json"]}


def _parser_for(name: str):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / f) for f in CONFIGS[name]])
    parser["dataset_dir"] = "."  # the networks do not need the data
    parser["device"] = "$torch.device('cpu')"
    return parser


def measure_config(name: str, iterations: int, threads: int) -> dict:
    """Run in a child process: train ``iterations`` steps, time them, report peak memory."""
    from ignite.engine import Events

    from transvert_monai.engines import TransVertTrainer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    parser = _parser_for(name)
    batch = int(parser.get_parsed_content("max_vertebrae_per_case"))
    size = int(parser.get_parsed_content("target_size"))
    network = parser.get_parsed_content("network")
    data = [
        {"image": torch.randn(batch, 4, size, size), "label": (torch.rand(batch, 1, size, size, size) > 0.9).float() * 14}
        for _ in range(iterations + 2)
    ]
    trainer = TransVertTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=network,
        optimizer=parser.get_parsed_content("optimizer"),
        discriminator=parser.get_parsed_content("discriminator"),
        d_optimizer=parser.get_parsed_content("d_optimizer"),
        loss_function=parser.get_parsed_content("loss"),
        d_loss_function=parser.get_parsed_content("d_loss"),
        adversarial=bool(parser.get_parsed_content("adversarial")),
        decollate=False,
    )
    times: list[float] = []
    last = [time.perf_counter()]

    def _tick(engine) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    trainer.add_event_handler(Events.ITERATION_COMPLETED, _tick)
    trainer.run()
    steady = times[2:]  # the first two iterations warm up allocators and kernels
    network.eval()
    spine = torch.randn(17, 4, size, size)
    with torch.no_grad():
        network(spine)
        t0 = time.perf_counter()
        for _ in range(3):
            network(spine)
        inference = (time.perf_counter() - t0) / 3 / 17
    return {
        "config": name,
        "batch_vertebrae": batch,
        "parameters_m": round(sum(p.numel() for p in network.parameters()) / 1e6, 3),
        "iteration_s": round(statistics.median(steady), 4),
        "iterations_per_s": round(1.0 / statistics.median(steady), 4),
        "vertebrae_per_s": round(batch / statistics.median(steady), 3),
        "inference_ms_per_vertebra": round(inference * 1e3, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
    }


def measure_data_pipeline(repeats: int, threads: int) -> dict:
    """Time one training call of the data pipeline on the embedded example (cached load, random pose)."""
    from monai.transforms import Compose

    torch.set_num_threads(threads)
    parser = _parser_for("cpu")
    parser["dataset_dir"] = "$str(transvert_monai.data.prepare_example())"
    load = Compose(parser.get_parsed_content("load_case"))
    augment = Compose(parser.get_parsed_content("train#augmentation"))
    case = load(parser.get_parsed_content("train#datalist")[0])
    augment(dict(case))  # warm-up: the attenuation volume of the cached CT
    times, counts = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        counts.append(len(augment(dict(case))))
        times.append(time.perf_counter() - t0)
    return {"case_call_s": round(statistics.median(times), 4), "vertebrae_per_call": counts[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_data", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(measure_config(args._child, args.iterations, args.threads)))
        return 0
    if args._data:
        print(json.dumps(measure_data_pipeline(5, args.threads)))
        return 0
    results = {}
    for name in args.configs:
        cmd = [sys.executable, __file__, "--_child", name, "--iterations", str(args.iterations), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    cmd = [sys.executable, __file__, "--_data", "--threads", str(args.threads)]
    data = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    print(f"training speed on {args.threads} threads (median of {args.iterations - 2} steady iterations)")
    print(f"{'config':8} {'params':>8} {'batch':>6} {'s/iter':>8} {'it/s':>7} {'vert/s':>7} {'infer ms/vert':>14} {'peak GB':>8}")
    for r in results.values():
        print(
            f"{r['config']:8} {r['parameters_m']:7.2f}M {r['batch_vertebrae']:6d} {r['iteration_s']:8.3f} "
            f"{r['iterations_per_s']:7.3f} {r['vertebrae_per_s']:7.2f} {r['inference_ms_per_vertebra']:14.1f} {r['peak_rss_gb']:8.2f}"
        )
    print(f"data pipeline: one case call ({data['vertebrae_per_call']} vertebrae, random pose) {data['case_call_s']:.3f} s")
    print(json.dumps({**results, "data_pipeline": data, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
