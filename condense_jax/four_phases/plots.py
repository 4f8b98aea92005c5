"""Four-phase figures (issue #8): pandas in, Figure out (Agg canvas, no pyplot state).

    timeline_figure   one run: loss on log time with the detected phases shaded, activation-pattern
                      changes marked, and the condensation / live-neuron series below
    arrows_figure     one run on 2-D (or any) data: the neurons as arrows in the plane of the class
                      directions x₊, x₋, at t = 0 and at each detected phase boundary
    sweep_figure      across a sweep: each boundary time against log(1/ε), Δ and n (median and
                      interquartile range over seeds), and the fraction of runs showing each phase
    figures_from_dir  all of them for a result directory of `condense run` / `condense four-phases`
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine import figures
from ..errors import ConfigError
from .detect import PHASES, fit_log_eps

PHASE_COLORS = {"I": "#f3d9a4", "II": "#cfe3f3", "III": "#f4c7c3", "IV": "#d5ecd0"}
BOUNDARIES = {"t_I_II": "t I→II (condensed)", "t_II_III": "t II→III (plateau)", "t_III_IV": "t III→IV (convergence)",
              "t_drop": "loss leaves the saddle"}


def _figure(nrows: int = 1, ncols: int = 1, size=(5.4, 4.0), sharex=False, layout=None):
    return figures.figure(nrows, ncols, (size[0] * ncols, size[1] * nrows), sharex=sharex, layout=layout)


def phase_spans(run, t_first: float, t_last: float) -> list[tuple[str, float, float]]:
    """(phase, start, end) of the phases present in a run, from its detected boundaries."""
    b1, b2, b3 = (float(run[k]) for k in ("t_I_II", "t_II_III", "t_III_IV"))
    spans = []
    start_ii = b1 if np.isfinite(b1) else t_first
    if run["phase_I"]:
        spans.append(("I", t_first, b1))
    if run["phase_II"]:
        end_ii = b2 if np.isfinite(b2) else (b3 if np.isfinite(b3) else t_last)
        spans.append(("II", start_ii, end_ii))
    if run["phase_III"]:
        spans.append(("III", b2, b3 if np.isfinite(b3) else t_last))
    if run["phase_IV"]:
        spans.append(("IV", b3, t_last))
    return spans


def timeline_figure(run, series):
    """run: one row of the runs table; series: that run's rows of the series table."""
    s = series.sort_values("t")
    t = s["t"].to_numpy()
    fig, axes = _figure(2, 1, size=(7.0, 3.0), sharex=True)
    ax, ax2 = axes[0, 0], axes[1, 0]
    for phase, lo, hi in phase_spans(run, t[0], t[-1]):
        for a in (ax, ax2):
            a.axvspan(lo, hi, color=PHASE_COLORS[phase], alpha=0.8, lw=0)
        ax.text(np.sqrt(lo * hi), 1.02, phase, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=10)
    ax.loglog(t, s["loss"], color="k", lw=1.6, label="loss")
    changed = s["pattern_changes"].to_numpy() > 0
    if changed.any():
        ax.plot(t[changed], s["loss"].to_numpy()[changed], "v", color="#c0392b", ms=5,
                label="activation-pattern changes since the previous record")
    if np.isfinite(run["t_escape"]):
        ax.axvline(run["t_escape"], color="#c0392b", ls="--", lw=1, label="escape: pattern change ending the plateau")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"run {int(run['run_id'])}: m = {int(run['width'])}, ε = {run['init_scale']:.0e}, "
                 f"Δ = {run['delta']:g}°, n = {int(run['n'])} — phases {run['phases']}", fontsize=9, pad=16)
    ax2.semilogx(t, np.minimum(s["cond_pos"], s["cond_neg"]), color="#8e44ad", label="min cos within each sign group")
    ax2.semilogx(t, s["live"] / run["width"], color="#27ae60", label="fraction of live neurons")
    ax2.semilogx(t, s["accuracy"], color="#7f8c8d", ls=":", label="train accuracy")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel("time t (gradient flow; GD: Σ step sizes)")
    ax2.set_ylabel("cosine / fraction")
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return figures.finish(fig)


