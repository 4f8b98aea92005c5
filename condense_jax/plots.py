"""Figures from result tables (pandas in, PNG out). Matplotlib only; headless (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import theory
from .config import ConfigError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_runs(runs, k: int = 3):
    """A few blown-up runs spread over the range of T*/bound (for the E(t) panel)."""
    ok = runs[(runs["status"] == "blowup") & np.isfinite(runs["t_star"]) & (runs["E0"] > 0)]
    if ok.empty:
        return []
    ratio = (ok["t_star"] / ok["t_star_thm1_bound"]).to_numpy()
    order = np.argsort(ratio)
    idx = order[np.linspace(0, len(order) - 1, min(k, len(order))).round().astype(int)]
    return list(ok["run_id"].to_numpy()[np.unique(idx)])


def tstar_bounds_figure(runs, series, path: Path, run_ids=None) -> Path:
    """Left: T* against the Theorem 1 bound E0^(−1/3), every run with E0 > 0 (all must lie below
    the diagonal). Right: for a few runs, E against the time left T* − t, between Theorem 1's lower
    envelope (3.15) and Theorem 2's upper envelope (4.21), both started at the final-stage time
    t_fs with C the largest C(t) = (4/3)(cos ζ)^(−4/3) measured after it."""
    plt = _pyplot()
    has = runs[np.isfinite(runs["t_star"]) & (runs["E0"] > 0)]
    if has.empty:
        raise ConfigError("no run with a finite T* and E0 > 0: nothing to draw against Theorem 1's bound")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    bound, ts = has["t_star_thm1_bound"].to_numpy(), has["t_star"].to_numpy()
    widths = has["width"].to_numpy()
    for w in np.unique(widths):
        sel = widths == w
        ax1.scatter(bound[sel], ts[sel], s=10, alpha=0.7, label=f"m = {w}")
    lo, hi = min(bound.min(), ts.min()), max(bound.max(), ts.max())
    ax1.plot([lo, hi], [lo, hi], "k--", lw=1, label="T* = E₀^(−1/3) (Theorem 1)")
    ax1.set(xscale="log", yscale="log", xlabel="Theorem 1 bound E₀^(−1/3)", ylabel="T* (computed)")
    n_viol = int(np.sum(ts > bound * (1 + 1e-9)))
    ax1.set_title(f"T* ≤ E₀^(−1/3): {len(ts)} runs, {n_viol} violations")
    ax1.legend(fontsize=8)

    run_ids = pick_runs(runs) if run_ids is None else run_ids
    lefts = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, rid in zip(colors, run_ids):
        run = runs[runs["run_id"] == rid].iloc[0]
        s = series[series["run_id"] == rid].sort_values("t")
        t_star = run["t_star"]
        s = s[(s["t"] < t_star) & (s["energy"] > 0)]
        left = t_star - s["t"].to_numpy()
        e = s["energy"].to_numpy()
        ax2.plot(left, e, color=color, lw=2, label=f"run {rid} (m = {run['width']})")
        lefts.append(left[left > 0])
        # both envelopes from the same start s: the final-stage time (Theorem 2 needs it), else the first E > 0
        fs = s[s["final_stage"]] if "final_stage" in s else s.iloc[:0]
        base = fs if len(fs) > 1 else s
        t_s, e_s = base["t"].iloc[0], base["energy"].iloc[0]
        tt = base["t"].to_numpy()
        ax2.plot(t_star - tt, theory.thm1_energy_lower_envelope(tt, t_s, e_s), color=color, ls=":", lw=1.2)
        if len(fs) > 1:
            c = float(np.nanmax(theory.thm2_constant(fs["cos_zeta"].to_numpy())))
            ax2.plot(t_star - tt, theory.thm2_energy_upper_envelope(tt, t_s, e_s, c), color=color, ls="--", lw=1.2)
    if lefts and np.concatenate(lefts).size:
        every = np.concatenate(lefts)
        x = np.geomspace(every.min(), every.max(), 50)
        ax2.plot(x, x**-3.0, color="k", lw=0.8, ls=(0, (1, 3)), zorder=5, label="(T* − t)^(−3): balanced limit")
    ax2.set(xscale="log", yscale="log", xlabel="time to blow-up T* − t", ylabel="energy E(t)")
    ax2.invert_xaxis()
    ax2.set_title("E(t) from t_fs: Thm 1 lower (dotted), Thm 2 upper (dashed)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def tstar_figure_from_dir(out: Path, path: Path | None = None) -> Path:
    from . import store

    runs = store.read_runs(out)
    chosen = pick_runs(runs)
    series = store.read_series(out, chosen) if chosen else store.read_series(out, [])
    return tstar_bounds_figure(runs, series, path or Path(out) / "figures" / "tstar_bounds.png", chosen)
