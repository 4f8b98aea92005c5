"""Phase-diagram figures (pandas in, Figure out; Agg canvas, no pyplot state), and the
`condense phase` pipeline: runs table → phase table (fit.py) → Parquet/CSV + PNGs.

    phase_figure      regimes measured at each grid point, coloured, with S_w ± stderr, over the
                      theory's regions and boundary (two-layer); one panel per fitted layer
    score_figure      condensation scores at the largest width: distinct directions, mean |cos| with v
    rd_width_figure   RD against width (log-log) per grid point, the data behind every slope
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine.figures import figure as new_figure
from ...engine.figures import finish
from ...engine.figures import save as save_figure
from ...errors import ConfigError
from . import fit as phase

COLORS = {"linear": "#3b75af", "critical": "#6a9f3a", "condensed": "#c0392b", "undetermined": "#9e9e9e"}
LABELS = {
    "gamma": "γ = −log(β₁β₂/α)/log m", "gamma_prime": "γ' = −log(β₂/β₁)/log m",
    "exp_w1": "exponent of W¹: std = m^(−γ₁)", "exp_w2": "exponent of W²: std = m^(−γ₂)", "exp_a": "exponent of a",
}


def _figure(ncols: int = 1, size=(5.6, 4.8)):
    fig, axes = new_figure(1, ncols, (size[0] * ncols, size[1]), layout=None)
    return fig, list(axes.ravel())


def _layers(table) -> list[str]:
    return [c[len("regime_"):] for c in table.columns if c.startswith("regime_") and c != "regime_theory"]


def _coords(table) -> tuple[str, str]:
    known = [c for c in ("gamma_prime", "gamma", "exp_w1", "exp_w2", "exp_a") if c in table]
    if len(known) < 2:
        raise ConfigError(f"the phase table needs two coordinate columns, has {known}")
    return known[0], known[1]


def _theory_background(ax, xs, ys) -> None:
    """Two-layer theory: condensed above γ = max(1, 1 + γ'), linear below, the boundary drawn."""
    pad_x, pad_y = 0.5 * (np.ptp(xs) or 1) / max(len(np.unique(xs)) - 1, 1), 0.5 * (np.ptp(ys) or 1) / max(len(np.unique(ys)) - 1, 1)
    gx = np.linspace(xs.min() - pad_x, xs.max() + pad_x, 300)
    gy = np.linspace(ys.min() - pad_y, ys.max() + pad_y, 300)
    X, Y = np.meshgrid(gx, gy)
    cond = Y > phase.two_layer_boundary(X)
    from matplotlib.colors import ListedColormap

    ax.pcolormesh(X, Y, cond.astype(float), cmap=ListedColormap([COLORS["linear"], COLORS["condensed"]]),
                  alpha=0.12, shading="auto", rasterized=True)
    ax.plot(gx, phase.two_layer_boundary(gx), color="k", lw=1.5, label="theory: critical line γ = max(1, 1 + γ')")
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])


