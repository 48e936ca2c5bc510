"""``report.html``: one self-contained page of a reconstruction output folder, opened from disk.

The page holds, with no server and no network (every script inlined, images as ``data:`` URIs, and
a Content-Security-Policy that forbids any fetch):

* the vertebra meshes (``meshes/<name>.ply``, else ``.stl`` / ``.obj``) in an interactive plotly 3D
  view, one trace per vertebra in the colours of :func:`~transvert_monai.outputs.label_colour`;
  hovering shows a vertebra's numbers and clicking it (or its table row) fills the side panel;
* the lateral and AP radiographs with their overlays (``overlay_lateral.png``, ``overlay_ap.png``);
* the alignment measures (``summary.json["alignment"]["measures"]``), absent ones with their reason;
* the per-vertebra table with quality flags, and pose angles when the rows carry ``pose``;
* provenance: every other top-level key of ``summary.json`` (``software``, ``model``, ...).

Meshes are decimated by vertex clustering to at most ``max_faces_per_vertebra`` faces each, which
keeps a 17-vertebra page near 5 MB (4.9 MB of it plotly.js) and its first draw well under 2 s.
Every text taken from the folder is HTML-escaped. The page records its own script errors and draw
state in ``#report-status`` (``data-plot``: ``pending`` / ``ready`` / ``failed`` / ``none``;
``data-errors``), lists errors visibly, and a headless browser can read them back.

    python -m transvert_monai.outputs.report <folder> [--output report.html]
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from transvert_monai.data.atomic import atomic_write
from transvert_monai.data.labels import is_vertebra_label
from transvert_monai.errors import TransVertInputError, UnreadableFileError
from transvert_monai.outputs.meshes import load_mesh_ras
from transvert_monai.outputs.palette import label_colour

__all__ = ["REPORT_NAME", "decimate_mesh", "write_report", "main", "entry_point"]

logger = logging.getLogger(__name__)

#: Default file name of the page inside the output folder.
REPORT_NAME = "report.html"
_MESH_SUFFIXES = (".ply", ".stl", ".obj")
_RADIOGRAPHS = (("overlay_lateral.png", "Lateral radiograph"), ("overlay_ap.png", "AP radiograph"))
_POSE_COLUMNS = (
    ("flexion", "flexion (°)"),
    ("lateral_bending", "lateral bending (°)"),
    ("axial_rotation", "axial rotation (°)"),
)
# top-level summary keys shown in their own sections; every other key is provenance
_SHOWN_KEYS = frozenset({"vertebrae", "alignment", "skipped", "units", "coordinate_system", "placement"})
_PROVENANCE_FIRST = ("software", "model")
_NO_MESH = "no mesh"
_PANEL_ONLY = frozenset({"angle convention", "pose method", "mesh"})
_GREY = np.array([0.6, 0.6, 0.6])


def decimate_mesh(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Fewer faces by vertex clustering: vertices in one grid cell merge into their mean.

    The cell starts near the size that leaves ``max_faces`` faces on a closed surface and grows by
    15 % until at most ``max_faces`` remain; collapsed and repeated faces are dropped. Enough for
    display, not for measurement.

    Args:
        vertices: (V, 3) float positions (mm).
        faces: (F, 3) vertex indices.
        max_faces: face budget (≥ 4).

    Returns:
        ``(vertices, faces)``: float32 (V', 3) and int32 (F', 3), unchanged if already within budget.

    Raises:
        ValueError: a budget under 4, or arrays not of shape (N, 3).
    """
    if max_faces < 4:
        raise ValueError(f"`max_faces` must be at least 4, got {max_faces}.")
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"decimate_mesh expects (V, 3) vertices and (F, 3) faces, got {vertices.shape} and {faces.shape}."
        )
    if len(faces) <= max_faces:
        return vertices.astype(np.float32), faces.astype(np.int32)
    # a closed surface clustered on a grid of cell c keeps about 2 · area / c² faces: start a little finer
    corner = vertices[faces]
    area = 0.5 * float(np.linalg.norm(np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0]), axis=1).sum())
    cell = max(0.8 * math.sqrt(2.0 * area / max_faces), 1e-6)
    while True:
        # one cluster per occupied grid cell (cell indices packed in one int64); its vertex is the mean
        keys = np.floor((vertices - vertices.min(0)) / cell).astype(np.int64)
        size = keys.max(0) + 1
        packed = (keys[:, 0] * size[1] + keys[:, 1]) * size[2] + keys[:, 2]
        _, cluster, counts = np.unique(packed, return_inverse=True, return_counts=True)
        cluster = cluster.reshape(-1)
        merged = np.stack([np.bincount(cluster, weights=vertices[:, d]) for d in range(3)], axis=1) / counts[:, None]
        new = cluster[faces]
        keep = (new[:, 0] != new[:, 1]) & (new[:, 1] != new[:, 2]) & (new[:, 0] != new[:, 2])
        new = new[keep]
        # a face and its repeats (any rotation or winding) keep one copy, the first
        ordered = np.sort(new, axis=1)
        n = len(counts)
        _, first = np.unique((ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2], return_index=True)
        new = new[np.sort(first)]
        if len(new) <= max_faces:
            break
        cell *= 1.15
    used, remap = np.unique(new, return_inverse=True)
    return merged[used].astype(np.float32), remap.reshape(-1, 3).astype(np.int32)


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not folder.is_dir():
        raise TransVertInputError(
            f"the report needs a reconstruction output folder, but {str(folder)!r} is not a folder; "
            "pass the `--output` folder of transvert-reconstruct."
        )
    if not path.is_file():
        raise TransVertInputError(
            f"{str(folder)!r} has no summary.json, so it is not a reconstruction output folder; pass the folder "
            "that transvert-reconstruct (or transvert-example) wrote, or rerun the reconstruction into it."
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableFileError(
            f"{str(path)!r} is not valid JSON ({err}); rerun the reconstruction to rewrite it."
        ) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("vertebrae"), list):
        raise TransVertInputError(
            f"{str(path)!r} must be a JSON object with a `vertebrae` list (see transvert_monai.outputs.summary); "
            "rerun the reconstruction to rewrite it."
        )
    return summary


