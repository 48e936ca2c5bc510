"""Nothing lost, nothing silently wrong: the classes of issue 10, one section each.

* **Data loss.** Random folder trees with inputs, and output paths that overlap them (the same path,
  a parent, an ancestor, the working directory, a symbolic-link alias, a ``..`` path through a link,
  a hard link) given to :class:`OutputFolder` and :func:`write_file_safely`: an overlapping output is
  refused and every file that existed before is byte-identical afterwards (hypothesis). Then the
  races: something appearing at the output during the run, two jobs on one path, a previous output
  changed during an ``--overwrite`` run, staging folders of killed runs. Then the same through the
  real ``transvert-reconstruct`` and ``transvert-drr`` command lines.
* **Silently wrong.** Implausible geometry and content (hypothesis over distances, spacings, sizes),
  centroid order and spacing, swapped views, palette PNGs, the NIfTI affine's spacing, implausible
  CTs given to ``transvert-drr``, case ids.
* **Messages.** A folder or a FIFO as an input, an absent device, a missing package, a refused
  checkpoint, a training count of the wrong type, a memory plan no machine has, ``--version``.
* **Exit codes** of :mod:`transvert_monai.cli`, and the **HD95** of an all-empty batch.

Rows of ``bundles/transvert/docs/bad_inputs.md`` name these tests.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import transvert_monai
from tests.io.synthetic import gradient_image, write_dicom, write_nifti, write_png
from transvert_monai.errors import (
    CheckpointMismatchError,
    ConfigTypeError,
    EnvironmentProblemError,
    OutputRefusedError,
    TransVertInputError,
    UnreadableFileError,
)
from transvert_monai.io import read_centroids_2d, read_radiograph
from transvert_monai.io.plausibility import PLAUSIBLE
from transvert_monai.outputs.safety import MARKER_NAME, OutputFolder, clean_stale_staging, write_file_safely

ROOT = Path(__file__).resolve().parents[2]
CMD = "transvert-test"
#: hypothesis: derandomised, so CI repeats the same examples; a file system per example, so few of them
FILES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
IMAGES = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links not followed) with its bytes."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[os.path.relpath(p, folder)] = p.read_bytes()
    return out


def _run_job(output: OutputFolder, content: str = "result") -> Path:
    staging = output.start()
    try:
        (staging / "result.txt").write_text(content)
        return output.commit(staging)
    finally:
        output.discard(staging)


# ================================================================================================ data loss
# A random tree: folders (names a-c, depth ≤ 3) holding files `f<i>.dat`; some folders are marked as a
# previous output (of this command or another), some are empty. Links and aliases are added per example.
_DIRS = st.lists(st.sampled_from("abc"), min_size=0, max_size=3).map(lambda parts: "/".join(parts))
TREES = st.fixed_dictionaries(
    {
        "files": st.lists(_DIRS, min_size=1, max_size=7),  # the folder of file i
        "empty": st.lists(_DIRS.filter(bool).map(lambda d: d + "/e"), max_size=2),
        "marked": st.lists(st.tuples(_DIRS.filter(bool), st.sampled_from([CMD, "transvert-drr"])), max_size=2),
    }
)


def _build(root: Path, tree: dict) -> tuple[list[Path], list[Path]]:
    """Make the tree under ``root``; return its files and folders (``root`` included)."""
    files = []
    for i, folder in enumerate(tree["files"]):
        path = root / folder / f"f{i}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(16) + str(path).encode())
        files.append(path)
    for folder in tree["empty"]:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for folder, command in tree["marked"]:
        marked = root / folder
        marked.mkdir(parents=True, exist_ok=True)
        listing = sorted(p.relative_to(marked).as_posix() for p in marked.rglob("*") if p.is_file())
        (marked / MARKER_NAME).write_text(json.dumps({"command": command, "files": listing}))
    folders = sorted({root, *(p for p in root.rglob("*") if p.is_dir())})
    return files, folders


def _alias(root: Path, target: Path, how: str, k: int) -> Path:
    """Another name of ``target``: a symbolic link to it, or a `..` path through a link to its subfolder."""
    if how == "symlink":
        link = root / f".alias{k}"
        link.symlink_to(target)
        return link
    if how == "dotdot_through_link":  # <link to target's sibling folder>/../<name>: the OS reads target
        sibling = target.parent / f".sub{k}"
        sibling.mkdir(exist_ok=True)
        link = root / f".alias{k}"
        link.symlink_to(sibling)
        return Path(f"{link}/../{target.name}")
    if how == "dotdot":
        return Path(f"{target.parent}/../{target.parent.name}/{target.name}") if target != root else target
    return target


def _marker_allows(folder: Path) -> bool:
    """An oracle of --overwrite: a marker of this command listing every file there."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    listing = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    return marker.get("command") == CMD and listing - {MARKER_NAME} <= set(marker.get("files", ()))


