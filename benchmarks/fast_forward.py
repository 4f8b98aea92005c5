"""Issue #20: fast-forward against full gradient descent, in the same run.

    python benchmarks/fast_forward.py            # agreement on the quick specs, the ε ladder, the figure
    python benchmarks/fast_forward.py --quick    # fewer ε and seeds (a smoke run)
    python benchmarks/fast_forward.py --full     # the full fig2b_init_scales to loss 1e-3 (about 10 minutes)
    python benchmarks/fast_forward.py --fig1     # the paper-size Fig. 1 to loss 1e-3, cold and warm cache (about 10 minutes)

1. Agreement, per packaged quick spec (fig1_three_layer, fig2b_init_scales, cnn_fig2_digits, the
   two-layer phase diagram) run end to end both ways with `condense run` in fresh processes (cold,
   then warm compilation cache): every run's escape step (relative difference, target ≤ 0.5 %),
   final loss (≤ 1 %), Assumption 2 hold step (records apart, ≤ 1), the final rows of W¹ of one
   seed per ε paired with full GD's (min |cos|, ≥ 0.999; the CNN's kernels), and the wall time of
   each, and the GD steps of full GD over those after the handover (the most that skipping the
   plateau can save). The packaged two-layer phase diagram is ReLU, which has no leading-order
   form: its quick grid runs with tanh instead, and the regime of every grid point is compared.
2. The ε ladder (width 50, one seed, ε = 1e-2 … 1e-5, lr 0.05, each run to the loss threshold
   1e-3 so that both reach the same point of training): per run, warm, the time of full GD and of
   fast-forward, split into the effective phase (the modified-flow solve and the handover) and the
   GD that follows; fast-forward's cost at 1e-5 over its cost at 1e-2 (target ≤ 2).
3. docs/fast_forward.png: the loss of full GD and of fast-forward on top of each other for three
   ε, the handover marked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import condense_jax
from condense_jax import kinds
from condense_jax.engine.plan import seed_keys
from condense_jax.gd import data, fast_forward
from condense_jax.gd import sweep as gsweep
from condense_jax.gd.models import activations
from condense_jax.gd.train import TrainSpec, make_train

ROOT = Path(__file__).resolve().parents[1]
DELTA = 0.1


def quick_spec(name: str, variant: str | None = "quick", **overrides):
    spec, _ = kinds.load_spec(kinds.resolve_spec(name), variant)
    return dataclasses.replace(spec, **overrides) if overrides else spec


def condense_run(name: str, out: Path, variant: str | None, overrides: dict, cache: Path) -> float:
    """`condense run NAME` in a fresh process, as a user runs it (every core a device, the
    persistent compilation cache in `cache`); returns its wall time."""
    sets = [f"train.{k}={json.dumps(v)}" for k, v in overrides.items()]
    args = [sys.executable, "-m", "condense_jax.cli", "run", name, "--out", str(out), "--quiet", "--no-figure",
            *(["--variant", variant] if variant else []), *sets]
    t0 = time.perf_counter()
    res = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache),
                                                                    "PYTHONPATH": str(ROOT)})
    if res.returncode:
        raise RuntimeError(f"condense run {name} exited {res.returncode}: {res.stderr[-2000:]}")
    return time.perf_counter() - t0


def agreement(name: str, log=print, variant: str | None = "quick", pairing: bool = True, warm: bool = True,
              **overrides) -> dict:
    """Both ways end to end with `condense run` in fresh processes, each from an empty compilation
    cache (cold); with warm, each once more from the cache its first run filled (a user's repeated
    sweep)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (("full", {}), ("fast", {"fast_forward": True, "fast_forward_norm": DELTA})):
            cache = Path(tmp) / f"cache-{label}"
            for rep in range(2 if warm else 1):
                out[label + ("_warm" if rep else "_first")] = condense_run(
                    name, Path(tmp) / f"{label}{rep}", variant, {**overrides, **extra}, cache)
            out[label + "_seconds"] = out[label + ("_warm" if warm else "_first")]
            out[label] = condense_jax.load(Path(tmp) / f"{label}0", join=True)
    spec = quick_spec(name, variant, **overrides)
    a, b = out["full"]["runs"], out["fast"]["runs"]
    steps = np.unique(out["full"]["series"]["step"])
    esc = ((b["escape_step"] - a["escape_step"]).abs() / a["escape_step"]).astype(float)
    loss = ((b["loss_final"] - a["loss_final"]).abs() / a["loss_final"]).astype(float)
    if "full_hold_step" not in a:  # the CNN has no Assumption 2 counts
        a, b = a.assign(full_hold_step=pd.NA), b.assign(full_hold_step=pd.NA)
    hold = [abs(int(np.searchsorted(steps, x)) - int(np.searchsorted(steps, y)))
            for x, y in zip(a["full_hold_step"], b["full_hold_step"]) if not (pd.isna(x) or pd.isna(y))]
    one_only = a["full_hold_step"].isna() != b["full_hold_step"].isna()
    hold_missing = int(one_only.sum())
    for i in np.flatnonzero(one_only.to_numpy()):  # Assumption 2 reached in one run only: how close the other came
        log(f"  A2 full hold in one only: run {int(a['run_id'][i])} (ε {float(a['scale'][i]):.2e}): full GD "
            f"{a['full_hold_step'][i]}, fast-forward {b['full_hold_step'][i]}; final a2_in/a2_out/pairs "
            f"{[int(a[c][i]) for c in ('a2_in', 'a2_out', 'a2_in_pairs', 'a2_out_pairs')]} vs "
            f"{[int(b[c][i]) for c in ('a2_in', 'a2_out', 'a2_in_pairs', 'a2_out_pairs')]} (of m = {int(a['width'][i])}, m²)")
    regimes = ""
    if spec.gammas:  # a phase diagram: the regime of every grid point, both ways
        from condense_jax.gd.phase_diagram.fit import phase_table

        pa, pb = phase_table(a), phase_table(b)
        same = int((pa["regime_w"].to_numpy() == pb["regime_w"].to_numpy()).sum())
        slope = float((pa["slope_w"] - pb["slope_w"]).abs().max())
        regimes = (f"; phase-diagram regime the same at {same} of {len(pa)} points "
                   f"({int((pa['regime_w'] == 'condensed').sum())} condensed), S_w max |Δ| {slope:.1e}")
    # what fast-forward can save at best: every step before the handover, none after it (GD's own)
    ceiling = float(a["stop_step"].sum() / (b["stop_step"] - b["fast_forward_step"]).clip(lower=1).sum())
    cos = w1_pairing(spec) if pairing else float("nan")
    label = f"{name}{f' --variant {variant}' if variant else ''}{''.join(f' train.{k}={v}' for k, v in overrides.items())}"
    row = dict(spec=label, runs=len(a), eps=sorted(set(np.round(a["scale"], 8))),
               skipped=float((b["fast_forward_step"] / b["escape_step"]).median()),
               escape_max=float(esc.max()), escape_steps_max=int((b["escape_step"] - a["escape_step"]).abs().max()), loss_max=float(loss.max()), hold_records_max=max(hold, default=0),
               hold_missing=hold_missing, cos_min=cos, full_s=out["full_seconds"], fast_s=out["fast_seconds"],
               handed_over=int((b["fast_forward_step"] > 0).sum()), ceiling=ceiling)
    log(f"{row['spec']}: {row['runs']} runs ({row['handed_over']} handed over from the effective dynamics, the rest on GD "
        f"from step 0), ε {row['eps']}; handover at {row['skipped']:.2f} of the escape step (median){regimes}\n"
        f"  escape step |Δ|/full ≤ {row['escape_max']:.2e} (target 5e-3), |Δ| ≤ {row['escape_steps_max']} step(s); final loss ≤ {row['loss_max']:.2e} (1e-2); "
        f"A2 hold step ≤ {row['hold_records_max']} record(s) apart, {hold_missing} held in one only; "
        f"W¹ rows min |cos| {cos:.6f} (0.999)\n"
        f"  end to end{', warm' if warm else ''}: full GD {row['full_s']:.1f} s, fast-forward {row['fast_s']:.1f} s "
        f"(ratio {row['full_s'] / row['fast_s']:.2f}×)"
        + (f"; cold cache: {out['full_first']:.1f} s, {out['fast_first']:.1f} s" if warm else " (cold cache)")
        + f"; GD steps, full / after the handover: {ceiling:.2f}× "
        f"(the most skipping the plateau can save)")
    return row


