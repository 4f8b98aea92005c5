"""Figures of gradient-descent sweeps (`condense train` result directories): pandas in, Figure out.

Every figure function is pure: it takes DataFrames in the schema the training sweep writes (runs/,
series/, cosines/ Parquet tables) and returns a `matplotlib.figure.Figure` drawn on an Agg canvas.
No pyplot state is touched (nothing to close, never `show`), so they work headless and in threads.
`figures_from_dir` reads a result directory and writes every figure that applies as PNG.

    loss_figure               loss against step, plateau, measured escape, where the effective model fails (Fig. 1 left)
    cosine_heatmaps           cosine similarity of a layer's rows at init and after condensation (Fig. 1 right)
    assumption2_figure        the Assumption 2 (1) counts over training (Fig. 2a)
    max_pos_sum_figure        max over training of the "sum of positive numbers" against α (Fig. 2b)
    matrix_factorisation_figure  deep-linear loss and top singular values (Fig. 3)
    escape_figure             predicted (effective ODE) against measured escape step

Step axes are "symlog" with a linear part below 1: step 0 (the initialisation) is drawn, every
later step is on a log scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..engine import figures
from ..engine.stats import ols
from ..errors import ConfigError

MAX_LINES = 8  # runs drawn in one loss figure
STEP_AXIS = dict(value="symlog", linthresh=1.0, linscale=0.3)
STEP_LABEL = "step (0, then log scale)"


# ---------------------------------------------------------------- reading


def read_series(path: Path, run_ids=None):
    """The training series (optionally only some runs) sorted by run_id then step; empty if absent."""
    from ..engine import store

    return store.read_series(path, run_ids, empty_columns=["run_id", "step", "loss"])


def read_cosines(path: Path, run_ids=None):
    """The cosines table (run_id, step, layer, width, cos) or an empty frame if the folder is missing."""
    from ..engine import store

    return store.read_rows(path, "cosines", run_ids, ("run_id", "layer", "step"), ["run_id", "step", "layer", "width", "cos"])


# ---------------------------------------------------------------- helpers


def _figure(nrows: int = 1, ncols: int = 1, figsize=(6.0, 4.4)):
    fig, axes = figures.figure(nrows, ncols, figsize)
    return fig, axes.ravel()


def _num(col) -> np.ndarray:
    """A numeric column (nullable Int64 included) as float64 with NaN for missing values."""
    import pandas as pd

    return pd.to_numeric(pd.Series(col), errors="coerce").astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)


def _fmt(x) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _colors(fig, k: int):
    import matplotlib

    cyc = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cyc[i % len(cyc)] for i in range(k)]


def _alpha(runs) -> np.ndarray:
    """γ with ε = m^(−γ): scale_exponent where given, else −log ε / log m."""
    width = _num(runs["width"])
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = -np.log(_num(runs["scale"])) / np.log(width)
    if "scale_exponent" not in runs:
        return derived
    given = _num(runs["scale_exponent"])
    return np.where(np.isfinite(given), given, derived)


def _one(values) -> str:
    """The one value, or the set of values ({…} after four), in numeric order where numeric."""
    def key(v):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    u = sorted({str(v) for v in values}, key=key)
    return u[0] if len(u) == 1 else "{" + ", ".join(u[:4]) + (", …" if len(u) > 4 else "") + "}"


def pick_train_runs(runs, k: int = MAX_LINES) -> list[int]:
    """Up to k run ids, deterministic: one seed (the smallest) of each (model, width, ε), spread
    evenly over them when there are more than k; further seeds round-robin when there are fewer."""
    if runs.empty:
        return []
    keys = [c for c in ("model", "width", "scale") if c in runs]
    r = runs.sort_values(keys + ["seed", "run_id"] if "seed" in runs else keys + ["run_id"], kind="stable")
    r = r.assign(_rank=r.groupby(keys, sort=False).cumcount().to_numpy())
    first = r[r["_rank"] == 0]
    if len(first) >= k:
        idx = np.unique(np.linspace(0, len(first) - 1, k).round().astype(int))
        chosen = first.iloc[idx]
    else:
        chosen = r.sort_values(["_rank"] + keys, kind="stable").head(k)
    return [int(i) for i in chosen.sort_values(keys + ["run_id"], kind="stable")["run_id"]]


def _run_label(run) -> str:
    s = f"ε={_fmt(float(run['scale']))}, m={int(run['width'])}"
    if "seed" in run:
        s += f", seed {int(run['seed'])}"
    if "status" in run and run["status"] != "finished":
        s += f" [{run['status']}]"
    return s


def _record_at_or_after(step: float, steps) -> int | None:
    """Index of the first record at or after `step` (None past the last record). The escape marker
    sits there, on the measured loss: records are ~40 log-spaced steps, so a point interpolated
    between two of them at the escape step would show a loss that was never measured (e.g. 0.9 ×
    the initial loss where the threshold is 0.5)."""
    i = int(np.searchsorted(steps, step, side="left"))
    return i if i < len(steps) else None


def _step_axis(ax, last=None, linear: bool = False) -> None:
    """The step axis: symlog (0, then log) by default; linear where the dynamics of interest are
    late (saddle plateaus), so they are not squeezed into the last sliver of a log axis."""
    if linear:
        ax.set_xlabel("step")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    else:
        ax.set_xscale(**STEP_AXIS)
        ax.set_xlabel(STEP_LABEL)
    if last is not None and np.isfinite(last) and last > 0:
        ax.set_xlim(0, last)


# ---------------------------------------------------------------- Fig. 1 left: loss


def loss_figure(runs, series, run_ids=None):
    """Loss against step (left: log loss; right: loss / initial loss, linear) for ≤ 8 runs.

    On each curve: the measured escape step (first step with loss ≤ escape_fraction × initial loss,
    a circle on the measured loss of the first record at or after it, not on an interpolation) and, shaded in the run's colour from there on, where the effective model fails: from
    the predicted escape step T*/(ε κ lr) of the effective ODE, or from the measured escape step
    when no prediction is available (said in the legend). The initial plateau is the flat start.
    """
    have = set(int(r) for r in series["run_id"].unique()) if len(series) else set()
    if run_ids is None:
        run_ids = pick_train_runs(runs[runs["run_id"].isin(have)])
    run_ids = [int(r) for r in run_ids if int(r) in have][:MAX_LINES]
    if not run_ids:
        raise ConfigError("no run with a recorded loss series: no loss curve to draw")
    fig, (ax_log, ax_lin) = _figure(1, 2, figsize=(12, 4.6))
    if not run_ids:
        for ax in (ax_log, ax_lin):
            ax.text(0.5, 0.5, "no runs with a loss series", ha="center", va="center", transform=ax.transAxes)
        return fig
    fig.set_figheight(5.6)
    byid = runs.set_index("run_id")
    colors = _colors(fig, len(run_ids))
    drawn = {}
    for rid in run_ids:
        run = byid.loc[rid]
        s = series[series["run_id"] == rid].sort_values("step")
        if "stop_step" in run and np.isfinite(_num([run["stop_step"]])[0]):
            s = s[s["step"] <= int(run["stop_step"])]  # a stopped run is frozen afterwards
        drawn[rid] = s
    last_step = float(max(s["step"].max() for s in drawn.values()))  # the last drawn record
    from_measured = 0
    beyond = 0
    fractions = set()
    for color, rid in zip(colors, run_ids):
        run, s = byid.loc[rid], drawn[rid]
        steps, loss = s["step"].to_numpy(float), s["loss"].to_numpy(float)
        l0 = float(run["loss_initial"]) if "loss_initial" in run else float(loss[0])
        label = _run_label(run)
        ax_log.plot(steps, loss, color=color, lw=1.6, label=label, gid=f"loss:{rid}")
        ax_lin.plot(steps, loss / l0, color=color, lw=1.6, gid=f"loss:{rid}")
        esc = _num([run["escape_step"]])[0] if "escape_step" in run else np.nan
        pred = _num([run["predicted_escape_step"]])[0] if "predicted_escape_step" in run else np.nan
        if "escape_fraction" in run:
            fractions.add(float(run["escape_fraction"]))
        at = _record_at_or_after(esc, steps) if np.isfinite(esc) else None
        if at is not None:  # the measured loss at the first record at/after the escape step, never interpolated
            ax_log.plot([steps[at]], [loss[at]], "o", color=color, mec="k", ms=7, zorder=4, gid=f"escape:{rid}")
            ax_lin.plot([steps[at]], [loss[at] / l0], "o", color=color, mec="k", ms=7, zorder=4, gid=f"escape:{rid}")
        start = pred if np.isfinite(pred) else esc
        if np.isfinite(start):
            from_measured += not np.isfinite(pred)
            beyond += start > last_step
            for ax in (ax_log, ax_lin):  # light enough that 8 overlapping spans stay readable
                ax.axvspan(start, max(start, last_step), color=color, alpha=0.15 / len(run_ids) ** 0.5, lw=0,
                           gid=f"fails:{rid}")
                ax.axvline(start, color=color, ls="--", lw=1.0, gid=f"fails_start:{rid}")
    for ax in (ax_log, ax_lin):
        _step_axis(ax, last_step)
    ax_log.set(yscale="log", ylabel="training loss (MSE)")
    ax_lin.set(ylabel="loss / initial loss")
    for f in sorted(fractions):
        ax_lin.axhline(f, color="k", ls=":", lw=0.9, label=f"escape threshold {f:g} × initial")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    extra = [Line2D([], [], ls="", marker="o", color="w", mec="k",
                    label="measured escape: loss at the first record at/after the escape step")]
    shade = "effective model fails: shaded from the predicted escape step"
    if from_measured:
        shade += f"\n(from the measured one for {from_measured} run(s) without a prediction)"
    if beyond:
        shade += f"\n{beyond} start(s) beyond the last step"
    extra.append(Patch(color="grey", alpha=0.3, label=shade + "; dashed: its start"))
    h, lab = ax_log.get_legend_handles_labels()
    h2, lab2 = ax_lin.get_legend_handles_labels()
    fig.legend(h + extra + h2, lab + [e.get_label() for e in extra] + lab2, fontsize=7, loc="outside lower center",
               ncols=3)
    shown = runs[runs["run_id"].isin(run_ids)]
    title = f"GD loss: {_one(shown['model']) if 'model' in shown else ''}"
    if "activation" in shown:
        title += f", σ = {_one(shown['activation'])}"
    if "lr" in shown:
        title += f", lr = {_one(shown['lr'])}"
    title += f", m = {_one(shown['width'])}, ε = {_one(_fmt(v) for v in shown['scale'])}"
    title += f"  ({len(run_ids)} of {len(runs)} runs shown)"
    fig.suptitle(title, fontsize=10)
    return figures.finish(fig)


# ---------------------------------------------------------------- Fig. 1 right: cosine heatmaps


def block_order(cos) -> np.ndarray:
    """A deterministic row order that makes condensed blocks contiguous (a permutation of 0..m−1).

    Each row i is placed at the angle of (√λ₁ u₁ᵢ, √λ₂ u₂ᵢ), its coordinates on the two leading
    eigenvectors of the (symmetric) cosine matrix, i.e. the leading principal directions of the
    normalised rows; rows are sorted by that angle, starting after the widest angular gap so no
    block is cut at ±π. Eigenvector signs are fixed (largest entry positive); ties keep row order.
    """
    c = np.asarray(cos, dtype=np.float64)
    m = c.shape[0]
    if m <= 2:
        return np.arange(m)
    c = np.nan_to_num(0.5 * (c + c.T))
    from scipy.linalg import eigh

    lam, vec = eigh(c, subset_by_index=[m - 2, m - 1])  # the two leading pairs only (m up to 1024: kernels)
    lam, vec = lam[::-1], vec[:, ::-1]
    for j in range(2):
        if vec[np.argmax(np.abs(vec[:, j])), j] < 0:
            vec[:, j] = -vec[:, j]
    xy = vec * np.sqrt(np.clip(lam, 0.0, None))
    ang = np.round(np.arctan2(xy[:, 1], xy[:, 0]), 9)  # round: equal directions compare equal
    order = np.argsort(ang, kind="stable")
    a = ang[order]
    gaps = np.diff(np.concatenate([a, [a[0] + 2 * np.pi]]))
    cut = int(np.argmax(gaps))
    return np.roll(order, -(cut + 1))


def _cos_matrix(row) -> np.ndarray:
    m = int(row["width"])
    return cos_matrix(row["cos"]).reshape(m, m)


def cos_matrix(value) -> np.ndarray:
    """A `cos` value as a float array, however it was read: the matrix (condense_jax.load), its rows
    as an object array (pandas.read_parquet) or a flat list (tables written before issue #19)."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = np.stack(value) if len(value) else np.zeros((0, 0))
    return np.asarray(value, dtype=np.float64)


def cosine_heatmaps(cosines, run_id, steps=None, layer: str = "w1", absolute: bool = False):
    """Heatmaps of the cosine similarity of a layer's rows (W¹ by default) at the given recorded
    steps, by default the smallest (init) and the largest (last recorded, i.e. after condensation
    when the run condensed).

    All panels use one row order, `block_order` of the last panel's matrix, so the same neuron sits
    at the same place in each; signed cosine on a diverging colormap from −1 to 1 (|cos| from 0 to 1
    with absolute=True).
    """
    sel = cosines[(cosines["run_id"] == run_id) & (cosines["layer"] == layer)].sort_values("step")
    if sel.empty:
        raise ConfigError(f"no {layer} cosine matrices recorded for run {run_id}")
    have = sel["step"].to_numpy()
    if steps is None:
        steps = sorted({int(have.min()), int(have.max())})
    rows = []
    for st in steps:
        i = int(np.argmin(np.abs(have - st)))  # the nearest recorded step
        rows.append(sel.iloc[i])
    from matplotlib.ticker import MaxNLocator

    mats = [_cos_matrix(r) for r in rows]
    order = block_order(mats[-1])
    fig, axes = _figure(1, len(mats), figsize=(4.6 * len(mats) + 0.8, 4.3))
    cmap, (lo, hi) = ("viridis", (0.0, 1.0)) if absolute else ("RdBu_r", (-1.0, 1.0))
    im = None
    for ax, r, c in zip(axes, rows, mats):
        shown = c[np.ix_(order, order)]
        im = ax.imshow(np.abs(shown) if absolute else shown, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        which = "init" if int(r["step"]) == int(have.min()) else "last recorded" if int(r["step"]) == int(have.max()) else ""
        ax.set_title(f"step {int(r['step'])}" + (f" ({which})" if which else ""), fontsize=10)
        ax.set_xlabel("neuron (reordered)")
        ax.set_ylabel("neuron (reordered)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=list(axes), shrink=0.85, label="|cos|" if absolute else "cosine similarity")
    name = {"w1": "W¹", "w2": "W²"}.get(layer, layer)
    fig.suptitle(f"run {run_id}: cosine similarity of the rows of {name} (m = {mats[0].shape[0]}; "
                 f"rows ordered by angle at step {int(rows[-1]['step'])})", fontsize=10)
    fig.condense_order = order
    return figures.finish(fig)


# ---------------------------------------------------------------- Fig. 2a: Assumption 2 over training


def assumption2_figure(series, run_id, width=None):
    """Assumption 2 (1) counts over training for one run: #i with cᵢ aᵀbⁱ > 0 (a2_in) and #i with
    aᵢ bᵢ c > 0 (a2_out), with the maximum m dashed; when pair counts are recorded, a second panel
    gives Assumption 2 (2) as fractions of m². The first step where the whole assumption holds
    (a2_holds) is marked by a vertical line. `width` defaults to the series' width column if any."""
    s = series[series["run_id"] == run_id].sort_values("step")
    if s.empty or "a2_in" not in s:
        raise ConfigError(f"run {run_id} has no Assumption 2 series (a2_in/a2_out)")
    if width is None and "width" in s:
        width = int(s["width"].iloc[0])
    pairs = [c for c in ("a2_in_pairs", "a2_out_pairs") if c in s and s[c].notna().any()]
    fig, axes = _figure(1, 2 if pairs and width else 1, figsize=(12 if pairs and width else 6.4, 4.4))
    steps = s["step"].to_numpy(float)
    ax = axes[0]
    ax.plot(steps, _num(s["a2_in"]), lw=1.6, label="#i: cᵢ aᵀbⁱ > 0 (a2_in)", gid="a2_in")
    if "a2_out" in s:
        ax.plot(steps, _num(s["a2_out"]), lw=1.6, label="#i: aᵢ bᵢ c > 0 (a2_out)", gid="a2_out")
    if width:
        ax.axhline(width, color="k", ls="--", lw=1, label=f"maximum m = {width}", gid="width")
    ax.set_ylabel("count of indices i")
    first = None
    if "a2_holds" in s:
        holds = s["a2_holds"].fillna(False).astype(bool).to_numpy()
        if holds.any():
            first = float(steps[np.argmax(holds)])
    if pairs and width:
        for c in pairs:
            axes[1].plot(steps, _num(s[c]) / width**2, lw=1.6, gid=c,
                         label={"a2_in_pairs": "⟨cᵢbⁱ, cⱼbʲ⟩ > 0", "a2_out_pairs": "⟨aᵢbᵢ, aⱼbⱼ⟩ > 0"}[c])
        axes[1].axhline(1.0, color="k", ls="--", lw=1)
        axes[1].set(ylabel="fraction of pairs (i, j) of m²")
        axes[1].set_title("Assumption 2 (2)", fontsize=10)
    for a in axes:
        _step_axis(a, steps.max())
        if first is not None:
            a.axvline(first, color="tab:red", lw=1.2, ls="-.", label=f"Assumption 2 holds first: step {first:.0f}",
                      gid="full_hold")
        a.legend(fontsize=8)
    holds_txt = "" if first is not None else " (never fully holds)" if "a2_holds" in s else ""
    ax.set_title(f"Assumption 2 (1), run {run_id}{holds_txt}", fontsize=10)
    return figures.finish(fig)


# ---------------------------------------------------------------- Fig. 2b: max positive sum vs α


def max_pos_sum_figure(runs):
    """Max over training of the "sum of positive numbers" #i(cᵢ aᵀbⁱ > 0) + #i(aᵢ bᵢ c > 0) as a
    fraction of 2m, against α with ε = m^(−α) (scale_exponent, or −log ε / log m): one point per
    seed, mean ± std over seeds per α, one colour per width."""
    r = runs[runs["max_pos_sum"].notna()] if "max_pos_sum" in runs else runs.iloc[:0]
    if "model" in r:
        r = r[r["model"] == "three-layer"]
    if r.empty:
        raise ConfigError("no three-layer run with a max_pos_sum: no Fig. 2b to draw")
    fig, (ax,) = _figure(1, 1, figsize=(6.4, 4.4))
    if r.empty:
        ax.text(0.5, 0.5, "no three-layer runs with max_pos_sum", ha="center", va="center", transform=ax.transAxes)
        return fig
    frac = _num(r["max_pos_sum"]) / (2.0 * _num(r["width"]))
    alpha = np.round(_alpha(r), 6)
    widths = r["width"].to_numpy()
    colors = _colors(fig, len(np.unique(widths)))
    for color, w in zip(colors, np.unique(widths)):
        sel = (widths == w) & np.isfinite(alpha)
        ax.plot(alpha[sel], frac[sel], "o", color=color, ms=4, alpha=0.45, mew=0, gid=f"seeds:{w}",
                label=f"m = {w}: one point per seed")
        ua = np.unique(alpha[sel])
        mean = np.array([frac[sel][alpha[sel] == a].mean() for a in ua])
        std = np.array([frac[sel][alpha[sel] == a].std() for a in ua])
        ax.errorbar(ua, mean, yerr=std, color=color, lw=1.6, capsize=3, marker="s", ms=5, gid=f"mean:{w}",
                    label=f"m = {w}: mean ± std over seeds")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="2m (Assumption 2 (1) holds)")
    ax.set(xlabel="α  (init scale ε = m^(−α))", ylabel="max over training of positive sum / 2m")
    ax.set_title(f"Fig. 2b: max sum of positive numbers ({len(r)} runs)", fontsize=10)
    ax.legend(fontsize=8)
    return figures.finish(fig)


# ---------------------------------------------------------------- Fig. 3: matrix factorisation


def _sv_columns(frame) -> list[str]:
    cols = [c for c in frame.columns if re.fullmatch(r"sv_\d+", str(c))]
    return sorted(cols, key=lambda c: int(c[3:]))


def matrix_factorisation_figure(series, runs):
    """Deep-linear runs (W = W³W²W¹): loss (left, log), the top singular values of W (middle) and
    loss / initial loss on a linear scale (right: each saddle is a plateau, e.g. at 1/2 once one
    of the two directions of diag(1, −1) is learned) against step, ≤ 8 runs, one colour per run;
    sv_1 thick, the others thin. The step axis is linear (the saddles come late: a log axis
    squeezes them into its last sliver) and ends a quarter past the step from which every drawn
    run's loss / initial loss stays within 0.01 of its last value (the rest is flat)."""
    r = runs[runs["model"] == "deep-linear"] if "model" in runs else runs
    have = set(int(i) for i in series["run_id"].unique()) if len(series) else set()
    ids = pick_train_runs(r[r["run_id"].isin(have)])
    svs = _sv_columns(series)
    if not ids:
        raise ConfigError("no deep-linear run with a recorded series: no matrix-factorisation figure to draw")
    fig, (ax_l, ax_s, ax_r) = _figure(1, 3, figsize=(15, 5.2))
    byid = r.set_index("run_id")
    settled = 0.0
    for color, rid in zip(_colors(fig, len(ids)), ids):
        s = series[series["run_id"] == rid].sort_values("step")
        steps = s["step"].to_numpy(float)
        label = _run_label(byid.loc[rid])
        loss = s["loss"].to_numpy(float)
        moving = np.flatnonzero(np.abs(loss / loss[0] - loss[-1] / loss[0]) > 0.01)
        settled = max(settled, steps[min(moving[-1] + 1, len(steps) - 1)] if moving.size else 0.0)
        ax_l.plot(steps, loss, color=color, lw=1.6, label=label, gid=f"loss:{rid}")
        ax_r.plot(steps, loss / loss[0], color=color, lw=1.6, gid=f"rel:{rid}")
        for j, c in enumerate(svs):
            ax_s.plot(steps, _num(s[c]), color=color, lw=2.0 if j == 0 else 0.8, alpha=1.0 if j == 0 else 0.7,
                      label=label if j == 0 else None, gid=f"{c}:{rid}")
    last = float(series.loc[series["run_id"].isin(ids), "step"].max())
    shown_to = min(last, 1.25 * settled) if settled > 0 else last
    for ax in (ax_l, ax_s, ax_r):
        _step_axis(ax, shown_to, linear=True)
        if shown_to < last:
            ax.set_xlabel(f"step (flat from {settled:,.0f} on; last step {last:,.0f})")
    ax_r.set(ylim=(-0.03, 1.05), ylabel="loss / initial loss", title="saddle to saddle: plateaus of the loss")
    ax_l.set(yscale="log", ylabel="loss", title="loss")
    ax_s.set(yscale="log", ylabel="singular value of W = W³W²W¹",
             title=f"top {len(svs)} singular values (sv_1 thick)" if svs else "no singular values recorded")
    fig.legend(*ax_l.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncols=4)
    fig.suptitle(f"Matrix factorisation, deep-linear ({len(ids)} of {len(r)} runs shown)", fontsize=10)
    return figures.finish(fig)


# ---------------------------------------------------------------- CNN


def z_spectrum_figure(x, y, m: int, top: int = 15):
    """The largest eigenvalues of ZᵀZ (CNN paper, Fig. 2 left) with the gap λ₁² − λ₂² marked, and
    |cos(v₁, 𝟙)| of v₁'s kernel part in the title (v₁ ≈ 𝟙 on natural images)."""
    from . import cnn_theory

    sp = cnn_theory.spectrum(cnn_theory.z_matrix(x, y, m))
    ev = sp["eigenvalues_ztz"][:top]
    fig, (ax,) = _figure(1, 1, figsize=(6.0, 4.4))
    ax.plot(np.arange(1, len(ev) + 1), ev, "o-", gid="eigenvalues")
    if len(ev) > 1:
        ax.annotate("", xy=(1.3, ev[1]), xytext=(1.3, ev[0]), arrowprops=dict(arrowstyle="<->", color="C3"))
        ax.text(1.45, np.sqrt(ev[0] * max(ev[1], 1e-300)), f"gap λ₁² − λ₂² = {ev[0] - ev[1]:.3g}", color="C3", fontsize=8)
    ax.set(yscale="log", xlabel="index k", ylabel="eigenvalue λ_k² of ZᵀZ")
    cos1 = cnn_theory.cos_with_ones(sp["v1"], x.shape[-1] if np.ndim(x) == 4 else 1)
    ax.set_title(f"spectrum of ZᵀZ ({m}×{m} filters, n = {len(x)}); |cos(v₁, 𝟙)| = "
                 + ", ".join(f"{c:.3f}" for c in cos1), fontsize=9)
    return figures.finish(fig)


def kernel_figure(cosines, run_id: int, step=None):
    """Per kernel of the first conv layer: amplitude ‖θ_β‖/ε (red, left axis) and cos(θ_β, v₁)
    (blue, right axis) at one recorded step (default the last), kernels in the heatmaps' order."""
    rows = cosines[(cosines["run_id"] == run_id) & (cosines["layer"] == "kernels_conv1")]
    if rows.empty:
        raise ConfigError(f"run {run_id} has no per-kernel records (kernels_conv1): not a cnn run with cosines kept")
    step = int(rows["step"].max()) if step is None else int(step)
    row = rows[rows["step"] == step]
    if row.empty:
        raise ConfigError(f"run {run_id} has no per-kernel record at step {step}")
    vals = cos_matrix(row["cos"].iloc[0]).reshape(-1, 2)
    order = np.argsort(-vals[:, 0])
    fig, (ax,) = _figure(1, 1, figsize=(7.0, 4.2))
    k = np.arange(len(vals))
    ax.bar(k, vals[order, 1], color="C3", alpha=0.7, gid="amplitude")
    ax.set(xlabel="kernel (ordered by cos with v₁)", ylabel="amplitude ‖θ_β‖ / ε")
    ax.yaxis.label.set_color("C3")
    ax2 = ax.twinx()
    ax2.plot(k, vals[order, 0], "o", color="C0", ms=4, gid="cos_v1")
    ax2.set(ylim=(-1.05, 1.05), ylabel="cos(θ_β, v₁)")
    ax2.yaxis.label.set_color("C0")
    ax.set_title(f"run {run_id}, step {step}: kernels of conv1", fontsize=9)
    return figures.finish(fig)


def cnn_figures(path: Path, runs, out_dir: Path) -> list[Path]:
    """The CNN figures of a result directory: ZᵀZ spectrum of its data (from the manifest's
    config) and per-kernel amplitude / cos with v₁ for the runs whose cosines were kept."""
    import json

    from .spec import TrainSweep

    written = []
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
    cfg = {k: v for k, v in manifest.get("config", {}).items() if k not in ("kind", "data_sha256") and v is not None}
    if cfg.get("model") == "cnn":
        from . import sweep as train_sweep

        try:  # the data may have moved since the sweep ran: then no spectrum, the rest still drawn
            spec = TrainSweep.from_mapping(cfg, "manifest")
            x, y = train_sweep.load_data(spec)
            written.append(figures.save(z_spectrum_figure(x, np.asarray(y, float), spec.kernel_size), out_dir / "z_spectrum.png"))
        except ConfigError:
            pass
    if (path / "cosines").exists():
        cos = read_cosines(path)
        for rid in sorted(cos.loc[cos["layer"] == "kernels_conv1", "run_id"].unique())[:4]:
            written.append(figures.save(kernel_figure(cos, int(rid)), out_dir / f"kernels_run{int(rid)}.png"))
    return written


# ---------------------------------------------------------------- predicted vs measured escape


def escape_figure(runs):
    """Predicted escape step T*/(ε κ lr) from the effective ODE (x) against the measured escape step
    (y), log-log with y = x, coloured by ε. Diverged runs, runs that never escaped and runs
    without a prediction are left out; the counts are in the title."""
    from matplotlib.colors import LogNorm

    pred = _num(runs["predicted_escape_step"]) if "predicted_escape_step" in runs else np.full(len(runs), np.nan)
    meas = _num(runs["escape_step"]) if "escape_step" in runs else np.full(len(runs), np.nan)
    diverged = (runs["status"] == "diverged").to_numpy() if "status" in runs else np.zeros(len(runs), bool)
    never = ~diverged & ~np.isfinite(meas)
    nopred = ~diverged & ~never & ~(np.isfinite(pred) & (pred > 0))
    ok = ~diverged & ~never & ~nopred & (meas > 0)
    if not (~diverged & ~never & (meas > 0)).any():
        raise ConfigError("no run escaped its plateau: no escape steps to draw")
    escaped = ~diverged & ~never & (meas > 0)
    all_eps = _num(runs["scale"])
    levels = np.unique(all_eps[escaped & (all_eps > 0)])
    if levels.size >= 2:  # the ε-scaling panel and an ε colour scale need at least two init scales
        fig, (ax, ax_eps) = _figure(1, 2, figsize=(12.0, 5.0))
        _escape_scaling(ax_eps, runs, meas, pred, escaped)
    else:
        fig, (ax,) = _figure(1, 1, figsize=(6.5, 5.0))
    if ok.any():
        eps = all_eps[ok]
        if levels.size >= 2:
            sc = ax.scatter(pred[ok], meas[ok], c=eps, cmap="viridis", norm=LogNorm(vmin=levels.min(), vmax=levels.max()),
                            s=18, gid="runs")
            fig.colorbar(sc, ax=ax, label="init scale ε")
        else:
            ax.scatter(pred[ok], meas[ok], color="C0", s=18, gid="runs", label=f"runs (ε = {levels[0]:g})" if levels.size else "runs")
        lo, hi = min(pred[ok].min(), meas[ok].min()), max(pred[ok].max(), meas[ok].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="measured = predicted", gid="diagonal")
        ax.legend(fontsize=8)
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no run with both a prediction and an escape", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="predicted escape step T*/(ε κ lr) (steps)", ylabel="measured escape step (steps)")
    ax.set_title(f"escape: {int(ok.sum())} runs shown; left out: {int(diverged.sum())} diverged, "
                 f"{int(never.sum())} never escaped, {int(nopred.sum())} without prediction", fontsize=9)
    return figures.finish(fig)


def _escape_scaling(ax, runs, meas, pred, escaped) -> None:
    """Escape step against ε (log-log): every measured run, the median prediction per ε, and the
    fitted slope of the measured medians (the effective model predicts −1: steps ∝ 1/ε)."""
    eps = _num(runs["scale"])
    ax.set(xlabel="init scale ε", ylabel="escape step")
    levels = np.unique(eps[escaped & (eps > 0)])
    if levels.size < 2:
        ax.text(0.5, 0.5, "one init scale: no ε-scaling to show", ha="center", va="center", transform=ax.transAxes)
        return
    ax.scatter(eps[escaped], meas[escaped], s=12, alpha=0.5, color="C0", label="measured (each run)")
    med = np.array([np.median(meas[escaped & (eps == e)]) for e in levels])
    slope, icpt, _ = ols(np.log(levels), np.log(med))
    ax.plot(levels, np.exp(icpt) * levels**slope, "C0-", lw=1.2, label=f"fit to the medians: slope {slope:.3f}")
    has = escaped & np.isfinite(pred) & (pred > 0)
    if has.any():
        pl = np.unique(eps[has])
        ax.plot(pl, [np.median(pred[has & (eps == e)]) for e in pl], "k--", marker="x", lw=1,
                label="predicted T*/(ε κ lr), median")
    ax.set(xscale="log", yscale="log")
    ax.legend(fontsize=8)
    ax.set_title("ε-scaling of the escape step (effective model: slope −1)", fontsize=9)


# ---------------------------------------------------------------- a result directory


def figures_from_dir(path: Path, out_dir: Path | None = None) -> list[Path]:
    """Write every figure that applies to the result directory (default out_dir: DIR/figures) and
    return the PNG paths. A missing series/ or cosines/ table or column skips the figures that need
    it; a directory without runs/ raises ConfigError."""
    from ..engine import store

    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path / "figures"
    if not (path / "runs").exists():
        raise ConfigError(f"{str(path)!r} has no runs/ table: not a condense_jax training result")
    runs = store.read_runs(path)
    if "model" not in runs:
        runs = runs.assign(model="three-layer")
    written: list[Path] = []
    has_series = (path / "series").exists()
    models = sorted(runs["model"].unique())

    for model in models:
        r = runs[runs["model"] == model]
        tag = model.replace("-", "_")
        picked = pick_train_runs(r)
        a2_ids = pick_train_runs(r, k=4)
        series = read_series(path, sorted(set(picked) | set(a2_ids))) if has_series else None
        if series is not None and len(series) and "loss" in series:
            written.append(figures.save(loss_figure(r, series, picked), out_dir / f"loss_{tag}.png"))
        if model == "deep-linear" and series is not None and _sv_columns(series):
            written.append(figures.save(matrix_factorisation_figure(series, r), out_dir / "matrix_factorisation.png"))
        if model == "three-layer" and series is not None and "a2_in" in series:
            for rid in a2_ids:
                w = int(r.loc[r["run_id"] == rid, "width"].iloc[0])
                if (series["run_id"] == rid).any():
                    written.append(figures.save(assumption2_figure(series, rid, width=w), out_dir / f"assumption2_run{rid}.png"))

    if ("escape_step" in runs and "predicted_escape_step" in runs and np.isfinite(_num(runs["predicted_escape_step"])).any()
            and np.isfinite(_num(runs["escape_step"])).any()):
        written.append(figures.save(escape_figure(runs), out_dir / "escape.png"))
    if "max_pos_sum" in runs and ((runs["model"] == "three-layer") & runs["max_pos_sum"].notna()).any():
        written.append(figures.save(max_pos_sum_figure(runs), out_dir / "max_pos_sum.png"))

    if "cnn" in models:
        written += cnn_figures(path, runs[runs["model"] == "cnn"], out_dir)
    if (path / "cosines").exists():
        ids = pick_train_runs(runs[runs["run_id"].isin(read_cosines_ids(path))], k=4)
        cos = read_cosines(path, ids)
        cos = cos[~cos["layer"].str.startswith("kernels_")]
        for layer in sorted(cos["layer"].unique()) if len(cos) else []:
            for rid in ids:
                if ((cos["run_id"] == rid) & (cos["layer"] == layer)).any():
                    fig = cosine_heatmaps(cos, rid, layer=layer)
                    written.append(figures.save(fig, out_dir / f"cosines_{layer}_run{rid}.png"))
    return written


def sweep_figures(path: Path, out_dir: Path) -> list[Path]:
    """The figures of a finished training sweep (the registry's `figures`): every training figure
    that applies, and the phase diagram of a phase grid."""
    from .phase_diagram.plots import sweep_figures as phase_figures

    return figures_from_dir(path, out_dir) + phase_figures(path, out_dir)


def read_cosines_ids(path: Path) -> list[int]:
    """Run ids present in the cosines table (reads only that column)."""
    from ..engine import store

    p = Path(path) / "cosines"
    if not p.exists():
        return []
    return sorted(int(i) for i in store.read_table(path, "cosines", columns=["run_id"])["run_id"].unique())


__all__ = [
    "assumption2_figure", "block_order", "cosine_heatmaps", "escape_figure", "figures_from_dir", "loss_figure",
    "matrix_factorisation_figure", "max_pos_sum_figure", "pick_train_runs", "read_cosines", "read_series",
]


CAPTIONS = {  # what to look for in each figure (the report's captions), by file stem prefix
    "loss_": "Training loss of a few runs against the step: from small init a plateau, then the escape (marked); "
             "the smaller ε, the longer the plateau.",
    "matrix_factorisation": "Deep matrix factorisation (Fig. 3): the singular values of W = W³W²W¹ are learned one "
                            "after another, with saddle plateaus between.",
    "assumption2_run": "Assumption 2's indicators along training (Fig. 2a): look for the positive sum reaching its "
                       "maximum 2m, where Assumption 2 (1) holds.",
    "escape": "Measured escape step against the effective ODE's prediction T*/(ε κ lr) (the diagonal), and its "
              "scaling in ε (the effective model predicts slope −1).",
    "max_pos_sum": "Maximum over steps of the Fig. 2 positive sum against ε: 2m means Assumption 2 (1) held at some step.",
    "z_spectrum": "Spectrum of the CNN's linearised dynamics Z: look for a gap after λ₁, the condition under which "
                  "the CNN paper's kernels condense onto v₁.",
    "kernels_run": "|cos| between the CNN's kernels: blocks of ±1 are condensed kernels.",
    "cosines_": "|cos| between hidden neurons' weight vectors at the first and last recorded step (block-ordered): "
                "blocks of ±1 are neurons condensed onto a few directions.",
    "phase_diagram": "Measured regime at each grid point (linear, critical, condensed) over the theory's boundary; "
                     "S_w ± stderr is the width slope of RD.",
    "phase_rd_width": "RD against width per grid point: decreasing is linear, flat critical, increasing condensed.",
    "phase_scores": "Condensation scores over the grid.",
}
