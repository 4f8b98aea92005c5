"""`condense report DIR`: one self-contained HTML page summarising a sweep (issue #6).

The page holds the configuration and provenance from the manifest, the status counts, a numeric
summary of the runs table, and every figure that applies to the tables present, drawn by the
plotting modules into a temporary folder and embedded as base64 PNG (no external file). One
inline script marks, once the page has loaded, how many images it has and how many failed to
decode (body's data-images = "N BAD"), which the browser test reads:

    ode sweep          T* against Theorem 1's bound with E(t) envelopes; the theory checks
    training sweep     loss curves, cosine heatmaps, Assumption 2, escape steps, …; the phase
                       diagram when the sweep spans ≥ 2 widths over a phase grid
    four-phase sweep   boundary times across the sweep, timelines, neuron arrows
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError
from . import store

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; } pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; } .warn { color: #a33; }
.row { display: flex; gap: .8em; } .row figure { flex: 1; margin: .4em 0; }
"""


CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const bad = images.filter((i) => !(i.complete && i.naturalWidth > 0)).length;
  document.body.dataset.images = images.length + " " + bad;
});
</script>"""


def _figures(path: Path, figures, fig_dir: Path) -> tuple[list[Path], list[str]]:
    """Draw the kind's figures (`figures(path, fig_dir)`, from the registry) into fig_dir; returns
    (PNG paths, a note if they could not be drawn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            paths = list(figures(path, fig_dir))
        except (ConfigError, ValueError, KeyError, OSError) as e:
            return [], [f"figures: not drawn ({e})"]
    return [p for p in map(Path, paths) if p.suffix == ".png" and p.exists()], []


def _table(rows, header=None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _summary(runs) -> str:
    """count / median / min / max of the runs table's numeric result columns."""
    skip = {"run_id", "seed", "init_index"}
    cols = [c for c in runs.columns if c not in skip and runs[c].dtype.kind in "fi"][:24]
    rows = []
    for c in cols:
        v = runs[c].astype(float)
        ok = v.notna()
        stats = [f"{x:.4g}" for x in (v[ok].median(), v[ok].min(), v[ok].max())] if ok.any() else ["", "", ""]
        rows.append((c, int(ok.sum()), *stats))
    return _table(rows, ["column", "finite", "median", "min", "max"])


def _dictionary(path: Path) -> str:
    """The data dictionary the tables carry (store.describe), one collapsible table per table."""
    parts = []
    for table, entries in store.describe(path).items():
        rows = [(name, kind, col.meaning, col.unit, col.source) for name, (col, kind) in entries.items()]
        parts.append(f"<details><summary>{html.escape(table)} ({len(rows)} columns)</summary>"
                     f"{_table(rows, ['column', 'type', 'meaning', 'unit', 'source'])}</details>")
    return "".join(parts)


class Sweep(NamedTuple):
    """One result directory as the report shows it (the kind's parts come from the registry)."""

    path: Path
    figures: Callable  # figures(path, fig_dir) -> list[Path]
    captions: dict  # file stem prefix -> what to look for
    summary: list  # the lines the CLI prints after the sweep (fits, phase shares)


def _compact(value) -> str:
    """A configuration value in one short cell: consecutive integers as a range (seeds 0…63 (64)),
    long lists by their ends."""
    if isinstance(value, list) and len(value) > 4:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value) and value == list(range(value[0], value[0] + len(value))):
            return f"{value[0]}…{value[-1]} ({len(value)})"
        if len(value) > 8:
            return f"{json.dumps(value[:3])[:-1]}, …, {json.dumps(value[-1])}] ({len(value)})"
    return json.dumps(value, default=str)


def _caption(stem: str, captions: dict) -> str:
    """The caption of a figure file: the longest matching stem prefix's text, after its name."""
    match = max((k for k in captions if stem.startswith(k)), key=len, default=None)
    title = stem.replace("_", " ")
    return f"{title}: {captions[match]}" if match else title


def _read(sweep: Sweep, fig_dir: Path) -> dict:
    """Everything the page shows of one sweep: manifest, verified runs table, figures drawn."""
    import pandas as pd

    path = Path(sweep.path)
    manifest = store.read_manifest(path)
    if manifest is None:
        raise ConfigError(f"{str(path)!r} is not a condense_jax result directory (no manifest.json)")
    store.verify(path)  # every part of every table, before a number of it is shown
    runs = store.read_table(path, "runs")
    pngs, notes = _figures(path, sweep.figures, fig_dir)
    config = manifest.get("config") or {}
    return dict(path=path, manifest=manifest, runs=runs, config=config, name=str(config.get("name", path.name)),
                kind=str(config.get("kind", "unknown")), notes=notes, summary=list(sweep.summary),
                counts=runs["status"].value_counts().loc[lambda c: c > 0] if "status" in runs else pd.Series(dtype=int),
                images={Path(p).stem: base64.b64encode(Path(p).read_bytes()).decode() for p in pngs},
                captions=sweep.captions)


def _img(stem: str, data: str, caption: str | None) -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(stem)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _page(title: str, body: list[str]) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
                      f"<h1>{html.escape(title)}</h1>", *body, CHECK, "</body></html>"])