def arrows_figure(run, neurons):
    """The neurons' first-layer weights w_k as arrows in the plane of (x₊, x₋) at t = 0 and at each
    detected boundary (each panel scaled to its longest arrow); red a_k > 0, blue a_k < 0."""
    nr = neurons.sort_values(["t", "neuron"])
    times = np.unique(nr["t"].to_numpy())
    marks = [("first record", times[0])]
    for key, label in (("t_I_II", "end of phase I"), ("t_II_III", "plateau (II→III)"), ("t_III_IV", "convergence (III→IV)")):
        if np.isfinite(run[key]):
            marks.append((label, float(run[key])))
    marks.append(("final", times[-1]))
    fig, axes = _figure(1, len(marks), size=(3.0, 3.2))
    angle = run.get("class_angle", run["delta"])  # the class means' angle (older tables: the nominal Δ)
    delta = np.deg2rad(angle) if np.isfinite(angle) else None
    for ax, (label, tm) in zip(axes[0], marks):
        at = times[np.argmin(np.abs(np.log(times) - np.log(tm)))]
        f = nr[nr["t"] == at]
        u, v, a = f["u"].to_numpy(), f["v"].to_numpy(), f["a"].to_numpy()
        scale = max(np.max(np.hypot(u, v)), 1e-300)
        for ui, vi, ai in zip(u / scale, v / scale, a):
            ax.annotate("", xy=(ui, vi), xytext=(0, 0),
                        arrowprops=dict(arrowstyle="->", color="#c0392b" if ai > 0 else "#2e6da4", lw=1, alpha=0.8))
        ax.plot([0, 1.1], [0, 0], "--", color="#c0392b", lw=0.8)
        if delta is not None:
            ax.plot([0, 1.1 * np.cos(delta)], [0, 1.1 * np.sin(delta)], "--", color="#2e6da4", lw=0.8)
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(-1.2, 1.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}\nt = {at:.3g}, max ‖w‖ = {scale:.1e}", fontsize=8)
        ax.set_xlabel("along x₊ →", fontsize=7)
        ax.set_ylabel("⊥ x₊, in the plane of x₋ →", fontsize=7)
    fig.supxlabel("dashed: the class directions x₊ (red) and x₋ (blue); arrows scaled to each panel's longest", fontsize=7)
    fig.suptitle(f"neurons in the plane of (x₊, x₋): run {int(run['run_id'])}, ε = {run['init_scale']:.0e}; "
                 "red a_k > 0, blue a_k < 0", fontsize=9)
    fig.tight_layout()
    return figures.finish(fig)


def _spread(ax, frame, x, col, label, color, log_x=False):
    g = frame.groupby(x, observed=True)[col]
    med, lo, hi = g.median(), g.quantile(0.25), g.quantile(0.75)
    ok = med.notna()
    if not ok.any():
        return False
    xs = med.index.to_numpy(float)[ok.to_numpy()]
    ax.plot(xs, med[ok], "o-", color=color, label=label, ms=4)
    ax.fill_between(xs, lo[ok], hi[ok], color=color, alpha=0.2, lw=0)
    return True


def sweep_figure(runs):
    """Boundary times against log(1/ε), Δ and n (axes with one value are left out) and the fraction
    of runs in which each phase appears, against log(1/ε)."""
    if runs.empty:
        raise ConfigError("no runs to draw")
    axes_x = [("log_inv_eps", "log(1/ε)")] + [(c, lab) for c, lab in (("delta", "Δ (degrees)"), ("n", "n"), ("width", "width m"))
                                               if runs[c].nunique(dropna=True) > 1]
    n_panels = len(axes_x) + 1
    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    fig, grid = _figure(nrows, ncols, size=(4.2, 3.4), layout="constrained")
    fig.set_figheight(3.4 * nrows + 0.9)  # the shared legend below
    cells = list(grid.ravel())
    for spare in cells[n_panels:]:  # a grid cell without a panel stays blank
        spare.set_visible(False)
    colors = {"t_I_II": "#e67e22", "t_II_III": "#2e86c1", "t_III_IV": "#27ae60", "t_drop": "#7f8c8d"}
    for ax, (x, label) in zip(cells, axes_x):
        for col, name in BOUNDARIES.items():
            _spread(ax, runs, x, col, name, colors[col])
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("time (median, IQR over seeds)")
    fit = fit_log_eps(runs, "t_I_II")
    if np.isfinite(fit["slope"]):
        xs = np.linspace(runs["log_inv_eps"].min(), runs["log_inv_eps"].max(), 50)
        cells[0].plot(xs, fit["intercept"] + fit["slope"] * xs, color="#e67e22", ls=":", lw=1,
                      label=f"fit t I→II = {fit['intercept']:.2g} + {fit['slope']:.2g}·log(1/ε)")
    ax = cells[n_panels - 1]
    frac = runs.groupby("log_inv_eps")[[f"phase_{p}" for p in PHASES]].mean()
    width = 0.8 / len(PHASES) * (np.min(np.diff(frac.index)) if len(frac) > 1 else 1)
    for i, p in enumerate(PHASES):
        ax.bar(frac.index + (i - 1.5) * width, frac[f"phase_{p}"], width, color=PHASE_COLORS[p], edgecolor="k", lw=0.5, label=f"phase {p}")
    ax.set_xlabel("log(1/ε)")
    ax.set_ylabel("fraction of runs with the phase")
    ax.set_ylim(0, 1.05)
    # one legend for every panel, below them: the boundary times (the same four on each panel)
    # and the phases of the bars, covering no data
    handles, labels = cells[0].get_legend_handles_labels()
    bars, bar_labels = ax.get_legend_handles_labels()
    fig.legend(handles + bars, labels + bar_labels, fontsize=8, loc="outside lower center", ncols=min(5, len(labels) + len(bar_labels)),
               title="lines: median over seeds, band: interquartile range", title_fontsize=8)
    return figures.finish(fig)