def _find_mesh(folder: Path, name: str) -> Path | None:
    if not name or Path(name).name != name or name in (".", ".."):  # a name is a file name, never a path
        return None
    for suffix in _MESH_SUFFIXES:
        path = folder / "meshes" / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        import trimesh  # noqa: F401 - checked here for a clear message
    except ImportError as err:
        raise ImportError(
            "reading the meshes of the report needs trimesh: pip install 'transvert_monai[mesh]'."
        ) from err
    try:
        mesh = load_mesh_ras(path)  # the files are LPS (SPACE=LPS); the page's axes are RAS
    except Exception as err:  # noqa: BLE001 - any parser failure means the same: this mesh cannot be shown
        logger.warning("mesh %s could not be read (%s); its vertebra is shown without a mesh", path, err)
        return None
    if len(getattr(mesh, "faces", ())) == 0:
        logger.warning("mesh %s has no faces; its vertebra is shown without a mesh", path)
        return None
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: object, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.0"


def _centre(value: object) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return ", ".join(_number(v, 1) for v in value)
    return "—" if value is None else str(value)


def _pose_angles(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    pose = row.get("pose")
    angles = pose.get("angles_deg") if isinstance(pose, Mapping) else None
    return angles if isinstance(angles, Mapping) else None


def _vertebra_facts(row: Mapping[str, Any], mesh_note: str) -> list[tuple[str, str]]:
    """(field, text) pairs of one vertebra, for the hover text and the side panel."""
    checks = row.get("quality_checks")
    facts = [
        ("vertebra", str(row.get("name", "?"))),
        ("label", str(row.get("label", "?"))),
        ("centre (mm, RAS)", _centre(row.get("centre_mm"))),
        ("volume (ml)", _number(row.get("volume_ml"), 1)),
        ("voxels", _number(row.get("voxels"), 0)),
        ("residual (mm)", _number(row.get("residual_mm"), 2)),
        ("quality", str(row.get("quality", "—"))),
        ("failed checks", ", ".join(map(str, checks)) if isinstance(checks, list) and checks else "none"),
    ]
    angles = _pose_angles(row)
    if angles is not None:
        facts += [(title, _number(angles.get(key), 1)) for key, title in _POSE_COLUMNS]
        facts.append(("angle convention", str(angles.get("convention", "—"))))
        if isinstance(row["pose"].get("method"), str):
            facts.append(("pose method", row["pose"]["method"]))
    facts.append(("mesh", mesh_note))
    return facts


def _figure(traces: list[go.Mesh3d], low_mm: np.ndarray, high_mm: np.ndarray) -> go.Figure:
    """The 3D scene: true proportions, its longest side one unit, so a long spine fits the view whole."""
    low_mm, high_mm = low_mm - 5.0, high_mm + 5.0
    extent = high_mm - low_mm
    ratio = extent / extent.max()
    axis = dict(showbackground=False, gridcolor="#ddd", zeroline=False)
    layout = go.Layout(
        margin=dict(l=0, r=0, t=0, b=0),
        showlegend=True,
        legend=dict(itemclick="toggle", itemdoubleclick="toggleothers", x=1.0, xanchor="right", y=0.93),
        scene=dict(
            aspectmode="manual",
            aspectratio=dict(x=ratio[0], y=ratio[1], z=ratio[2]),
            xaxis=dict(title="x (mm, +R)", range=[low_mm[0], high_mm[0]], **axis),
            yaxis=dict(title="y (mm, +A)", range=[low_mm[1], high_mm[1]], **axis),
            zaxis=dict(title="z (mm, +S)", range=[low_mm[2], high_mm[2]], **axis),
            # from the patient's right, a little anterior and above
            camera=dict(eye=dict(x=1.35, y=0.65, z=0.2), up=dict(x=0, y=0, z=1)),
        ),
        paper_bgcolor="white",
    )
    return go.Figure(data=traces, layout=layout)


def _radiographs_html(folder: Path) -> str:
    figures = []
    for file_name, title in _RADIOGRAPHS:
        path = folder / file_name
        data = path.read_bytes() if path.is_file() else b""
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            body = f'<img src="{uri}" alt="{_esc(title)} with the reconstruction overlaid">'
        else:
            body = f'<p class="absent">{_esc(file_name)} is not in this folder (or is not a PNG).</p>'
        figures.append(f"<figure>{body}<figcaption>{_esc(title)} ({_esc(file_name)})</figcaption></figure>")
    return '<div class="radiographs">' + "".join(figures) + "</div>"


def _levels(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "–".join(map(str, value)) if len(value) == 2 else ", ".join(map(str, value))
    return "—" if value is None else str(value)


def _alignment_html(summary: Mapping[str, Any]) -> str:
    alignment = summary.get("alignment")
    if not isinstance(alignment, Mapping):
        return '<p class="absent">Posture measures were not computed for this reconstruction.</p>'
    measures = alignment.get("measures")
    if not isinstance(measures, list) or not measures:
        return '<p class="absent">The summary\'s alignment section lists no measure.</p>'
    rows = []
    for m in measures:
        m = m if isinstance(m, Mapping) else {"name": m}
        value = m.get("value_deg")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown, cls = _number(value, 1), "value"
        else:
            shown, cls = "absent: " + str(m.get("absent_reason") or "no reason given"), "absent"
        rows.append(
            f'<tr><td>{_esc(m.get("name", m.get("key", "?")))}<br><code>{_esc(m.get("key", ""))}</code></td>'
            f'<td class="{cls}">{_esc(shown)}</td><td>{_esc(_levels(m.get("levels")))}</td>'
            f'<td>{_esc(m.get("definition", ""))}</td><td>{_esc(m.get("reference", ""))}</td></tr>'
        )
    head = "<tr><th>measure</th><th>value (°)</th><th>levels</th><th>definition</th><th>reference</th></tr>"
    return f'<table class="alignment"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _vertebra_table_html(rows: Sequence[Mapping[str, Any]], mesh_notes: Sequence[str]) -> str:
    has_pose = any(_pose_angles(r) is not None for r in rows)
    head = ["vertebra", "centre (mm, RAS)", "volume (ml)", "residual (mm)", "quality", "mesh"]
    if has_pose:
        head += [title for _, title in _POSE_COLUMNS]
    body = []
    for i, (row, note) in enumerate(zip(rows, mesh_notes)):
        flagged = row.get("quality", "ok") != "ok"
        cells = [
            str(row.get("name", "?")),
            _centre(row.get("centre_mm")),
            _number(row.get("volume_ml"), 1),
            _number(row.get("residual_mm"), 2),
            str(row.get("quality", "—")),
            note,
        ]
        if has_pose:
            angles = _pose_angles(row) or {}
            cells += [_number(angles.get(key), 1) for key, _ in _POSE_COLUMNS]
        tds = "".join(
            f'<td class="{"flag" if (k == 4 and flagged) or (k == 5 and note == _NO_MESH) else ""}">{_esc(c)}</td>'
            for k, c in enumerate(cells)
        )
        body.append(f'<tr data-row="{i}" tabindex="0">{tds}</tr>')
    conventions = sorted({str(a.get("convention")) for r in rows if (a := _pose_angles(r)) and a.get("convention")})
    caption = f"<caption>pose angles: {_esc(', '.join(conventions))}</caption>" if conventions else ""
    ths = "".join(f"<th>{_esc(h)}</th>" for h in head)
    return f'<table class="vertebrae">{caption}<thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _value_html(value: object, depth: int = 0) -> str:
    if isinstance(value, Mapping) and depth < 4:
        items = "".join(f"<dt>{_esc(k)}</dt><dd>{_value_html(v, depth + 1)}</dd>" for k, v in value.items())
        return f"<dl>{items}</dl>"
    if isinstance(value, list) and depth < 4 and any(isinstance(v, (Mapping, list)) for v in value):
        return "<ol>" + "".join(f"<li>{_value_html(v, depth + 1)}</li>" for v in value) + "</ol>"
    if isinstance(value, list):
        return _esc(", ".join(map(str, value)))
    return _esc(json.dumps(value) if isinstance(value, (Mapping, list)) or value is None else value)


def _provenance_html(summary: Mapping[str, Any]) -> str:
    keys = [k for k in _PROVENANCE_FIRST if k in summary] + sorted(
        k for k in summary if k not in _SHOWN_KEYS and k not in _PROVENANCE_FIRST
    )
    if not keys:
        return '<p class="absent">The summary records no provenance (software, model).</p>'
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_value_html(summary[k])}</dd>" for k in keys)
    return f'<dl class="provenance">{items}</dl>'


def _script_json(data: object) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left to end the element."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# first script of the page: record errors (uncaught, failed resources, CSP refusals, console.error) so
# the page shows them and a headless browser can read them from #report-status
_ERROR_CAPTURE_JS = """
(function () {
  var errors = [];
  window.reportErrors = errors;
  function show() {
    var status = document.getElementById("report-status"), list = document.getElementById("report-errors");
    if (!status || !list) return;
    status.setAttribute("data-errors", String(errors.length));
    list.textContent = "";
    errors.forEach(function (e) { var li = document.createElement("li"); li.textContent = e; list.appendChild(li); });
    list.hidden = errors.length === 0;
  }
  window.reportError = function (message) { errors.push(String(message)); show(); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    window.reportError(e.message || ("could not load " + ((t && (t.src || t.href)) || "a resource")));
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    window.reportError("unhandled rejection: " + e.reason);
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    window.reportError("blocked by the page's security policy: " + e.blockedURI + " (" + e.violatedDirective + ")");
  });
  var consoleError = console.error;
  console.error = function () {
    window.reportError(Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  document.addEventListener("DOMContentLoaded", show);
})();
"""

_MAIN_JS = """
(function () {
  var status = document.getElementById("report-status");
  status.setAttribute("data-script-ms", performance.now().toFixed(1));  // plotly.js parsed and run by now
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var panel = document.getElementById("vertebra-panel");
  var rows = document.querySelectorAll("table.vertebrae tbody tr");
  var plot = document.getElementById("spine-3d");
  var selected = -1;
  function show(i) {
    selected = i;
    panel.textContent = "";
    var dl = document.createElement("dl");
    data.facts[i].forEach(function (f) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = f[0]; dd.textContent = f[1]; dl.appendChild(dt); dl.appendChild(dd);
    });
    panel.appendChild(dl);
    rows.forEach(function (r) { r.classList.toggle("selected", Number(r.dataset.row) === i); });
    if (plot.data) {
      var opacity = data.trace_rows.map(function (r) { return r === i ? 1.0 : 0.25; });
      Plotly.restyle(plot, {opacity: opacity});
    }
  }
  rows.forEach(function (r) {
    r.addEventListener("click", function () { show(Number(r.dataset.row)); });
    r.addEventListener("keydown", function (e) { if (e.key === "Enter") show(Number(r.dataset.row)); });
  });
  if (data.trace_rows.length === 0) {
    plot.textContent = "No vertebra of this folder has a mesh to show.";
    status.setAttribute("data-plot", "none");
    return;
  }
  var figure = JSON.parse(document.getElementById("report-figure").textContent);
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["toImage"]};
  Plotly.newPlot(plot, figure.data, figure.layout, config).then(function () {
    plot.on("plotly_click", function (e) {
      if (e.points.length) show(data.trace_rows[e.points[0].curveNumber]);
    });
    // report.html#vertebra=L1 opens with L1 selected
    var wanted = decodeURIComponent(location.hash.replace(/^#vertebra=/, ""));
    var index = data.names.indexOf(wanted);
    if (location.hash.indexOf("#vertebra=") === 0 && index >= 0) show(index);
    status.setAttribute("data-plot", "ready");
    status.setAttribute("data-ready-ms", performance.now().toFixed(1));
  }).catch(function (err) {
    status.setAttribute("data-plot", "failed");
    plot.textContent = "The 3D view could not be drawn (" + err + "); the tables below are complete.";
    window.reportError("3D view: " + err);
  });
})();
"""

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.viewer { display: flex; gap: 1em; align-items: stretch; }
#spine-3d { flex: 1 1 auto; height: 640px; min-width: 300px; border: 1px solid #ddd; }
#vertebra-panel { flex: 0 0 18em; border: 1px solid #ddd; padding: 0.5em 0.8em; overflow: auto; }
#vertebra-panel dt { font-weight: 600; } #vertebra-panel dd { margin: 0 0 0.4em 0; }
.radiographs { display: flex; flex-wrap: wrap; gap: 1em; }
.radiographs img { height: 520px; max-width: 100%; object-fit: contain; border: 1px solid #ddd; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; } caption { caption-side: bottom; text-align: left; color: #555; }
table.vertebrae tbody tr { cursor: pointer; } tr.selected { background: #fff4c2; }
td.flag { color: #a40000; font-weight: 600; } .absent { color: #666; font-style: italic; }
#report-errors { color: #a40000; } dl.provenance dt { font-weight: 600; } dl dd { margin-left: 1.5em; }
"""

# nothing may be fetched: scripts and styles are inline, images are data: URIs
_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"


def _page(
    title: str, summary: Mapping[str, Any], folder: Path, sections: Mapping[str, str], figure: str, data: object
) -> str:
    placement = summary.get("placement") or "unknown"
    system = summary.get("coordinate_system") or "RAS"
    skipped = summary.get("skipped") if isinstance(summary.get("skipped"), Mapping) else {}
    skipped_html = (
        "<p>Left out: " + _esc("; ".join(f"{k} ({v})" for k, v in skipped.items())) + "</p>" if skipped else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_CSS}</style>
<script>{_ERROR_CAPTURE_JS}</script>
</head><body>
<h1>{_esc(title)}</h1>
<p>Placement {_esc(placement)} · coordinates {_esc(system)} (mm).</p>
<div id="report-status" data-plot="pending" data-errors="0" hidden></div>
<ul id="report-errors" hidden></ul>
<h2>3D spine</h2>
<p>Drag to rotate, scroll to zoom; hover a vertebra for its numbers, click it (or its table row) for details.</p>
<div class="viewer"><div id="spine-3d"></div>
<aside id="vertebra-panel"><p class="absent">Click a vertebra.</p></aside></div>
<h2>Radiographs</h2>{sections["radiographs"]}
<h2>Alignment</h2>{sections["alignment"]}
<h2>Vertebrae</h2>{sections["vertebrae"]}{skipped_html}
<h2>Provenance</h2>{sections["provenance"]}
<script type="application/json" id="report-data">{_script_json(data)}</script>
<script type="application/json" id="report-figure">{_script_json(figure)}</script>
<script>{get_plotlyjs()}</script>
<script>{_MAIN_JS}</script>
</body></html>
"""


def write_report(
    folder: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    max_faces_per_vertebra: int = 3000,
    title: str | None = None,
) -> Path:
    """Write the self-contained HTML report of a reconstruction output folder (see the module docstring).

    Args:
        folder: the output folder of transvert-reconstruct (``summary.json``, ``meshes/``, overlays).
        output: the HTML file to write (default ``<folder>/report.html``).
        max_faces_per_vertebra: face budget of each displayed mesh (see :func:`decimate_mesh`).
        title: the page's heading (default ``"TransVert reconstruction: <folder name>"``); give the final
            name when writing into a staging folder that is moved into place afterwards.

    Returns:
        The path of the page, written atomically.

    Raises:
        TransVertInputError: ``folder`` is not a folder, has no ``summary.json``, or its summary has no
            ``vertebrae`` list (:class:`~transvert_monai.errors.UnreadableFileError`: not JSON).
        ImportError: trimesh, needed to read the meshes, is not installed.

    Example:
        >>> write_report("spine_out")  # spine_out/report.html
    """
    folder = Path(folder)
    summary = _read_summary(folder)
    rows = [r if isinstance(r, Mapping) else {"name": str(r)} for r in summary["vertebrae"]]
    traces, trace_rows, notes, facts, lows, highs = [], [], [], [], [], []
    for i, row in enumerate(rows):
        name = str(row.get("name", ""))
        path = _find_mesh(folder, name)
        mesh = _load_mesh(path) if path is not None else None
        if mesh is None:
            notes.append(_NO_MESH)
            facts.append(_vertebra_facts(row, _NO_MESH))
            continue
        vertices, faces = decimate_mesh(*mesh, max_faces_per_vertebra)
        note = f"{path.name}, {len(faces)} of {len(mesh[1])} faces shown"
        notes.append(path.name)
        facts.append(_vertebra_facts(row, note))
        label = row.get("label")
        rgb = label_colour(label) if is_vertebra_label(label) else _GREY
        # the hover keeps the numbers; the panel adds the angle convention (a sentence), pose method and mesh
        hover = "<br>".join(f"{_esc(k)}: {_esc(v)}" for k, v in facts[-1] if k not in _PANEL_ONLY)
        traces.append(
            go.Mesh3d(
                x=vertices[:, 0], y=vertices[:, 1], z=vertices[:, 2],
                i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
                name=_esc(name), color="rgb({},{},{})".format(*(int(round(255 * c)) for c in rgb)),
                hovertext=hover, hoverinfo="text", showlegend=True, flatshading=False,
                lighting=dict(ambient=0.45, diffuse=0.8, specular=0.15, roughness=0.6),
            )
        )  # fmt: skip
        trace_rows.append(i)
        lows.append(vertices.min(0))
        highs.append(vertices.max(0))
    title = title or f"TransVert reconstruction: {folder.resolve().name}"
    sections = {
        "radiographs": _radiographs_html(folder),
        "alignment": _alignment_html(summary),
        "vertebrae": _vertebra_table_html(rows, notes),
        "provenance": _provenance_html(summary),
    }
    figure = _figure(traces, np.min(lows, axis=0), np.max(highs, axis=0)).to_json() if traces else "{}"
    data = {"names": [str(r.get("name", "")) for r in rows], "facts": facts, "trace_rows": trace_rows}
    page = _page(title, summary, folder, sections, figure, data)
    output = Path(output) if output is not None else folder / REPORT_NAME
    written = atomic_write(output, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    logger.info("report of %d vertebrae (%d with meshes) written to %s", len(rows), len(traces), written)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``transvert-report <folder> [--output file]``; returns the exit code (:mod:`transvert_monai.cli`)."""
    from transvert_monai.cli import add_version_argument, run_command

    parser = argparse.ArgumentParser(prog="transvert-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="reconstruction output folder (with summary.json)")
    parser.add_argument("--output", type=Path, default=None, help=f"HTML file (default <folder>/{REPORT_NAME})")
    parser.add_argument("--max-faces", type=int, default=3000, help="face budget per vertebra mesh")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> None:
        logger.info("%s", write_report(args.folder, args.output, max_faces_per_vertebra=args.max_faces))

    return run_command("transvert-report", body)


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