@FILES
@given(
    tree=TREES,
    data=st.data(),
    output_kind=st.sampled_from(["folder", "file", "new_inside", "symlink", "dotdot", "dotdot_through_link", "cwd", "cwd_parent"]),
    input_alias=st.sampled_from(["plain", "symlink", "dotdot", "dotdot_through_link"]),
    overwrite=st.booleans(),
)  # fmt: skip
def test_output_folder_never_overlaps_an_input_nor_changes_a_file_it_did_not_write(
    tree, data, output_kind, input_alias, overwrite
):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp).resolve() / "tree"
        files, folders = _build(root, tree)
        mp.chdir(data.draw(st.sampled_from(folders), "cwd"))
        chosen = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=3, unique=True), "inputs")
        inputs = [_alias(root, f, input_alias, k) for k, f in enumerate(chosen)]
        if data.draw(st.booleans(), "a folder as input too"):
            inputs.append(data.draw(st.sampled_from(folders), "input folder"))
        if output_kind in ("folder", "symlink", "dotdot", "dotdot_through_link"):
            target = data.draw(st.sampled_from(folders), "output folder")
            output = _alias(root, target, output_kind, 99) if output_kind != "folder" else target
        elif output_kind == "file":
            output = data.draw(st.sampled_from(files), "output file")
        elif output_kind == "new_inside":
            output = data.draw(st.sampled_from(folders), "parent") / "out"
        else:
            output = Path("." if output_kind == "cwd" else "..")
        before = _snapshot(root)

        # the oracle: the path written is the lexical absolute path (what OutputFolder uses), resolved
        written = Path(os.path.realpath(os.path.abspath(output)))
        cwd = Path(os.getcwd()).resolve()
        read = [Path(os.path.realpath(i)) for i in inputs]  # what the OS opens
        overlaps = any(written == r or written in r.parents for r in read)
        refused = (
            overlaps
            or written == cwd
            or written in cwd.parents
            or Path(os.path.abspath(output)).is_symlink()
            or (written.exists() and not written.is_dir())
            or (written.is_dir() and any(written.iterdir()) and not (overwrite and _marker_allows(written)))
        )
        try:
            done = _run_job(OutputFolder(output, CMD, overwrite=overwrite, inputs=inputs))
        except OutputRefusedError:
            assert refused, f"{output} refused though the oracle accepts it"
            assert _snapshot(root) == before
            return
        assert not refused, f"{output} accepted though it overlaps {inputs} or is not ours to replace"
        after = _snapshot(root)
        inside = os.path.relpath(done.resolve(), root)
        outside = {k: v for k, v in before.items() if not (k == inside or k.startswith(inside + os.sep))}
        assert {k: after.get(k) for k in outside} == outside, "a file outside the output changed"
        assert (done / "result.txt").read_text() == "result" and (done / MARKER_NAME).is_file()
        assert not [p for p in done.parent.iterdir() if ".transvert-staging-" in p.name]


@FILES
@given(
    tree=TREES,
    data=st.data(),
    output_kind=st.sampled_from(["input", "symlink", "dotdot", "dotdot_through_link", "hardlink", "other_file", "new", "folder"]),
    overwrite=st.booleans(),
)  # fmt: skip
def test_single_file_output_is_never_an_input_and_replaces_only_with_overwrite(tree, data, output_kind, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve() / "tree"
        files, folders = _build(root, tree)
        inputs = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=3, unique=True), "inputs")
        others = [f for f in files if f not in inputs]
        if output_kind == "other_file":
            assume(others)
            output = data.draw(st.sampled_from(others))
        elif output_kind == "new":
            output = data.draw(st.sampled_from(folders)) / "new.dat"
        elif output_kind == "folder":
            output = data.draw(st.sampled_from(folders))
        elif output_kind == "hardlink":
            output = root / ".hard"
            os.link(inputs[0], output)
        else:
            output = _alias(root, inputs[0], output_kind if output_kind != "input" else "plain", 7)
        before = _snapshot(root)
        # the oracle: the file written is the lexical absolute path (`link/../x` is `x` beside the link)
        written = Path(os.path.abspath(output))
        is_input = any(
            os.path.realpath(written) == os.path.realpath(i) or (written.exists() and os.path.samefile(written, i))
            for i in inputs
        )
        refused = is_input or written.is_symlink() or written.is_dir() or (written.exists() and not overwrite)
        expected_ok = not refused
        try:
            write_file_safely(output, lambda tmp_path: Path(tmp_path).write_bytes(b"new"), overwrite=overwrite, inputs=inputs)
        except OutputRefusedError:
            assert not expected_ok
            assert _snapshot(root) == before
            return
        assert expected_ok, f"{output_kind} {output} was written"
        changed = os.path.relpath(os.path.realpath(written), root)
        after = _snapshot(root)
        assert after.pop(changed) == b"new"
        before.pop(changed, None)
        assert after == before
        assert all(f.read_bytes() == before[os.path.relpath(f, root)] for f in inputs)


