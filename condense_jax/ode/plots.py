"""Figures from result tables (pandas in, PNG out). Matplotlib only; headless (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine import figures, stats
from ..errors import ConfigError
from . import theory


def pick_runs(runs, k: int = 3):
    """A few blown-up runs spread over the range of T*/bound (for the E(t) panel)."""
    ok = runs[(runs["status"] == "blowup") & np.isfinite(runs["t_star"]) & (runs["E0"] > 0)]
    if ok.empty:
        return []
    ratio = (ok["t_star"] / ok["t_star_thm1_bound"]).to_numpy()
    order = np.argsort(ratio)
    idx = order[np.linspace(0, len(order) - 1, min(k, len(order))).round().astype(int)]
    return list(ok["run_id"].to_numpy()[np.unique(idx)])


def _require_three_layer(runs) -> None:
    """The T* figures check Theorems 1 and 2, which are about the three-layer ODE (3.10)."""
    if "depth" in runs and runs["depth"].notna().any() and (runs["depth"] != 3).any():
        depths = sorted(int(d) for d in runs["depth"].dropna().unique())
        raise ConfigError(f"the T* figures check Theorems 1 and 2 of the three-layer ODE; this sweep has depth {depths} "
                          "(its tables are complete)")


def tstar_bounds_figure(runs, series, path: Path, run_ids=None) -> Path:
    """Left: T* against the Theorem 1 bound E0^(−1/3), every run with E0 > 0 (all must lie below
    the diagonal). Right: for a few runs, E against the time left T* − t, between Theorem 1's lower
    envelope (3.15) and Theorem 2's upper envelope (4.21), both started at the final-stage time
    t_fs, the latter with C the running maximum of the measured C(t) = Ė/(3E^(4/3)) from t_fs on."""
    _require_three_layer(runs)
    import matplotlib

    has = runs[np.isfinite(runs["t_star"]) & (runs["E0"] > 0)]
    if has.empty:
        raise ConfigError("no run with a finite T* and E0 > 0: nothing to draw against Theorem 1's bound")
    fig, ((ax1, ax2),) = figures.figure(1, 2, (11, 5.0))
    bound, ts = has["t_star_thm1_bound"].to_numpy(), has["t_star"].to_numpy()
    widths = has["width"].to_numpy()
    for w in np.unique(widths):
        sel = widths == w
        ax1.scatter(bound[sel], ts[sel], s=10, alpha=0.7, label=f"m = {w}")
    lo, hi = min(bound.min(), ts.min()), max(bound.max(), ts.max())
    ax1.plot([lo, hi], [lo, hi], "k--", lw=1, label="T* = E₀^(−1/3) (Theorem 1)")
    ax1.set(xscale="log", yscale="log", xlabel="Theorem 1 bound E₀^(−1/3)", ylabel="T* (computed)")
    n_viol = theory.tstar_violations(has)
    ax1.set_title(f"T* ≤ E₀^(−1/3): {len(ts)} runs, {n_viol} violations")
    ax1.legend(fontsize=8, loc="upper left")

    run_ids = pick_runs(runs) if run_ids is None else run_ids
    lefts = []
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, rid in zip(colors, run_ids):
        run = runs[runs["run_id"] == rid].iloc[0]
        s = series[series["run_id"] == rid].sort_values("t")
        t_star = run["t_star"]
        s = s[(s["t"] < t_star) & (s["energy"] > 0)]
        left = t_star - s["t"].to_numpy()
        e = s["energy"].to_numpy()
        ax2.plot(left, e, color=color, lw=2.5, alpha=0.6, label=f"run {rid} (m = {run['width']})")
        lefts.append(left[left > 0])
        # both envelopes from the same start s: the final-stage time (Theorem 2 needs it), else the first E > 0
        fs = s[s["final_stage"]] if "final_stage" in s else s.iloc[:0]
        base = fs if len(fs) > 1 else s
        t_s, e_s = base["t"].iloc[0], base["energy"].iloc[0]
        tt = base["t"].to_numpy()
        ax2.plot(t_star - tt, theory.thm1_energy_lower_envelope(tt, t_s, e_s), color=color, ls=":", lw=1.2, zorder=3)
        if len(fs) > 1 and "thm2_rate" in fs:  # (4.21) with the measured C: its running max from t_fs
            upper = theory.thm2_envelope_measured(tt, t_s, e_s, fs["thm2_rate"].to_numpy())
            ax2.plot(t_star - tt, upper, color=color, ls="--", lw=1.2, zorder=3)
        elif len(fs) > 1:  # tables without thm2_rate: the paper's constant (4/3)(cos ζ)^(−4/3)
            c = float(np.nanmax(theory.thm2_constant(fs["cos_zeta"].to_numpy())))
            ax2.plot(t_star - tt, theory.thm2_energy_upper_envelope(tt, t_s, e_s, c), color=color, ls="--", lw=1.2, zorder=3)
    if lefts and np.concatenate(lefts).size:
        every = np.concatenate(lefts)
        x = np.geomspace(every.min(), every.max(), 50)
        ax2.plot(x, x**-3.0, color="k", lw=0.8, ls=(0, (1, 3)), zorder=5, label="(T* − t)^(−3): balanced limit")
    ax2.set(xscale="log", yscale="log", xlabel="time to blow-up T* − t", ylabel="energy E(t)")
    ax2.invert_xaxis()
    ax2.set_title("E(t) between its envelopes from the final-stage time t_fs")
    from matplotlib.lines import Line2D

    handles, _ = ax2.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", ls=":", lw=1.2, label="Theorem 1 lower envelope (3.15), each run's colour"),
                Line2D([], [], color="0.3", ls="--", lw=1.2, label="Theorem 2 upper envelope (4.21), measured C")]
    ax2.legend(handles=handles, fontsize=8, loc="upper left")
    return figures.save(figures.finish(fig), path)


def tstar_figure_from_dir(out: Path, path: Path | None = None) -> Path:
    from ..engine import store

    runs = store.read_runs(out)
    chosen = pick_runs(runs)
    series = store.read_series(out, chosen) if chosen else store.read_series(out, [])
    return tstar_bounds_figure(runs, series, path or Path(out) / "figures" / "tstar_bounds.png", chosen)


# ---------------------------------------------------------------- theory checks (issue #4)


def _figure(ncols: int, size=(5.4, 4.4)):
    fig, axes = figures.figure(1, ncols, (size[0] * ncols, size[1]))
    return fig, list(axes.ravel())


def _legend_below(ax, ncols: int = 1) -> None:
    """The axes' legend under its x-label, off the data (the constrained layout makes room)."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols, frameon=False)