def w1_pairing(spec) -> float:
    """min over runs of one seed and every ε and over rows of |cos| between the final rows of W¹
    (the CNN: the final kernels θ_β = (vec W_β, b_β))."""
    from condense_jax.gd.models import cnn

    x, y = gsweep.load_data(spec)
    width = spec.widths[0]
    tspec = gsweep.train_spec(spec, width)
    axis, values = spec.scale_axis()
    eps = [float(v) if axis == "scale" else float(width) ** -float(v) for v in values]
    key = seed_keys([0], width)[0]
    full = jax.jit(make_train(tspec, x, y))
    fast = jax.jit(make_train(dataclasses.replace(tspec, fast_forward_norm=DELTA), x, y))
    worst = 1.0
    rows = (lambda p: cnn.kernel_vectors(p)) if spec.model == "cnn" else (lambda p: p["w1"])
    for e in eps:
        wa, wb = (np.asarray(rows(f(key, e).params), np.float64) for f in (full, fast))
        c = np.sum(wa * wb, 1) / np.linalg.norm(wa, axis=1) / np.linalg.norm(wb, axis=1)
        worst = min(worst, float(np.abs(c).min()))
    return worst


def ladder(epsilons, log=print, figure: Path | None = None) -> list[dict]:
    x, y = data.tanh_regression(100, seed=0)
    x = data.with_bias(x)
    base = dict(width=50, lr=0.05, steps=400_000, loss_threshold=1e-3, record_steps=tuple(
        np.unique(np.concatenate([[0], np.geomspace(1, 400_000, 400).round()]).astype(int)).tolist()))
    full = jax.jit(make_train(TrainSpec(**base), x, y))
    fast = jax.jit(make_train(TrainSpec(**base, fast_forward_norm=DELTA), x, y))
    tspec = TrainSpec(**base, fast_forward_norm=DELTA)
    v = jax.numpy.asarray(data.target_direction(x, y), jax.numpy.float32)
    kappa = data.effective_rate(x, y, activations.get("tanh").slope0)
    effective = jax.jit(lambda p, e: fast_forward.effective_three_layer(
        p, e, v, kappa, 0.05, base["steps"], tspec.recorded(), DELTA, jax.numpy.asarray(x, jax.numpy.float32), 1.0))
    key = seed_keys([0], 50)[0]
    rows, curves = [], {}
    for e in epsilons:
        timed = {}
        for label, f in (("full", full), ("fast", fast)):
            res = f(key, e)
            jax.block_until_ready(res.loss)  # compiled (the first ε) and warm
            t0 = time.perf_counter()
            res = f(key, e)
            jax.block_until_ready(res.loss)
            timed[label] = (time.perf_counter() - t0, res)
        p0 = timed["fast"][1].params0
        jax.block_until_ready(effective(p0, e))
        t0 = time.perf_counter()
        jax.block_until_ready(effective(p0, e))
        t_eff = time.perf_counter() - t0
        (t_full, rf), (t_fast, rb) = timed["full"], timed["fast"]
        row = dict(eps=e, full_s=t_full, fast_s=t_fast, effective_s=t_eff, gd_s=max(t_fast - t_eff, 0.0),
                   k_h=int(rb.fast_forward_step), escape_full=int(rf.escape_step), escape_fast=int(rb.escape_step),
                   stop_full=int(rf.stop_step), stop_fast=int(rb.stop_step),
                   loss_full=float(rf.loss[-1]), loss_fast=float(rb.loss[-1]))
        rows.append(row)
        log(f"ε {e:.0e}: full GD {t_full:7.3f} s ({row['stop_full']} steps to loss 1e-3), fast-forward {t_fast:6.3f} s "
            f"= effective {t_eff:.3f} s + GD {row['gd_s']:.3f} s ({row['stop_fast'] - row['k_h']} steps from k_h = {row['k_h']}); "
            f"escape {row['escape_full']} vs {row['escape_fast']} ({abs(row['escape_fast'] - row['escape_full']) / row['escape_full']:.1e}); "
            f"speed-up {t_full / t_fast:.1f}×")
    first, last = rows[0], rows[-1]
    log(f"fast-forward's cost at ε = {last['eps']:.0e} over ε = {first['eps']:.0e}: {last['fast_s'] / first['fast_s']:.2f} "
        f"(target ≤ 2); full GD's: {last['full_s'] / first['full_s']:.1f}")
    if figure is not None:
        shown = [r for r in rows if r["eps"] in (epsilons[0], epsilons[len(epsilons) // 2], epsilons[-1])]
        for r in shown:  # dense records around the handover, both ways
            k_h = r["k_h"]
            dense = dict(base, record_steps=tuple(int(s) for s in np.unique(np.concatenate(
                [[0], np.arange(max(k_h - 1500, 0), min(k_h + 2500, base["steps"]), 10)]))))
            losses = [np.asarray(jax.jit(make_train(TrainSpec(**dense, **extra), x, y))(key, r["eps"]).loss)
                      for extra in ({}, {"fast_forward_norm": DELTA})]
            curves[r["eps"]] = (TrainSpec(**dense).recorded(), *losses, k_h)
        draw(curves, figure)
        log(f"figure: {figure}")
    return rows


def draw(curves: dict, path: Path) -> None:
    from condense_jax.engine import figures

    fig, axes = figures.figure(1, len(curves), size=(4.2 * len(curves), 3.9))
    for ax, (e, (steps, lf, lb, k_h)) in zip(axes[0], curves.items()):
        near = (steps > 0) & (steps <= k_h + 2500)  # the dense records around the handover (not step 0 or the last)
        rel = steps - k_h
        ax.plot(rel[near], lf[near], color="k", lw=3, alpha=0.3, label="full GD")
        eff = near & (steps <= k_h)
        ax.plot(rel[eff], lb[eff], color="C0", lw=1.2, label="fast-forward: effective dynamics")
        ax.plot(rel[near & (steps >= k_h)], lb[near & (steps >= k_h)], color="C3", lw=1.2, ls="--",
                label="fast-forward: GD after the handover")
        ax.axvline(0, color="C3", lw=0.8, ls=":", label="handover k_h")
        ax.set(yscale="log", xlabel=f"GD steps after the handover (k_h = {k_h:,})", ylabel="training loss",
               title=f"ε = {e:.0e}: {k_h:,} plateau steps skipped")
        ax.title.set_fontsize(9)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)
    figures.finish(fig)
    figures.save(fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ε 1e-2, 1e-3, 1e-4 only and no quick specs")
    ap.add_argument("--figure", default=str(ROOT / "docs" / "fast_forward.png"))
    ap.add_argument("--full", action="store_true",
                    help="only the full fig2b_init_scales spec (width 200, 20 runs) to loss 1e-3, both ways: about half an hour on 2 cores")
    ap.add_argument("--fig1", action="store_true",
                    help="only the paper-size fig1_three_layer (width 200, 4 runs, ε = 2.5e-5) to loss 1e-3, both ways, cold and warm cache: about 10 minutes")
    ap.add_argument("--figure-only", action="store_true", help="only the ladder's three ε and the figure")
    args = ap.parse_args()
    if args.full:
        agreement("fig2b_init_scales", variant=None, pairing=False, warm=False, loss_threshold=1e-3)
        return 0
    if args.fig1:
        agreement("fig1_three_layer", variant=None, pairing=False, loss_threshold=1e-3)
        return 0
    print(f"jax {jax.__version__}, devices {jax.devices()}, δ = {DELTA}")
    if args.figure_only:
        ladder([1e-2, 1e-4, 1e-5], figure=Path(args.figure))
        return 0
    if not args.quick:
        for name in ("fig1_three_layer", "fig2b_init_scales", "cnn_fig2_digits"):
            agreement(name)
        # the two-layer phase diagram is ReLU (no leading-order form): its grid with a smooth σ instead
        agreement("phase_two_layer", pairing=False, activation="tanh")
        agreement("fig2b_init_scales", pairing=False, loss_threshold=1e-3)  # both stop at the same point of training
    ladder([1e-2, 1e-3, 1e-4] if args.quick else [1e-2, 1e-3, 1e-4, 1e-5], figure=Path(args.figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())