def pick_runs(runs, k: int = 2) -> list[int]:
    """Runs worth a timeline: the first seed at the smallest and the largest ε of the first point,
    preferring runs that show all four phases."""
    key = runs[["width", "n", "delta"]].astype(float).fillna(-1.0)
    first = runs[(key == key.iloc[0]).all(axis=1)]
    full = first[first["phases"] == "I+II+III+IV"]
    pool = full if len(full) else first
    picks = [pool.loc[pool["init_scale"].idxmin(), "run_id"], pool.loc[pool["init_scale"].idxmax(), "run_id"]]
    return list(dict.fromkeys(int(r) for r in picks))[:k]


def figures_from_dir(path: Path, out_dir: Path | None = None) -> list[Path]:
    """The four-phase figures of a result directory: a timeline and an arrows panel for a couple of
    runs (with per-neuron records), and the sweep figure; returns the PNG paths."""
    from ..engine import store

    path = Path(path)
    out_dir = Path(out_dir) if out_dir else path / "figures"
    runs = store.read_table(path, "runs")
    if "phases" not in runs:
        raise ConfigError(f"{str(path)!r} is not a four-phase sweep (its runs table has no phase columns)")
    paths = [figures.save(sweep_figure(runs), out_dir / "phase_times.png")]
    has_neurons = (path / "neurons").is_dir()
    neuron_ids = set(store.read_table(path, "neurons", columns=["run_id"])["run_id"].unique()) if has_neurons else set()
    candidates = runs[runs["run_id"].isin(neuron_ids)] if neuron_ids else runs
    for rid in pick_runs(candidates):
        run = runs[runs["run_id"] == rid].iloc[0]
        series = store.read_table(path, "series", filters=[("run_id", "==", rid)])
        paths.append(figures.save(timeline_figure(run, series), out_dir / f"timeline_run{rid}.png"))
        if rid in neuron_ids:
            neurons = store.read_table(path, "neurons", filters=[("run_id", "==", rid)])
            paths.append(figures.save(arrows_figure(run, neurons), out_dir / f"neurons_run{rid}.png"))
    return paths


def summary_lines(path: Path) -> list[str]:
    """Phase shares and the fit of t_I→II (and t_drop) against log(1/ε): printed after a four-phase
    sweep and by `condense plot phases` (the registry's `summary`)."""
    from ..engine import store

    runs = store.read_table(path, "runs")
    lines = ["runs showing each phase: " + ", ".join(f"{p}: {runs[f'phase_{p}'].mean():.0%}" for p in PHASES)]
    for col in ("t_I_II", "t_drop"):
        fit = fit_log_eps(runs, col)
        if not np.isfinite(fit["slope"]):
            lines.append(f"{col}: too few runs or init scales to fit against log(1/ε) ({fit['n']} runs)")
            continue
        lines.append(f"{col} = {fit['intercept']:.3g} + ({fit['slope']:.3g} ± {fit['stderr']:.2g})·log(1/ε) over {fit['n']} runs")
    return lines


CAPTIONS = {  # what to look for in each figure (the report's captions), by file stem prefix
    "phase_times": "Boundary times of the four phases across the sweep against log(1/ε); the fit of t_I→II against "
                   "log(1/ε) (slope ± stderr) is in the summary.",
    "timeline_run": "One run's loss, accuracy and alignment over time with its detected phases shaded: I condensation, "
                    "II saddle to plateau, III plateau escape, IV convergence.",
    "neurons_run": "Each neuron's direction and norm at the phase boundaries: look for them gathering on a few "
                   "directions (condensation) in phase I.",
}
