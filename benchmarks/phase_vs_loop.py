"""Benchmark: the two-layer quick phase diagram, vmapped engine against a plain Python loop.

The grid is `sweeps/phase_two_layer.toml --variant quick` (5 γ × 5 γ' points, widths 32–256,
8 seeds: 800 runs of the two-layer ReLU network, each trained until its loss falls below the
threshold, at most 20,000 GD steps with the per-run step size min(lr, lr_ntk/K₀)).

* condense_jax: `condense_jax.run` (what `condense run` does): per (width, γ') one
  compiled jit(vmap(vmap(train))) over seeds × γ, seeds split over the cores, Parquet out; then
  `phase.phase_table` (the fit and the classification) — timed whole, compilation included;
* plain loop (the peer): the same per-run code, `train.make_train(spec, x, y)` jitted once per
  (width, γ') and called once per (γ, seed), a Python loop over the 800 configurations — what a
  user writes around a single-run trainer; RD and final loss collected into a list.

Both must agree: the same status for every run, final RD of w equal to 1e-4 relative
(float32; vmap changes the order of some reductions), and the same regime at every grid point.
Prints both times, runs/s and the ratio.

    /tmp/venv/bin/python benchmarks/phase_vs_loop.py          # ~3 minutes on 2 cores
    /tmp/venv/bin/python benchmarks/phase_vs_loop.py --loop-fraction 0.25   # loop on 2 of 8 seeds, extrapolated
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=str(ROOT / "sweeps" / "phase_two_layer.toml"))
    ap.add_argument("--variant", default="quick")
    ap.add_argument("--loop-fraction", type=float, default=1.0,
                    help="time the loop on this fraction of the seeds and extrapolate (labelled)")
    args = ap.parse_args(argv)

    from condense_jax.engine.devices import use_all_cpu_cores

    use_all_cpu_cores()
    import jax
    import numpy as np
    import pandas as pd

    from condense_jax import run
    from condense_jax.gd import sweep as train_sweep
    from condense_jax.gd import train
    from condense_jax.gd.phase_diagram import fit as phase
    from condense_jax.kinds import load_spec

    spec, _ = load_spec(args.spec, args.variant)
    print(f"two-layer phase diagram '{spec.name}': {len(spec.gammas)} γ × {len(spec.gamma_primes)} γ' × "
          f"widths {list(spec.widths)} × {len(spec.seeds)} seeds = {spec.n_runs} runs, ≤ {spec.steps} steps, "
          f"{os.cpu_count()} cores, {len(jax.local_devices())} XLA devices")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run(spec, Path(tmp) / "out", figures=False)
        runs = pd.read_parquet(Path(tmp) / "out" / "runs")
        table = phase.phase_table(runs)
        t_engine = time.perf_counter() - t0
    print(f"condense_jax (run + phase_table, compilation included): {t_engine:.1f} s, "
          f"{spec.n_runs / t_engine:.1f} runs/s")

    # the plain loop: one jitted single-run trainer per (width, γ'), one call per configuration
    x, y = train_sweep.load_data(spec)
    g = train_sweep.grid(spec)
    seeds = spec.seeds[: max(1, round(len(spec.seeds) * args.loop_fraction))]
    g_loop = g[g["seed"].isin(seeds)]
    rows = []
    t0 = time.perf_counter()
    with jax.default_device(jax.local_devices()[0]):
        for (width, gp), group in g_loop.groupby(["width", "gamma_prime"], sort=False):
            tspec = train_sweep.train_spec(spec, int(width), float(gp))
            one = jax.jit(train.make_train(tspec, x, y))
            for r in group.itertuples():
                key = train_sweep.seed_keys([r.seed], int(width))[0]
                res = one(key, np.asarray(r.scale, dtype=tspec.dtype))
                rows.append((r.run_id, train.STATUS_CODES[int(res.status)], float(res.series["rd_w"][-1])))
    t_loop = time.perf_counter() - t0
    scale = len(g) / len(g_loop)
    label = "measured" if scale == 1 else f"measured on {len(g_loop)} runs, ×{scale:.2f} extrapolated"
    print(f"plain Python loop (same make_train, one jitted call per run, 1 device): {t_loop * scale:.1f} s ({label})")

    loop = pd.DataFrame(rows, columns=["run_id", "status", "rd_w"]).set_index("run_id")
    mine = runs.set_index("run_id").loc[loop.index]
    same_status = (mine["status"] == loop["status"]).mean()
    both = (mine["status"] == "converged") & (loop["status"] == "converged")
    rel = np.abs(mine.loc[both, "rd_w"] - loop.loc[both, "rd_w"]) / np.abs(loop.loc[both, "rd_w"])
    ok = same_status >= 0.99 and (rel.max() if len(rel) else 0) <= 1e-4
    if scale == 1:
        loop_runs = runs.set_index("run_id").copy()
        loop_runs.loc[loop.index, ["status", "rd_w"]] = loop[["status", "rd_w"]]
        same_regime = (phase.phase_table(loop_runs.reset_index())["regime_w"] == table["regime_w"]).mean()
        ok &= same_regime == 1
        print(f"agreement: same status {same_status:.1%}, max rel ΔRD {rel.max():.1e} (tol 1e-4), "
              f"same regime at {same_regime:.0%} of the grid -> {'OK' if ok else 'MISMATCH'}")
    else:
        print(f"agreement: same status {same_status:.1%}, max rel ΔRD {rel.max():.1e} (tol 1e-4) -> {'OK' if ok else 'MISMATCH'}")
    agree = (table["regime_w"] == table["regime_theory"]) | (table["regime_w"] == "undetermined")
    print(f"regimes: {table['regime_w'].value_counts()[lambda c: c > 0].to_dict()}; equal to the theory at "
          f"{int((table['regime_w'] == table['regime_theory']).sum())}/{len(table)} points, "
          f"{int((table['regime_w'] == 'undetermined').sum())} undetermined, {int((~agree).sum())} disagree")
    print(f"ratio (loop / engine): {t_loop * scale / t_engine:.1f}x; target: the quick diagram under 600 s "
          f"-> {'ok' if t_engine < 600 else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