def phase_figure(table, coords=None):
    """Measured regime at every grid point (colour), S_w ± stderr written next to it; for the
    two-layer (γ', γ) diagram the theory's regions are shaded and its boundary drawn, and points
    where the measurement disagrees with the theory are ringed."""
    from matplotlib.lines import Line2D

    if table is None or len(table) == 0:
        raise ConfigError("the phase table is empty: no grid point to draw")
    xc, yc = coords or _coords(table)
    layers = _layers(table)
    if not layers:
        raise ConfigError("the phase table has no regime_* column: nothing to draw")
    fig, axes = _figure(len(layers), (7.6, 4.8))
    xs, ys = table[xc].to_numpy(float), table[yc].to_numpy(float)
    two_layer = {xc, yc} == {"gamma", "gamma_prime"} and "regime_theory" in table
    for ax, layer in zip(axes, layers):
        if two_layer:
            _theory_background(ax, xs, ys)
        else:
            ax.margins(0.12)
        regime = table[f"regime_{layer}"].to_numpy()
        for name in (*phase.REGIMES, "undetermined"):
            sel = regime == name
            if sel.any():
                ax.scatter(xs[sel], ys[sel], s=110, color=COLORS[name], edgecolor="k", lw=0.6, zorder=3,
                           marker="o" if name != "undetermined" else "X")
        if two_layer:
            wrong = (regime != table["regime_theory"].to_numpy()) & (regime != "undetermined")
            ax.scatter(xs[wrong], ys[wrong], s=320, facecolor="none", edgecolor="k", lw=1.6, zorder=4)
        slope, se = table[f"slope_{layer}"].to_numpy(float), table[f"stderr_{layer}"].to_numpy(float)
        for x, y, s, e in zip(xs, ys, slope, se):
            if np.isfinite(s):
                ax.annotate(f"{s:+.2f}±{e:.2f}" if np.isfinite(e) else f"{s:+.2f}", (x, y), xytext=(0, -15),
                            textcoords="offset points", ha="center", fontsize=6.5, zorder=5)
        ax.set_xlabel(LABELS.get(xc, xc))
        ax.set_ylabel(LABELS.get(yc, yc))
        n_w = int(np.nanmax(table[f"n_widths_{layer}"])) if f"n_widths_{layer}" in table else 0
        title = f"RD of {layer} ∝ m^(−S), S ± stderr over seeds ({n_w} widths)"
        if two_layer:
            agree = int(((regime == table["regime_theory"].to_numpy()) & (regime != "undetermined")).sum())
            title += f"\nmeasured = theory at {agree}/{int((regime != 'undetermined').sum())} determined points"
        ax.set_title(title, fontsize=9)
        handles = [Line2D([], [], ls="", marker="o", color=COLORS[n], markeredgecolor="k", label=n) for n in phase.REGIMES]
        if (regime == "undetermined").any():
            handles.append(Line2D([], [], ls="", marker="X", color=COLORS["undetermined"], label="undetermined (< 2 widths converged)"))
        if two_layer:
            handles.append(Line2D([], [], color="k", lw=1.5, label="theory boundary (Luo et al. 2021)"))
            handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor="k", markersize=12,
                                  label="measured ≠ theory"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return finish(fig)


def score_figure(table, coords=None):
    """Condensation scores at each grid point at the largest width: the number of distinct
    directions of the input weights (colour) and the mean |cos| of their rows with v (label)."""
    if table is None or len(table) == 0:
        raise ConfigError("the phase table is empty: no grid point to draw")
    xc, yc = coords or _coords(table)
    ndir = [c for c in table.columns if c.startswith("n_dir_")]
    if not ndir or not np.isfinite(table[ndir[0]].to_numpy(float)).any():
        raise ConfigError("the phase table has no condensation score (n_dir_*) to draw")
    fig, (ax,) = _figure(1, (6.2, 4.8))
    xs, ys, nd = table[xc].to_numpy(float), table[yc].to_numpy(float), table[ndir[0]].to_numpy(float)
    sc = ax.scatter(xs, ys, c=nd, s=260, cmap="viridis_r", edgecolor="k", lw=0.6, marker="s")
    ax.margins(x=0.1, y=0.14)  # room for the labels under the bottom row
    fig.colorbar(sc, ax=ax, label=f"{ndir[0]}: distinct directions (mean over seeds)")
    cos_col = next((c for c in table.columns if c.startswith("cos_v_")), None)
    if cos_col is not None:
        for x, y, c in zip(xs, ys, table[cos_col].to_numpy(float)):
            if np.isfinite(c):
                ax.annotate(f"{c:.2f}", (x, y), xytext=(0, -17), textcoords="offset points", ha="center", fontsize=6.5)
    boundary = ""
    if {xc, yc} == {"gamma", "gamma_prime"}:
        gx = np.linspace(xs.min(), xs.max(), 100)
        ax.plot(gx, phase.two_layer_boundary(gx), color="k", lw=1.2, label="theory boundary")
        boundary = "\nline: the theory's boundary (Luo et al. 2021)"  # in the title: a legend would cover a point
    width = int(np.nanmax(table["width_max"])) if "width_max" in table else None
    ax.set(xlabel=LABELS.get(xc, xc), ylabel=LABELS.get(yc, yc))
    ax.set_title(f"where weights condense (m = {width}); label: {cos_col or ''} mean |cos| with v{boundary}", fontsize=9)
    fig.tight_layout()
    return finish(fig)