def test_an_input_named_through_a_link_and_dotdot_is_found_inside_a_previous_output(tmp_path, monkeypatch):
    """`link/../f.dat` opens the f.dat beside the link's target, not beside the link (a lexical `..` would miss it)."""
    previous = tmp_path / "previous"
    _run_job(OutputFolder(previous, CMD))
    (previous / ".sub").mkdir()
    (tmp_path / "link").symlink_to(previous / ".sub")
    monkeypatch.chdir(tmp_path)
    assert Path("link/../result.txt").read_text() == "result"  # the input the job would read
    with pytest.raises(OutputRefusedError, match="contains the input link/../result.txt"):
        OutputFolder(previous, CMD, overwrite=True, inputs=["link/../result.txt"])
    assert (previous / "result.txt").read_text() == "result"


def test_overwrite_refuses_a_folder_that_is_not_a_previous_output(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputRefusedError, match="not a previous output of transvert-test"):
        OutputFolder(foreign, CMD, overwrite=True)
    other = tmp_path / "drr_out"
    _run_job(OutputFolder(other, "transvert-drr"))
    with pytest.raises(OutputRefusedError, match="not a previous output of transvert-test"):
        OutputFolder(other, CMD, overwrite=True)  # a marker of another command
    assert (foreign / "thesis.tex").read_text() == "years of work" and (other / "result.txt").is_file()


def test_overwrite_refuses_a_previous_output_with_an_added_file_and_replaces_a_clean_one(tmp_path):
    out = tmp_path / "out"
    _run_job(OutputFolder(out, CMD), "first")
    assert json.loads((out / MARKER_NAME).read_text())["files"] == ["result.txt"]
    _run_job(OutputFolder(out, CMD, overwrite=True), "second")  # only its own files: replaced
    assert (out / "result.txt").read_text() == "second"
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefusedError, match=r"also holds files it did not write \(notes.txt\)"):
        OutputFolder(out, CMD, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "result.txt").read_text() == "second"


def _kept(message: str, output: Path) -> Path:
    """The folder an OutputRefusedError message says the result is kept in."""
    kept = message.rsplit("the finished result is kept as ", 1)[1].rstrip(".")
    path = Path(kept)
    assert path.parent == output.parent and path.name.startswith(output.name + ".transvert-")
    return path


@pytest.mark.parametrize("appears", ["folder_with_a_file", "empty_folder", "file", "symlink"])
def test_something_appearing_at_the_output_during_the_run_is_kept_and_so_is_the_result(tmp_path, appears):
    out = tmp_path / "out"
    job = OutputFolder(out, CMD)
    staging = job.start()
    (staging / "result.txt").write_text("result")
    if appears == "folder_with_a_file":
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
    elif appears == "empty_folder":
        out.mkdir()
    elif appears == "file":
        out.write_text("theirs")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    before = out.read_bytes() if appears == "file" else _snapshot(out)
    with pytest.raises(OutputRefusedError, match="appeared during the run") as raised:
        job.commit(staging)
    kept = _kept(str(raised.value), out)
    assert (kept / "result.txt").read_text() == "result"
    assert json.loads((kept / MARKER_NAME).read_text())["command"] == CMD
    assert out.is_symlink() if appears == "symlink" else out.exists()
    assert (out.read_bytes() if appears == "file" else _snapshot(out)) == before  # what appeared is as it was
    assert not staging.exists()


def test_a_file_added_to_the_previous_output_during_an_overwrite_run_is_kept(tmp_path):
    out = tmp_path / "out"
    _run_job(OutputFolder(out, CMD), "first")
    job = OutputFolder(out, CMD, overwrite=True)  # checked at the start: only its own files
    staging = job.start()
    (staging / "result.txt").write_text("second")
    (out / "notes.txt").write_text("written during the run")
    with pytest.raises(OutputRefusedError, match=r"gained files during the run \(notes.txt\)") as raised:
        job.commit(staging)
    assert (out / "notes.txt").read_text() == "written during the run"
    assert (out / "result.txt").read_text() == "first"
    assert (_kept(str(raised.value), out) / "result.txt").read_text() == "second"


