"""The HTML report of a reconstruction folder, checked as written and as a real headless Chromium draws it.

The folder is synthetic but made by the package's own writers: a label map of vertebra-like shapes
(body, arch, spinous process), its meshes from ``write_meshes`` and its ``summary.json`` from
``vertebra_summary_rows`` / ``write_summary``, plus pose angles, alignment measures and provenance
with markup in their text. Browser tests need Debian's ``chromium`` (``apt-get install -y chromium``)
and are skipped, saying so, only where no Chromium binary is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_affine
from transvert_monai.data.labels import label_to_name
from transvert_monai.errors import TransVertInputError
from transvert_monai.outputs import vertebra_summary_rows, write_meshes, write_summary
from transvert_monai.outputs.report import decimate_mesh, main, write_report

pytest.importorskip("trimesh")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary on PATH; install it with `apt-get install -y chromium`"
)
LABELS = (20, 21, 22, 23)  # L1–L4
NO_MESH = "L3"  # its mesh files are removed: still in the tables, flagged "no mesh"
INJECTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
WINDOW = (1200, 900)
PLOT_BOX = (40, 185, 780, 800)  # (left, top, right, bottom) of the 3D view at WINDOW, left of the legend


def synthetic_spine(labels, pitch_mm: float = 26.0, spacing=(1.0, 1.0, 1.5)):
    """A (X, Y, Z) RAS label map of vertebra-like shapes stacked along +S, cranial first, and its affine."""
    n = len(labels)
    shape = (64, 96, int((n * pitch_mm + 20) / spacing[2]))
    affine = make_affine(spacing=spacing, origin=(-32.0, -60.0, -10.0))
    # world coordinates (mm) of every voxel centre
    idx = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), axis=-1).astype(np.float64)
    x, y, z = np.moveaxis(idx @ affine[:3, :3].numpy().T + affine[:3, 3].numpy(), -1, 0)
    volume = np.zeros(shape, dtype=np.uint8)
    for k, label in enumerate(labels):
        cz = (n - 1 - k) * pitch_mm + 10.0  # cranial vertebra highest
        cx = 4.0 * np.sin(k)  # a slight lateral curve
        dz = np.abs(z - cz)
        body = ((x - cx) ** 2 / 16.0**2 + y**2 / 12.0**2 <= 1) & (dz <= 7)
        ring = np.hypot(x - cx, y + 20.0)
        arch = (ring >= 6) & (ring <= 10) & (dz <= 4)
        spine = (np.abs(x - cx) <= 2.5) & (y <= -28) & (y >= -42) & (dz <= 3)
        volume[body | arch | spine] = label
    return volume, affine


def write_synthetic_reconstruction(folder: Path, labels=LABELS, no_mesh: str | None = NO_MESH) -> Path:
    """A reconstruction output folder as transvert-reconstruct lays it out (no NIfTI files: the report reads none)."""
    volume, affine = synthetic_spine(labels)
    write_meshes(torch.from_numpy(volume), affine, folder / "meshes", formats=("ply", "stl"))
    if no_mesh is not None:
        for path in (folder / "meshes").glob(f"{no_mesh}.*"):
            path.unlink()
    centres_voxel = np.array([np.argwhere(volume == v).mean(0) for v in labels])
    centres = centres_voxel @ affine[:3, :3].numpy().T + affine[:3, 3].numpy()
    rows = vertebra_summary_rows(volume, affine, labels, centres, [0.4 + 0.1 * k for k in range(len(labels))])
    for k, row in enumerate(rows):
        angles = {"flexion": 2.0 * k, "lateral_bending": -1.5 * k, "axial_rotation": 0.5}
        row["pose"] = {"angles_deg": {"convention": "intrinsic ZYX", **angles}}
    summary_path = write_summary(folder / "summary.json", rows, placement="cone_beam")
    summary = json.loads(summary_path.read_text())
    summary["alignment"] = {
        "measures": [
            {"key": "lumbar_lordosis", "name": "Lumbar lordosis", "value_deg": 41.25, "levels": ["L1", "L4"],
             "definition": "angle between the upper endplate of L1 and the lower endplate of L4",
             "reference": "Vrtovec et al. 2009", "absent_reason": None},
            {"key": "thoracic_kyphosis", "name": "Thoracic kyphosis <T4–T12>", "value_deg": None,
             "levels": ["T4", "T12"], "definition": "Cobb angle T4–T12", "reference": "",
             "absent_reason": "<b>T4 and T12 not reconstructed</b>"},
        ]
    }  # fmt: skip
    summary["software"] = {"name": "transvert_monai", "version": "0.3"}
    summary["model"] = {"weights": f"bundle/{INJECTED}/model.pt", "sampling_grid": {"patch_size": [128, 128]}}
    summary_path.write_text(json.dumps(summary, indent=2))
    for view in ("lateral", "ap"):
        image = np.zeros((120, 80, 3), dtype=np.uint8)
        image[20:100, 30:50] = (200, 60, 40) if view == "lateral" else (40, 60, 200)
        Image.fromarray(image).save(folder / f"overlay_{view}.png")
    return folder


class _Text(HTMLParser):
    """Visible text of a page (script and style contents left out) and the tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self.tags, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def chromium(url: str, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    """Run headless Chromium once (WebGL through SwiftShader, every network request sent to a dead proxy)."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--enable-logging=stderr", "--v=0", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>", f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=15000", *mode, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_errors(stderr: str) -> list[str]:
    """Chromium's stderr log writes every console message at INFO: keep the uncaught errors and refusals."""
    failure = re.compile(r"Uncaught|Refused to|Failed to load|net::ERR_")
    return [line for line in stderr.splitlines() if ":CONSOLE" in line and failure.search(line)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_synthetic_reconstruction(tmp_path_factory.mktemp("reconstruction"))


@pytest.fixture(scope="module")
def report(folder):
    return write_report(folder)


@pytest.fixture(scope="module")
def summary(folder):
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def loaded(report, tmp_path_factory):
    """The page's DOM after its scripts ran, and Chromium's log."""
    if CHROMIUM is None:
        pytest.skip("no Chromium binary on PATH; install it with `apt-get install -y chromium`")
    run = chromium(report.as_uri(), tmp_path_factory.mktemp("profile"), "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, run.stderr


def status(dom: str) -> dict[str, str]:
    return next(attrs for tag, attrs in parse(dom).tags if attrs.get("id") == "report-status")


def test_report_is_written_into_the_folder_by_default(folder, report):
    assert report == folder / "report.html" and report.stat().st_size > 0


@needs_chromium
def test_page_loads_and_draws_with_no_errors(loaded):
    dom, log = loaded
    state = status(dom)
    errors = [li for li in re.findall(r'<ul id="report-errors"[^>]*>(.*?)</ul>', dom, re.S) if li.strip()]
    assert (state["data-plot"], state["data-errors"], errors) == ("ready", "0", [])
    assert console_errors(log) == []


@needs_chromium
def test_every_vertebra_name_is_in_the_dom(loaded, summary):
    text = " ".join(parse(loaded[0]).text)
    for row in summary["vertebrae"]:
        assert re.search(rf"\b{re.escape(row['name'])}\b", text), row["name"]


@needs_chromium
def test_the_3d_view_is_drawn_in_colour(report, tmp_path):
    shot = tmp_path / "page.png"
    run = chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={shot}")
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    left, top, right, bottom = PLOT_BOX
    region = pixels[top:bottom, left:right]
    coloured = (region.max(-1) - region.min(-1)) > 40  # the vertebrae are tab10 colours; axes and text are grey
    assert region.std() > 20 and coloured.mean() > 0.03, (region.std(), coloured.mean())


@needs_chromium
def test_a_vertebra_named_in_the_address_fills_the_side_panel(report, summary, tmp_path):
    row = summary["vertebrae"][1]
    run = chromium(report.as_uri() + f"#vertebra={row['name']}", tmp_path / "profile", "--dump-dom")
    panel = re.search(r'<aside id="vertebra-panel">(.*?)</aside>', run.stdout, re.S).group(1)
    text = " ".join(parse(panel).text)
    assert row["name"] in text and f"{row['volume_ml']:.1f}" in text and "flexion" in text


def test_page_needs_no_network(report):
    page = report.read_text(encoding="utf-8")
    # every reference in the markup is inline; plotly.js's own strings (attribution links of map tiles) are not markup
    references = [
        (t, k, v) for t, attrs in parse(page).tags for k, v in attrs.items() if k in ("src", "href", "data", "action")
    ]
    assert all(str(v).startswith(("data:", "#")) for _, _, v in references), references
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S | re.I)
    assert not re.search(r"https?://", markup, re.I)
    assert "default-src 'none'" in page  # the Content-Security-Policy forbids any fetch


def test_text_from_the_summary_is_escaped(report):
    page = report.read_text(encoding="utf-8")
    assert "<script>document.title" not in page and "<img src=x" not in page and "<b>T4" not in page
    text = " ".join(parse(page).text)
    assert INJECTED in text and "<b>T4 and T12 not reconstructed</b>" in text


def test_tables_show_measures_absences_and_pose(report, folder):
    text = " ".join(parse(report.read_text(encoding="utf-8")).text)
    assert "41.2" in text and "absent: <b>T4 and T12 not reconstructed</b>" in text
    assert "flexion (°)" in text and "intrinsic ZYX" in text and "transvert_monai" in text


def test_a_vertebra_without_mesh_stays_in_the_table_flagged(report):
    rows = re.findall(r'<tr data-row="\d+"[^>]*>(.*?)</tr>', report.read_text(encoding="utf-8"), re.S)
    cells = {parse(r).text[0]: [c for c in parse(r).text] for r in rows}
    assert set(cells) == {label_to_name(v) for v in LABELS}
    assert "no mesh" in cells[NO_MESH] and all("no mesh" not in c for n, c in cells.items() if n != NO_MESH)


def test_without_alignment_the_page_says_posture_was_not_computed(folder, tmp_path):
    summary = json.loads((folder / "summary.json").read_text())
    del summary["alignment"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("report.html"))
    (copy / "summary.json").write_text(json.dumps(summary))
    page = write_report(copy, tmp_path / "page.html").read_text(encoding="utf-8")
    assert "Posture measures were not computed" in page


def test_folder_without_summary_is_refused_naming_it(tmp_path):
    message = re.escape(str(tmp_path)) + r".*no summary\.json.*transvert-reconstruct"
    with pytest.raises(TransVertInputError, match=message):
        write_report(tmp_path)
    assert main([str(tmp_path)]) == 3  # bad input (transvert_monai.cli)


def test_title_names_the_folder_unless_given(folder, report, tmp_path):
    assert f"TransVert reconstruction: {folder.name}" in report.read_text(encoding="utf-8")
    page = write_report(folder, tmp_path / "page.html", title="spine <of> patient 7").read_text(encoding="utf-8")
    assert "<title>spine &lt;of&gt; patient 7</title>" in page


def test_command_line_writes_the_named_file(folder, tmp_path):
    out = tmp_path / "page.html"
    assert main([str(folder), "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_decimation_keeps_the_budget_and_the_extent():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=5, radius=10.0)  # 20480 faces
    vertices, faces = decimate_mesh(sphere.vertices, sphere.faces, 2000)
    assert 500 < len(faces) <= 2000 and faces.max() < len(vertices)
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1).max(), 10.0, atol=1.0)
    assert decimate_mesh(sphere.vertices, sphere.faces, 10**6)[1].shape == sphere.faces.shape