def ratio_figure(runs, series, run_ids=None):
    """Left: ρ(t) = (T* − t)/E(t)^{−1/3} against the time left, for a few runs: ≤ 1 (Theorem 1), ≥
    1/C̄ (Theorem 2 with the measured constant, dashed), → 1 at blow-up. Right: the measured
    constant C(t) = Ė/(3E^{4/3}) (≥ 1 by Theorem 1, = 1 in the balanced state)."""
    if "thm2_rate" not in series:
        raise ConfigError("the series table has no thm2_rate column (re-run the ODE sweep with this version)")
    run_ids = pick_runs(runs) if run_ids is None else list(run_ids)
    if not run_ids:
        raise ConfigError("no blown-up run with E0 > 0: no ratio (T* − t)/E^(−1/3) to draw")
    fig, (ax, axc) = _figure(2)
    colors = [f"C{i}" for i in range(10)]
    for color, rid in zip(colors, run_ids):
        run = runs[runs["run_id"] == rid].iloc[0]
        s = series[(series["run_id"] == rid)].sort_values("t")
        s = s[(s["t"] < run["t_star"]) & (s["energy"] > 0)]
        left = run["t_star"] - s["t"].to_numpy()
        rho = theory.ratio_to_blowup(s["t"], run["t_star"], s["energy"])
        c = s["thm2_rate"].to_numpy()
        # Theorem 2's lower end at t: 1/max C on [t, T*) (the constant the bound needs from t on)
        cbar_after = np.flip(np.fmax.accumulate(np.flip(np.where(np.isfinite(c), c, -np.inf))))
        ax.plot(left, rho, color=color, lw=2, label=f"run {rid} (m = {run['width']})")
        ax.plot(left, 1.0 / cbar_after, color=color, lw=1, ls="--")
        axc.plot(left, c, color=color, lw=1.5, label=f"run {rid}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="time to blow-up T* − t", ylabel="ρ = (T* − t) / E(t)^(−1/3)", ylim=(0, 1.05))
    ax.invert_xaxis()
    ax.set_title("ρ ≤ 1 (Theorem 1); dashed: 1/max C after t (Theorem 2)", fontsize=9)
    ax.legend(fontsize=8)
    axc.axhline(1.0, color="k", lw=0.8, label="C = 1: balanced rank-one state")
    axc.set(xscale="log", yscale="log", xlabel="time to blow-up T* − t", ylabel="C(t) = Ė / (3 E^(4/3))")
    axc.invert_xaxis()
    axc.set_title("measured Theorem 2 constant (≥ 1 by Theorem 1)", fontsize=9)
    axc.legend(fontsize=8)
    return figures.finish(fig)


def _blown_up(runs):
    return runs[(runs["status"].astype(str) == "blowup") & np.isfinite(runs["t_star"])]


def _scaling_fits(runs, series) -> dict:
    """The power-law fits of T* (theory.power_law_fit: only over the range where the points are a
    power law, a stated heuristic) in the width, and in the imbalance ‖a(0)‖/‖c(0)‖ at fixed width
    with the nominal scale_a/scale_c as its levels (the measured ratio scatters around it)."""
    ok = _blown_up(runs)
    imb = theory.initial_imbalance(series[series["run_id"].isin(ok["run_id"])]) if len(series) else None
    out = dict(ok=ok, width=theory.power_law_fit(ok["width"], ok["t_star"]), imb=None)
    if imb is None or not len(imb):
        out["imbalance"] = theory.power_law_fit([], [])
        return out
    by_id = ok.set_index("run_id").loc[imb.index]
    levels = (by_id["scale_a"] / by_id["scale_c"]).round(9).to_numpy() if {"scale_a", "scale_c"} <= set(by_id) else None
    out.update(imb=imb, ts=by_id["t_star"], widths=by_id["width"].to_numpy(),
               imbalance=theory.power_law_fit(imb, by_id["t_star"], groups=by_id["width"].to_numpy(), levels=levels))
    return out


def _fit_legend(sym: str, fit: dict, axis: str) -> str:
    """The legend line of a fitted power law, with the range it holds over."""
    text = f"T* ∝ {sym}^{fit['slope']:.3f} ± {fit['stderr']:.3f}"
    if fit["law"] == "two levels":
        return text + f"\n(slope between two {axis} only)"
    if fit["law"] == "range":
        return text + f"\nfor {sym} {fit['x_lo']:.3g}–{fit['x_hi']:.3g} only (heuristic range)"
    return text


def scaling_figure(runs, series):
    """T* against width m and against the imbalance ‖a(0)‖/‖c(0)‖ (log-log, fitted exponents over
    the range where the points are a power law, or why not), and the final-stage time t_fs
    against T*."""
    ok = _blown_up(runs)
    if ok.empty:
        raise ConfigError("no blown-up run with a finite T*: nothing to fit")
    fig, (axm, axi, axf) = _figure(3, (5.4, 5.0))
    fits = _scaling_fits(runs, series)
    fit = fits["width"]
    axm.scatter(ok["width"], ok["t_star"], s=6, alpha=0.4)
    med = ok.groupby("width")["t_star"].median()
    axm.plot(med.index, med.to_numpy(), "ko", ms=4, label="median per width")
    if np.isfinite(fit["slope"]):
        w = np.array([fit["x_lo"], fit["x_hi"]], float)
        axm.plot(w, np.exp(fit["intercept"]) * w ** fit["slope"], "k-", lw=1, label=_fit_legend("m", fit, "widths"))
    else:
        axm.plot([], [], ls="", label=_fit_text("T* ~ m", fit, "widths").replace("T* ~ m: ", ""))
    axm.set(xscale="log", yscale="log", xlabel="width m", ylabel="T*")
    _legend_below(axm)
    axm.set_title(f"T* against width ({len(ok)} runs)", fontsize=9)

    imb = fits["imb"]
    if imb is not None and len(imb) and np.ptp(np.log(imb.to_numpy())) > 1e-6:
        ts, widths, fi = fits["ts"], fits["widths"], fits["imbalance"]  # the exponent at fixed width
        for j, w in enumerate(np.unique(widths)):
            sel = widths == w
            axi.scatter(imb[sel], ts[sel], s=6, alpha=0.4, color=f"C{j}", label=f"m = {w}")
            if not np.isfinite(fi["slope"]):
                continue
            inside = sel & (imb.to_numpy() >= fi["x_lo"]) & (imb.to_numpy() <= fi["x_hi"])  # the fitted range only
            x = np.geomspace(fi["x_lo"], fi["x_hi"], 20)
            c = np.exp(np.mean(np.log(ts[inside])) - fi["slope"] * np.mean(np.log(imb[inside])))
            axi.plot(x, c * x ** fi["slope"], color=f"C{j}", lw=1.2)
        if np.isfinite(fi["slope"]):
            axi.plot([], [], "k-", lw=1, label=_fit_legend("ratio", fi, "imbalances") + ", at fixed m")
        else:
            axi.plot([], [], ls="", label=_fit_text("T*", fi, "imbalances").replace("T*: ", ""))
        axi.set(xscale="log", yscale="log")
        _legend_below(axi, ncols=2)
    else:
        axi.text(0.5, 0.5, "one imbalance only", ha="center", va="center", transform=axi.transAxes)
    axi.set(xlabel="‖a(0)‖ / ‖c(0)‖ (Assumption 1)", ylabel="T*")
    axi.set_title("T* against the init-scale imbalance", fontsize=9)

    fs = ok[np.isfinite(ok["t_final_stage"])]
    if len(fs):
        axf.scatter(fs["t_star"], fs["t_final_stage"], s=6, alpha=0.5)
        lo, hi = fs["t_star"].min(), fs["t_star"].max()
        axf.plot([lo, hi], [lo, hi], "k--", lw=1, label="t_fs = T*")
        frac = (fs["t_final_stage"] / fs["t_star"]).to_numpy()
        axf.set(xscale="log", yscale="log")
        _legend_below(axf)
        axf.set_title(f"final stage at t_fs/T*: median {np.median(frac):.3f}, min {frac.min():.3f}\n({len(fs)} runs)", fontsize=9)
    else:
        axf.text(0.5, 0.5, "no run reached the final stage", ha="center", va="center", transform=axf.transAxes)
    axf.set(xlabel="T*", ylabel="final-stage time t_fs")
    return figures.finish(fig)


def _tables(out: Path):
    """The runs and series of a three-layer ODE result directory (or one ConfigError line)."""
    from ..engine import store

    runs = store.read_runs(out)
    if "t_star" not in runs or "E0" not in runs:
        raise ConfigError(f"{str(out)!r} has no T* column: theory checks need an ODE sweep (condense ode / run)")
    _require_three_layer(runs)
    return runs, store.read_series(out, list(runs["run_id"]))


def theory_numbers(runs, series) -> dict:
    """The key numbers of the theory checks: Theorem 1 violations, the least measured C(t), and
    the power-law exponents of T* in the width and in the imbalance at fixed width (each over the
    range where the points are a power law, with that range; theory.power_law_fit)."""
    fits = _scaling_fits(runs, series)
    return dict(
        runs=len(runs), violations=theory.tstar_violations(runs),
        width_exponent=fits["width"], imbalance_exponent=fits["imbalance"],
        min_thm2_rate=float(np.nanmin(series["thm2_rate"])) if "thm2_rate" in series else np.nan,
    )


def theory_figures_from_dir(out: Path, fig_dir: Path | None = None) -> tuple[list[Path], dict]:
    """Every theory-check figure of an ODE result directory, and the key numbers."""
    out = Path(out)
    runs, series = _tables(out)
    fig_dir = Path(fig_dir) if fig_dir is not None else out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    chosen = pick_runs(runs)
    written = [tstar_bounds_figure(runs, series[series["run_id"].isin(chosen)], fig_dir / "tstar_bounds.png", chosen)]
    for name, make in (("tstar_ratio", lambda: ratio_figure(runs, series, chosen)), ("tstar_scaling", lambda: scaling_figure(runs, series))):
        written.append(figures.save(make(), fig_dir / f"{name}.png"))
    return written, theory_numbers(runs, series)


def sweep_figures(out: Path, fig_dir: Path) -> list[Path]:
    """The figures of a finished ODE sweep (the registry's `figures`): T* and its bounds, the ratio
    and the scaling checks (three-layer sweeps; other depths have none)."""
    return theory_figures_from_dir(out, fig_dir)[0]


CAPTIONS = {  # what to look for in each figure (the report's captions), by file stem prefix
    "tstar_bounds": "Left: every run must lie below the diagonal T* = E₀^(−1/3) (Theorem 1; the title counts violations). "
                    "Right: E(t) against the time left, between Theorem 1's lower and Theorem 2's upper envelope from the "
                    "final-stage time; near T* every run follows the balanced law (T* − t)^(−3).",
    "tstar_ratio": "ρ = (T* − t)/E^(−1/3) (≤ 1 by Theorem 1) and the measured C(t) = Ė/(3E^(4/3)) (≥ 1, the "
                   "inequality Theorem 1's proof rests on); look for both near 1 close to T*, as on the balanced law "
                   "(measured, not proved for every start).",
    "tstar_scaling": "T* against the width and against the imbalance ‖a(0)‖/‖c(0)‖, with power laws fitted only "
                     "over the range where the points are one (a heuristic: the widest run of ≥ 3 neighbouring levels "
                     "whose local log-log slopes are within ±0.15 of the exponent; the legend names the range, or says "
                     "why there is no fit).",
}


def summary_lines(out: Path) -> list[str]:
    """The theory checks in two lines (the registry's `summary`): Theorem 1 violations, the least
    measured C(t), and the fitted exponents of T*; none for depths other than 3."""
    try:
        nums = theory_numbers(*_tables(Path(out)))
    except ConfigError:
        return []
    return theory_lines(nums)


def _fit_text(label: str, fit: dict, axis: str) -> str:
    """`T* ~ m^-0.532 ± 0.008 (widths 10–100)`, the range when the law holds over part of it only,
    or in words why there is no power law (one level; local slopes that never agree)."""
    law = fit.get("law", "holds" if np.isfinite(fit["slope"]) else "one level")
    one = axis[:-1] if axis.endswith("s") else axis
    if law == "one level" or (law != "no" and not np.isfinite(fit["slope"])):
        return f"{label}: no fit ({fit['n']} runs, one {one})"
    if law == "no":
        local = np.asarray(fit.get("local", []), float)
        spread = f"local log-log slopes {local.min():.2f} to {local.max():.2f}" if local.size else "no local slopes"
        return (f"{label}: not a power law ({spread} over {fit['levels']} {axis}: "
                f"no 3 neighbouring {axis} within ±{stats.POWER_LAW_TOL:g} of one exponent)")
    se = f" ± {fit['stderr']:.3f}" if np.isfinite(fit["stderr"]) else " (no stderr: too few points)"
    text = f"{label}^{fit['slope']:.3f}{se}"
    rng = f"{fit['x_lo']:.3g}–{fit['x_hi']:.3g}" if np.isfinite(fit.get("x_lo", np.nan)) else ""
    if law == "two levels":
        return text + f" (two {axis} only, {rng}: a slope, not a tested power law)"
    if law == "range":
        return text + (f" for {one} {rng} only ({fit['levels_used']} of {fit['levels']} {axis}; "
                       f"outside it the local log-log slopes differ from the exponent by more than {stats.POWER_LAW_TOL:g})")
    return text + (f" ({axis} {rng})" if rng else "")


def theory_lines(nums: dict) -> list[str]:
    """The theory checks' numbers as the CLI prints them, and the rule the power-law fits follow."""
    return [f"{nums['runs']} runs; T* > E0^(-1/3) (Theorem 1 violated): {nums['violations']}; "
            f"min measured C(t) = {nums['min_thm2_rate']:.6g} (Theorem 1: >= 1)",
            f"{_fit_text('T* ~ m', nums['width_exponent'], 'widths')}; "
            f"{_fit_text('T* ~ (|a0|/|c0|)', nums['imbalance_exponent'], 'imbalances')}",
            f"(power laws fitted by a heuristic: over the widest run of >= {stats.POWER_LAW_MIN_LEVELS} neighbouring "
            f"levels whose local log-log slopes are all within ±{stats.POWER_LAW_TOL:g} of the fitted exponent)"]