def rd_width_figure(runs, table, layer: str | None = None, coords=None):
    """RD at the end of training against width (log-log), one line per grid point (median over
    seeds, coloured by the measured regime), the data each slope S_w is fitted to."""
    if table is None or len(table) == 0:
        raise ConfigError("the phase table is empty: no grid point to draw")
    xc, yc = coords or _coords(table)
    layer = layer or _layers(table)[0]
    model = str(runs["model"].iloc[0]) if "model" in runs and len(runs) else "two-layer"
    rd_col = phase.MODEL_COLUMNS.get(model, phase.MODEL_COLUMNS["two-layer"])["layers"].get(layer, f"rd_{layer}")
    used = phase.usable_runs(runs)
    if used.empty or rd_col not in used:
        raise ConfigError(f"no run reached the end of training with {rd_col}: nothing to draw")
    fig, (ax,) = _figure(1, (6.2, 4.8))
    key = used[[xc, yc]].round(6)
    for row in table.itertuples():
        sel = (key[xc] == round(getattr(row, xc), 6)) & (key[yc] == round(getattr(row, yc), 6))
        med = used[sel].groupby("width")[rd_col].median()
        if len(med):
            ax.plot(med.index, med.to_numpy(), "-o", ms=3, lw=1, color=COLORS[getattr(row, f"regime_{layer}")], alpha=0.8)
    ax.set(xscale="log", yscale="log", xlabel="width m", ylabel=f"{rd_col} at the end of training (median over seeds)")
    from matplotlib.lines import Line2D

    present = set(table[f"regime_{layer}"].astype(str))
    ax.legend(handles=[Line2D([], [], color=COLORS[n], label=n) for n in (*phase.REGIMES, "undetermined") if n in present],
              fontsize=7)
    ax.set_title("RD against width at every grid point: rising = condensed, falling = linear", fontsize=9)
    fig.tight_layout()
    return finish(fig)


def phase_from_dir(path: Path, out_dir: Path | None = None, k: float = 2.0, tol: float = 0.05, coords=None,
                   figures: bool = True):
    """Read DIR/runs, fit and classify every grid point, write DIR/phase/phase_table.{parquet,csv}
    (always: it is data) and, with `figures`, the figures (default out_dir: DIR/figures).
    Returns (table, written paths)."""
    from ...engine import store

    path = Path(path)
    if not (path / "runs").exists():
        raise ConfigError(f"{str(path)!r} has no runs/ table: not a condense_jax training result")
    runs = store.read_table(path, "runs")
    if "model" not in runs:
        raise ConfigError(f"{str(path)!r} holds ODE results; phase diagrams are built from training sweeps (condense train / kind = 'train')")
    table = phase.phase_table(runs, coords=coords, k=k, tol=tol)
    out_dir = Path(out_dir) if out_dir is not None else path / "figures"
    (path / "phase").mkdir(exist_ok=True)
    written = []
    from ..columns import PHASE

    meta = {"derived_from": str(path), "k": k, "tol": tol, **store.provenance()}
    store.write_table(table, path / "phase" / "phase_table.parquet", meta, PHASE)  # atomic, with the data dictionary
    final = path / "phase" / "phase_table.csv"
    table.to_csv(final.with_suffix(".csv.tmp"), index=False)
    final.with_suffix(".csv.tmp").replace(final)  # atomic: a reader never sees half a table
    written += [path / "phase" / "phase_table.parquet", final]
    if not figures:
        return table, written
    out_dir.mkdir(parents=True, exist_ok=True)
    coords = tuple(coords) if coords else None
    for name, fig in (("phase_diagram", phase_figure(table, coords)), ("phase_rd_width", rd_width_figure(runs, table, coords=coords))):
        written.append(save_figure(fig, out_dir / f"{name}.png"))
    try:
        fig = score_figure(table, coords)
    except ConfigError:
        fig = None
    if fig is not None:
        written.append(save_figure(fig, out_dir / "phase_scores.png"))
    return table, written


def phase_grid(config: dict) -> bool:
    """A training sweep over ≥ 2 widths on a grid of init-scale coordinates (γ' or per-layer
    exponents): its phase diagram is fitted and drawn."""
    return (config.get("kind") == "train" and len(config.get("widths") or []) >= 2
            and (config.get("gamma_primes") is not None or config.get("layer_exponents") is not None))


def _config(path: Path) -> dict:
    from ...engine import store

    return (store.read_manifest(Path(path)) or {}).get("config") or {}


def sweep_summary(path: Path) -> list[str]:
    """After a training sweep on a phase grid: its phase table, fitted and written (data, with or
    without figures); the registry's `summary`."""
    if not phase_grid(_config(path)):
        return []
    return [f"phase: {p}" for p in phase_from_dir(path, figures=False)[1]]


def sweep_figures(path: Path, fig_dir: Path) -> list[Path]:
    """The phase-diagram figures of a training sweep on a phase grid; none otherwise."""
    if not phase_grid(_config(path)):
        return []
    return [p for p in phase_from_dir(path, fig_dir)[1] if p.suffix not in (".parquet", ".csv")]  # the figures, not the table