def test_two_jobs_on_one_output_path_one_wins_and_the_other_result_is_kept(tmp_path):
    out = tmp_path / "out"
    jobs = [OutputFolder(out, CMD), OutputFolder(out, CMD)]  # both checked while the path is free
    stagings = [job.start() for job in jobs]
    for k, staging in enumerate(stagings):
        (staging / "result.txt").write_text(f"job {k}")
    barrier, outcome = threading.Barrier(2), {}

    def commit(k: int) -> None:
        barrier.wait()
        try:
            outcome[k] = jobs[k].commit(stagings[k])
        except OutputRefusedError as err:
            outcome[k] = err

    threads = [threading.Thread(target=commit, args=(k,)) for k in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [k for k, v in outcome.items() if isinstance(v, Path)]
    assert len(winners) == 1
    loser = 1 - winners[0]
    assert (out / "result.txt").read_text() == f"job {winners[0]}"
    assert (_kept(str(outcome[loser]), out) / "result.txt").read_text() == f"job {loser}"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staging_of_a_killed_run_is_removed_by_the_next_start_and_a_live_one_kept(tmp_path):
    def staging(name: str, pid: int) -> Path:
        folder = tmp_path / f".out.transvert-staging-{name}"
        folder.mkdir()
        (folder / "half.nii.gz").write_bytes(b"half-written")
        lock = {"pid": pid, "host": socket.gethostname(), "started": 0, "output": str(tmp_path / "out")}
        (folder / ".transvert-staging.json").write_text(json.dumps(lock))
        return folder

    dead, live = staging("dead", _dead_pid()), staging("live", os.getpid())
    job = OutputFolder(tmp_path / "out", CMD)
    mine = job.start()
    assert not dead.exists() and live.exists() and mine.exists()
    job.discard(mine)
    assert clean_stale_staging(tmp_path) == []  # our own process is alive: kept


# ------------------------------------------------------------------------------------------------ command lines
@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    from tests.reliability.test_bad_inputs import _tiny_bundle

    torch.manual_seed(0)
    return _tiny_bundle(tmp_path_factory.mktemp("tiny") / "bundle")


@pytest.fixture
def pair(tmp_path) -> dict[str, Path]:
    """A small valid pair (1.2 mm pixels, 240 × 192 mm) with T12 and L1 in both views, in ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    side = {"pixel_spacing_mm": 1.2, "source_to_detector_mm": 1800, "source_to_patient_mm": 1500, "patient_id": "P1"}
    centroids = folder / "centroids.json"
    centroids.write_text(json.dumps({v: {"T12": [90.0, 80.0], "L1": [115.0, 80.0]} for v in ("lateral", "ap")}))
    (folder / "notes.txt").write_text("not an input, but in the input folder")
    return {
        "lateral": write_png(folder / "lat.png", gradient_image((200, 160)), {**side, "view": "lateral"}),
        "ap": write_png(folder / "ap.png", gradient_image((200, 160)), {**side, "view": "ap"}),
        "centroids": centroids,
    }


def _reconstruct(pair: dict[str, Path], bundle: Path, output: str | Path, *extra: str) -> int:
    from transvert_monai.apps.reconstruct import main

    argv = ["--lateral", str(pair["lateral"]), "--ap", str(pair["ap"]), "--centroids", str(pair["centroids"])]
    return main([*argv, "--bundle", str(bundle), "--output", str(output), "--device", "cpu", *extra])


def test_reconstruct_refuses_the_input_folder_and_the_working_directory(pair, tiny_bundle, tmp_path, monkeypatch, caplog):
    folder = pair["lateral"].parent
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert _reconstruct(pair, tiny_bundle, folder, "--overwrite") == 4
        assert "contains the input" in caplog.text
        monkeypatch.chdir(folder)
        assert _reconstruct(pair, tiny_bundle, ".", "--overwrite") == 4
        monkeypatch.chdir(folder / "..")
        assert _reconstruct(pair, tiny_bundle, "in/..", "--overwrite") == 4
    assert _snapshot(tmp_path) == before


def test_reconstruct_replaces_only_its_own_previous_output(pair, tiny_bundle, tmp_path, caplog):
    """Refused before any work; a previous output is made here as the command marks it (no network run needed)."""
    out = tmp_path / "out"
    _run_job(OutputFolder(out, "transvert-reconstruct"))
    assert _reconstruct(pair, tiny_bundle, out) == 4  # not empty, no --overwrite
    (out / "my_notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert _reconstruct(pair, tiny_bundle, out, "--overwrite") == 4
    assert "also holds files it did not write (my_notes.txt)" in caplog.text
    drr_output = tmp_path / "drr_out"
    _run_job(OutputFolder(drr_output, "transvert-drr"))
    assert _reconstruct(pair, tiny_bundle, drr_output, "--overwrite") == 4  # another command's output
    assert {k: v for k, v in _snapshot(tmp_path).items() if k in before} == before


def _ct(path: Path, array: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    """A small CT (HU) of a bright box in air, 2 mm voxels, as NIfTI."""
    from tests.data.synthetic import save_nifti

    if array is None:
        array = np.full((24, 24, 24), -1000.0, np.float32)
        array[6:18, 6:18, 6:18] = 700.0
    return save_nifti(path, array, np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine)


def _drr(ct: Path, output: Path, *extra: str) -> int:
    from transvert_monai.apps.drr import main

    return main(["--ct", str(ct), "--output", str(output), "--size", "32", "--spacing", "2.0", *extra])


def test_drr_never_writes_over_its_ct_nor_an_existing_file(tmp_path):
    ct = _ct(tmp_path / "ct.nii.gz")
    original = ct.read_bytes()
    assert _drr(ct, ct) == 4
    assert _drr(ct, ct, "--overwrite") == 4
    assert _drr(ct, tmp_path / "link.nii.gz") == 0  # a fresh output: written
    link = tmp_path / "ct_link.nii.gz"
    link.symlink_to(ct)
    assert _drr(ct, link, "--overwrite") == 4
    assert ct.read_bytes() == original
    existing = tmp_path / "lat.npy"
    existing.write_bytes(b"mine")
    assert _drr(ct, existing) == 4 and existing.read_bytes() == b"mine"
    assert _drr(ct, existing, "--overwrite") == 0 and np.load(existing).shape == (32, 32)


# ================================================================================================ silently wrong
SIDE = {"source_to_detector_mm": 1800.0, "source_to_patient_mm": 1500.0}


def _in(name: str, value: float) -> bool:
    r = PLAUSIBLE[name]
    return r.low <= value <= r.high


def _near_a_bound(value: float, *bounds: float) -> bool:
    return any(abs(value - b) <= 1e-6 * max(1.0, abs(b)) for b in bounds)


@IMAGES
@given(
    sdd=st.one_of(st.floats(80, 400), st.floats(400, 7000), st.sampled_from([180.0, 150.0, 1800.0, 1500.0])),
    sid=st.one_of(st.floats(80, 400), st.floats(300, 7000), st.sampled_from([150.0, 1500.0, 1790.0])),
    spacing=st.one_of(st.floats(0.005, 0.05), st.floats(0.05, 3.0), st.sampled_from([0.015, 0.6, 25.0])),
    rows=st.sampled_from([1, 8, 40, 64, 120]),
    cols=st.sampled_from([1, 64, 100]),
    constant=st.booleans(),
)
def test_implausible_geometry_or_content_is_refused_and_plausible_accepted(sdd, sid, spacing, rows, cols, constant):
    magnification = sdd / sid
    assume(not _near_a_bound(sdd, 500, 5000) and not _near_a_bound(sid, 300, 4800, sdd))
    assume(not _near_a_bound(magnification, 1.02, 2.0) and not _near_a_bound(spacing, 0.04, 2.0))
    assume(not _near_a_bound(min(rows, cols) * spacing, 60.0))
    plausible = (
        _in("source_to_detector_mm", sdd)
        and _in("source_to_patient_mm", sid)
        and sid < sdd
        and _in("magnification", magnification)
        and _in("pixel_spacing_mm", spacing)
        and min(rows, cols) >= 64
        and min(rows, cols) * spacing >= 60
        and not constant
    )
    image = np.full((rows, cols), 1000) if constant else gradient_image((rows, cols))
    with tempfile.TemporaryDirectory() as tmp:
        side = {"pixel_spacing_mm": spacing, "source_to_detector_mm": sdd, "source_to_patient_mm": sid}
        path = write_png(Path(tmp) / "lat.png", image, side)
        if plausible:
            radiograph = read_radiograph(path, "lateral")
            assert radiograph.source_to_detector_mm == pytest.approx(sdd)
        else:
            with pytest.raises(TransVertInputError):
                read_radiograph(path, "lateral")


@pytest.mark.parametrize(
    "tags,match",
    [
        ({"DistanceSourceToDetector": 180, "DistanceSourceToPatient": 150}, "looks like centimetres"),
        ({"DistanceSourceToDetector": 1500, "DistanceSourceToPatient": 1800}, "must be shorter"),
        ({"DistanceSourceToDetector": 1800, "DistanceSourceToPatient": 1790}, "magnification"),
        ({"ImagerPixelSpacing": [0.006, 0.006]}, "centimetres or inches"),
    ],
    ids=["cm", "swapped", "magnification-1.006", "spacing-in-cm"],
)
def test_dicom_geometry_in_the_wrong_unit_is_refused(tmp_path, tags, match):
    tags = {"ImagerPixelSpacing": [0.6, 0.6], "DistanceSourceToDetector": 1800, "DistanceSourceToPatient": 1500, **tags}
    path = write_dicom(tmp_path / "lat.dcm", gradient_image((200, 160)), **tags)
    with pytest.raises(TransVertInputError, match=match):
        read_radiograph(path, "lateral")


def _samples(pair: dict[str, Path], centroids: dict):
    from transvert_monai.transforms.radiograph import extract_radiograph_samples

    pair["centroids"].write_text(json.dumps(centroids))
    lateral, ap = read_radiograph(pair["lateral"], "lateral"), read_radiograph(pair["ap"], "ap")
    return extract_radiograph_samples(lateral, ap, pair["centroids"])


def test_centroids_out_of_order_are_refused(pair):
    swapped = {"lateral": {"T12": [115.0, 80.0], "L1": [90.0, 80.0]}, "ap": {"T12": [90.0, 80.0], "L1": [115.0, 80.0]}}
    with pytest.raises(TransVertInputError, match="lies .* above T12"):
        _samples(pair, swapped)


@pytest.mark.parametrize("gap_px", [2.0, 100.0], ids=["too-close", "too-far"])
def test_implausible_centroid_spacing_is_flagged(pair, gap_px):
    centroids = {v: {"T12": [50.0, 80.0], "L1": [50.0 + gap_px, 80.0]} for v in ("lateral", "ap")}
    checks = _samples(pair, centroids).input_checks
    flagged = [c for c in checks if c.name == "implausible_centroid_spacing"]
    assert {c.subject for c in flagged} == {"L1"} and len(flagged) == 2  # both views
    plausible = {v: {"T12": [90.0, 80.0], "L1": [115.0, 80.0]} for v in ("lateral", "ap")}  # 30 mm / level at the patient
    assert not [c for c in _samples(pair, plausible).input_checks if c.name == "implausible_centroid_spacing"]


def test_dicom_declaring_the_other_view_is_refused(tmp_path):
    tags = {"ImagerPixelSpacing": [0.6, 0.6], "DistanceSourceToDetector": 1800, "DistanceSourceToPatient": 1500}
    ap = write_dicom(tmp_path / "ap.dcm", gradient_image((200, 160)), ViewPosition="AP", **tags)
    with pytest.raises(TransVertInputError, match="swapped"):
        read_radiograph(ap, "lateral")
    assert read_radiograph(ap, "ap").view == "ap"


def _palette_png(path: Path, palette_rgb: np.ndarray, indices: np.ndarray) -> Path:
    from PIL import Image

    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(palette_rgb.astype(np.uint8).reshape(-1).tolist())
    image.save(path)
    path.with_suffix(".json").write_text(json.dumps({"pixel_spacing_mm": 0.6, **SIDE}))
    return path


def test_palette_png_is_read_through_a_grey_palette_and_a_colour_one_refused(tmp_path):
    indices = (np.arange(200 * 160).reshape(200, 160) % 256).astype(np.uint8)
    grey = 255 - (np.arange(256) * 7 % 256)  # not the identity: indices and grey levels differ
    palette = np.stack([grey, grey, grey], axis=1)
    radiograph = read_radiograph(_palette_png(tmp_path / "grey.png", palette, indices), "lateral")
    np.testing.assert_array_equal(radiograph.pixels.numpy(), grey[indices].astype(np.float32))
    colour = palette.copy()
    colour[:, 0] = np.arange(256)
    with pytest.raises(TransVertInputError, match="colours are not grey"):
        read_radiograph(_palette_png(tmp_path / "colour.png", colour, indices), "lateral")


def test_nifti_radiograph_takes_its_spacing_from_its_affine(tmp_path):
    image = gradient_image((200, 160)).astype(np.float32)
    path = tmp_path / "lat.nii.gz"
    nib.save(nib.Nifti1Image(image, np.diag([0.5, 0.6, 1.0, 1.0])), str(path))
    path.with_name("lat.json").write_text(json.dumps(SIDE))  # distances only
    assert read_radiograph(path, "lateral").pixel_spacing_mm == pytest.approx((0.5, 0.6))
    path.with_name("lat.json").write_text(json.dumps({**SIDE, "pixel_spacing_mm": 0.9}))
    with pytest.raises(TransVertInputError, match="the NIfTI affine gives a pixel spacing of 0.5 × 0.6 mm"):
        read_radiograph(path, "lateral")
    identity = write_nifti(tmp_path / "id.nii.gz", image)  # no spacing stored: the side-car's is used
    identity.with_name("id.json").write_text(json.dumps({**SIDE, "pixel_spacing_mm": 0.9}))
    assert read_radiograph(identity, "lateral").pixel_spacing_mm == pytest.approx((0.9, 0.9))


def _nan_ct(path: Path) -> tuple[Path, list[str]]:
    array = np.full((24, 24, 24), -1000.0, np.float32)
    array[3, 4, 5] = np.nan
    return _ct(path, array), []


def _kilometre_voxels(path: Path) -> tuple[Path, list[str]]:
    return _ct(path, affine=np.diag([1e6, 1e6, 1e6, 1.0])), []


def _isocentre_100_m_away(path: Path) -> tuple[Path, list[str]]:
    return _ct(path), ["--isocentre", "100000", "0", "0"]


def _singular_affine(path: Path) -> tuple[Path, list[str]]:
    header = nib.Nifti1Header()
    header.set_data_shape((24, 24, 24))
    header.set_data_dtype(np.int16)
    header.set_sform(np.eye(4), code=1)
    header["srow_z"] = [0.0, 0.0, 0.0, 30.0]
    header["qform_code"] = 0
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 24), np.int16), None, header=header), str(path))
    return path, []


def _sdd_in_cm(path: Path) -> tuple[Path, list[str]]:
    return _ct(path), ["--sdd", "180", "--sid", "150"]


@pytest.mark.parametrize(
    "make,match",
    [
        (_nan_ct, "NaN/Inf"),
        (_kilometre_voxels, "voxel spacing"),
        (_isocentre_100_m_away, "the DRR would miss it"),
        (_singular_affine, "singular"),
        (_sdd_in_cm, "looks like centimetres"),
    ],
    ids=lambda x: getattr(x, "__name__", "").strip("_") or None,
)
def test_drr_of_an_implausible_ct_exits_3_and_writes_nothing(tmp_path, caplog, make, match):
    ct, extra = make(tmp_path / "ct.nii.gz")
    with caplog.at_level(logging.ERROR):
        assert _drr(ct, tmp_path / "lat.nii.gz", *extra) == 3
    assert match in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


@pytest.mark.parametrize("case_id", [".", "..", "a/b", "../x", "", " a"])
def test_case_ids_that_are_not_plain_folder_names_are_refused(case_id):
    from transvert_monai.data.prepare import check_case_id

    with pytest.raises(TransVertInputError, match="not a plain folder name"):
        check_case_id(case_id, "sub-01_ct.nii.gz")
    assert check_case_id("sub-01.v2", "x") == "sub-01.v2"


# ================================================================================================ messages
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_folder_or_a_fifo_as_an_input_is_named_as_such(tmp_path, kind):
    path = tmp_path / "thing"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    expected = "is a folder, not a file" if kind == "folder" else "is a FIFO"
    with pytest.raises(TransVertInputError, match=expected):
        read_radiograph(path, "lateral")
    with pytest.raises(TransVertInputError, match=expected):
        read_centroids_2d(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_absent_cuda_device_is_an_environment_problem():
    from transvert_monai.resources import resolve_device

    with pytest.raises(EnvironmentProblemError, match="use --device cpu"):
        resolve_device("cuda:7")


def test_an_absent_device_index_is_an_environment_problem():
    from transvert_monai.resources import resolve_device

    if not torch.cuda.is_available():
        pytest.skip("no CUDA here (the case above covers it)")
    with pytest.raises(EnvironmentProblemError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_a_missing_package_names_what_needs_it_and_the_install_command():
    from transvert_monai.resources import require_module

    with pytest.raises(EnvironmentProblemError, match=r"writing meshes needs the Python package 'no_such_module_xyz'.*pip install"):
        require_module("no_such_module_xyz", "writing meshes")


class _Payload:
    """A class a malicious checkpoint could pickle (loading it would run code)."""


@pytest.mark.parametrize("content", [{"x": _Payload()}, _Payload], ids=["instance", "class"])
def test_a_refused_checkpoint_never_advises_weights_only_false(tmp_path, content):
    from transvert_monai.io.checkpoint import load_plain_checkpoint

    path = tmp_path / "model.pt"
    torch.save(content, path)
    with pytest.raises(UnreadableFileError) as raised:
        load_plain_checkpoint(path)
    assert "not a plain weights file" in str(raised.value) and "weights_only=False" not in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("override", [{"max_epochs": "abc"}, {"max_epochs": 2.5}, {"epoch_length": "3"}])
def test_training_counts_of_the_wrong_type_are_refused(override):
    from transvert_monai.engines import TransVertTrainer

    network = torch.nn.Linear(1, 1)
    args = {"device": "cpu", "max_epochs": 1, "train_data_loader": [], "network": network,
            "optimizer": torch.optim.SGD(network.parameters(), lr=0.1), "adversarial": False, **override}  # fmt: skip
    name = next(iter(override))
    with pytest.raises(ConfigTypeError, match=f"`{name}` must be a positive whole number"):
        TransVertTrainer(**args)


def test_an_empty_data_list_is_refused(tmp_path):
    from transvert_monai.data import load_datalist

    path = tmp_path / "list.json"
    path.write_text(json.dumps({"training": [], "validation": [], "testing": []}))
    with pytest.raises(TransVertInputError, match="has no entries under 'training', so there is nothing to train on"):
        load_datalist(path, "training", tmp_path)


def test_a_memory_plan_no_machine_has_is_refused_before_the_work():
    from transvert_monai.resources import check_memory

    with pytest.raises(EnvironmentProblemError, match="more than any machine has.*use a smaller --size"):
        check_memory(1e30, "rendering a huge detector", "use a smaller --size")
    check_memory(1024, "a small plan", "nothing")


def _version_mains():
    from transvert_monai.apps.drr import main as drr
    from transvert_monai.apps.example import main as example
    from transvert_monai.apps.reconstruct import main as reconstruct
    from transvert_monai.data.prepare import main as prepare
    from transvert_monai.outputs.report import main as report

    return {"transvert-reconstruct": reconstruct, "transvert-drr": drr, "transvert-prepare": prepare,
            "transvert-example": example, "transvert-report": report}  # fmt: skip


@pytest.mark.parametrize("command", ["transvert-reconstruct", "transvert-drr", "transvert-prepare", "transvert-example", "transvert-report"])
def test_every_command_prints_the_package_version(command, capsys):
    with pytest.raises(SystemExit) as done:
        _version_mains()[command](["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"{command} {transvert_monai.__version__}"


def test_the_version_has_one_source():
    assert importlib.metadata.version("transvert_monai") == transvert_monai.__version__
    metadata = json.loads((ROOT / "bundles" / "transvert" / "configs" / "metadata.json").read_text())
    assert metadata["required_packages_version"]["transvert_monai"] == transvert_monai.__version__
    assert "version = attr: transvert_monai.__version__" in (ROOT / "setup.cfg").read_text()


# ================================================================================================ exit codes
@pytest.mark.parametrize(
    "error,code",
    [
        (OutputRefusedError("x"), 4),
        (EnvironmentProblemError("x"), 5),
        (MemoryError(), 5),
        (ModuleNotFoundError("no module named 'trimesh'", name="trimesh"), 5),  # an optional package
        (ModuleNotFoundError("x", name="transvert_monai.nothing"), 1),  # a broken import of our own: a bug
        (ImportError("cannot import name 'X' from 'monai.config'"), 1),
        (TransVertInputError("x"), 3),
        (UnreadableFileError("x"), 3),
        (CheckpointMismatchError("x"), 3),
        (ConfigTypeError("x"), 3),
        (FileNotFoundError("x"), 3),
        (PermissionError("x"), 3),
        (ValueError("x"), 3),
        (KeyboardInterrupt(), 130),
        (RuntimeError("x"), 1),
        (AssertionError("x"), 1),
    ],
    ids=lambda x: f"{type(x).__name__}-{getattr(x, 'name', None) or ''}" if isinstance(x, BaseException) else None,
)
def test_each_kind_of_failure_has_its_exit_code(error, code):
    from transvert_monai.cli import exit_code, run_command

    assert exit_code(error) == code

    def body():
        raise error

    assert run_command("transvert-test", body) == code


def test_a_usage_error_exits_2_and_success_0(capsys):
    from transvert_monai.apps.reconstruct import main
    from transvert_monai.cli import run_command

    with pytest.raises(SystemExit) as done:
        main(["--lateral", "x.png"])  # no --output
    assert done.value.code == 2
    assert run_command("transvert-test", lambda: None) == 0


# ================================================================================================ HD95
@pytest.mark.parametrize("get_not_nans", [False, True])
def test_hd95_of_an_all_empty_batch_is_nan_not_a_perfect_zero(get_not_nans):
    from transvert_monai.metrics import VertebraHausdorffMetric

    metric = VertebraHausdorffMetric(percentile=95, get_not_nans=get_not_nans)
    empty = torch.zeros(2, 1, 8, 8, 8)
    with pytest.warns(UserWarning, match="no surface"):
        metric(y_pred=empty, y=empty, label_index=20)
    value = metric.aggregate()
    value, count = value if get_not_nans else (value, None)
    assert torch.isnan(value).all()
    assert count is None or int(count) == 0


# ================================================================================================ the table
def test_every_test_the_bad_inputs_table_names_exists():
    """Each row of bundles/transvert/docs/bad_inputs.md names tests; they must exist (renamed tests break rows)."""
    import re

    doc = (ROOT / "bundles" / "transvert" / "docs" / "bad_inputs.md").read_text()
    sources = {p.name: p.read_text() for p in [*(ROOT / "tests" / "reliability").glob("test_*.py"), ROOT / "tests" / "test_engines.py"]}
    named = re.findall(r"`(?:(?:tests/)?(?:[\w/]*?)(test_\w+\.py)::|…::)?(test_\w+)(?:\[[^\]]*\])?`", doc)
    assert len(named) > 60
    missing = [f"{file}::{name}" for file, name in named
               if not any(f"def {name}(" in src for f, src in sources.items() if not file or f == file)]  # fmt: skip
    assert not missing, f"bad_inputs.md names tests that do not exist: {missing}"

