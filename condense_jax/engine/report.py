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
from pathlib import Path

from ..errors import ConfigError
from . import store

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; } pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; } .warn { color: #a33; }
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


def build_report(path: Path, figures, output: Path | None = None) -> Path:
    """Write the HTML report of the result directory `path` (default: path/report.html), with the
    figures `figures(path, fig_dir) -> list[Path]` draws (the kind's, from the registry)."""
    import pandas as pd

    path = Path(path)
    manifest = store.read_manifest(path)
    if manifest is None:
        raise ConfigError(f"{str(path)!r} is not a condense_jax result directory (no manifest.json)")
    kind = (manifest.get("config") or {}).get("kind", "unknown")
    store.verify(path)  # every part of every table, before a number of it is shown
    runs = store.read_table(path, "runs")
    config = manifest.get("config") or {}
    with tempfile.TemporaryDirectory() as tmp:
        pngs, notes = _figures(path, figures, Path(tmp))
        images = [(p.stem.replace("_", " "), base64.b64encode(p.read_bytes()).decode()) for p in map(Path, pngs)]
    counts = runs["status"].value_counts() if "status" in runs else pd.Series(dtype=int)
    name = config.get("name", path.name)
    state = "complete" if manifest.get("complete") else "INCOMPLETE (interrupted; resume it with --resume)"
    provenance = [(k, manifest.get(k)) for k in ("created", "git_revision", "python", "host", "platform")]
    provenance += [("devices", ", ".join(manifest.get("devices") or [])), ("config hash", manifest.get("config_hash"))]
    provenance += [(f"version {k}", v) for k, v in (manifest.get("versions") or {}).items()]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>condense_jax report: {html.escape(str(name))}</title><style>{STYLE}</style></head><body>",
        f"<h1>condense_jax report: {html.escape(str(name))}</h1>",
        f"<p>{kind.replace('_', '-')} sweep in <code>{html.escape(str(path))}</code>: {len(runs)} runs of "
        f"{manifest.get('n_runs', '?')}, {html.escape(state)}.</p>",
        "<h2>Status</h2>", _table([(k, int(v)) for k, v in counts.items()], ["status", "runs"]),
        "<h2>Figures</h2>",
    ]
    for caption, data in images:
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if not images:
        parts.append("<p>No figure applies to these tables.</p>")
    parts += [f'<p class="warn">{html.escape(n)}</p>' for n in notes]
    parts.append(CHECK)
    parts += ["<h2>Runs table</h2>", _summary(runs),
              "<h2>Configuration</h2>", f"<pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>",
              "<h2>Provenance</h2>", _table(provenance), "</body></html>"]
    output = Path(output) if output else path / "report.html"
    output.parent.mkdir(parents=True, exist_ok=True)
    store._atomic_write_bytes(output, "\n".join(parts).encode())
    return output