def _write(output: Path, text: str) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    store._atomic_write_bytes(output, text.encode())
    return output


def build_report(sweep: Sweep, output: Path | None = None) -> Path:
    """Write the HTML report of one result directory (default: DIR/report.html): status, the
    summary lines, every figure with a caption saying what to look for, the runs table's numbers,
    the configuration (seeds as a range) and the provenance."""
    with tempfile.TemporaryDirectory() as tmp:
        s = _read(sweep, Path(tmp))
    m = s["manifest"]
    state = "complete" if m.get("complete") else "INCOMPLETE (interrupted; resume it with --resume)"
    provenance = [(k, m.get(k)) for k in ("created", "git_revision", "python", "host", "platform", "wall_seconds")]
    provenance += [("command", " ".join(m.get("command") or [])), ("devices", ", ".join(m.get("devices") or [])),
                   ("config hash", m.get("config_hash"))]
    provenance += [(f"version {k}", v) for k, v in (m.get("versions") or {}).items()]
    body = [f"<p>{s['kind'].replace('_', '-')} sweep in <code>{html.escape(str(s['path']))}</code>: {len(s['runs'])} runs of "
            f"{m.get('n_runs', '?')}, {html.escape(state)}.</p>",
            "<h2>Status</h2>", _table([(k, int(v)) for k, v in s["counts"].items()], ["status", "runs"])]
    if s["summary"]:
        body += ["<h2>Summary</h2>", "<pre>" + html.escape("\n".join(s["summary"])) + "</pre>"]
    body.append("<h2>Figures</h2>")
    body += [_img(stem, data, _caption(stem, s["captions"])) for stem, data in s["images"].items()]
    if not s["images"]:
        body.append("<p>No figure applies to these tables.</p>")
    body += [f'<p class="warn">{html.escape(n)}</p>' for n in s["notes"]]
    body += ["<h2>Runs table</h2>", _summary(s["runs"]), "<h2>Columns</h2>", _dictionary(s["path"]),
             "<h2>Configuration</h2>", _table([(k, _compact(v)) for k, v in s["config"].items()], ["key", "value"]),
             "<h2>Provenance</h2>", _table(provenance)]
    return _write(Path(output) if output else s["path"] / "report.html", _page(f"condense_jax report: {s['name']}", body))


def build_comparison(sweeps: list[Sweep], output: Path) -> Path:
    """One HTML page comparing several sweeps side by side: their status and summaries, a table of
    the configuration values that differ, and each figure of every sweep in one row."""
    with tempfile.TemporaryDirectory() as tmp:
        read = [_read(sw, Path(tmp) / str(i)) for i, sw in enumerate(sweeps)]
    labels = [f"{s['name']} ({s['path']})" for s in read]
    keys = sorted({k for s in read for k in s["config"]})
    differ = [(k, *[_compact(s["config"].get(k)) for s in read]) for k in keys
              if len({json.dumps(s["config"].get(k), sort_keys=True, default=str) for s in read}) > 1]
    body = [f"<p>{len(read)} sweeps, side by side.</p>",
            _table([(lab, s["kind"], len(s["runs"]), ", ".join(f"{k}: {int(v)}" for k, v in s["counts"].items()),
                     "complete" if s["manifest"].get("complete") else "INCOMPLETE") for lab, s in zip(labels, read)],
                   ["sweep", "kind", "runs", "status", "state"]),
            "<h2>Configuration differences</h2>",
            _table(differ, ["key", *labels]) if differ else "<p>The configurations are the same.</p>"]
    if any(s["summary"] for s in read):
        body.append("<h2>Summaries</h2>")
        body += [f"<h3>{html.escape(lab)}</h3><pre>{html.escape(chr(10).join(s['summary']))}</pre>" for lab, s in zip(labels, read) if s["summary"]]
    body.append("<h2>Figures</h2>")
    stems = list(dict.fromkeys(stem for s in read for stem in s["images"]))
    for stem in stems:
        captions = next(s["captions"] for s in read if stem in s["images"])
        cells = [(_img(stem, s["images"][stem], lab) if stem in s["images"] else f"<p>{html.escape(lab)}: no such figure</p>")
                 for lab, s in zip(labels, read)]
        body.append(f'<h3>{html.escape(_caption(stem, captions))}</h3><div class="row">{"".join(cells)}</div>')
    if not stems:
        body.append("<p>No figure applies to these tables.</p>")
    body += [f'<p class="warn">{html.escape(lab)}: {html.escape(n)}</p>' for lab, s in zip(labels, read) for n in s["notes"]]
    return _write(output, _page("condense_jax comparison: " + " vs ".join(s["name"] for s in read), body))
