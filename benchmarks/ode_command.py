"""Whole-command benchmark: `condense ode` in a fresh process against a per-seed SciPy loop.

What a user waits for is the whole command (imports, compilation, solve, Parquet), so this times
`condense ode --widths M --seeds N --out DIR --no-figure --quiet` as a subprocess, twice: with an
empty JAX compilation cache (cold) and with the cache the first run filled (warm). The peer is the
per-seed `scipy.integrate.solve_ivp` loop on the full system (DOP853, rtol = atol = 1e-8 relative to
‖θ0‖, terminal event at ‖θ‖ = 1e6 ‖θ0‖, T* = t_ev + E^(−1/3)), timed in this run on the first
`--scipy-seeds` of the same starts (drawn with condense_jax.ode.sweep.sample_starts) and extrapolated
linearly (labelled). T* from the command's runs table must agree with SciPy's to 1e-5.

Targets (shared/notes/three_layer_reduction.md, 2-core CPU): 1,024 seeds at m = 200 at least 10×
faster than the SciPy loop, 16,384 seeds at m = 20 at least 30× faster.

    python benchmarks/ode_command.py                    # both targets (~10 minutes)
    python benchmarks/ode_command.py --configs 20:512   # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ode_vs_scipy import blas_threads, scipy_full

TARGETS = {(200, 1024): 10.0, (20, 16384): 30.0}


def run_command(m: int, seeds: int, out: str, cache: str, rtol: float, stepping: str) -> float:
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    cmd = [sys.executable, "-m", "condense_jax.cli", "ode", "--widths", str(m), "--seeds", str(seeds),
           "--rtol", str(rtol), "--out", out, "--no-figure", "--quiet", "--stepping", stepping]
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=["200:1024", "20:16384"], metavar="M:SEEDS")
    ap.add_argument("--scipy-seeds", type=int, nargs="+", default=[32, 512],
                    help="seeds the SciPy loop runs per config, then extrapolated (one value, or one per config)")
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--stepping", nargs="+", default=["per_start", "shared"], choices=["per_start", "shared"])
    args = ap.parse_args(argv)

    import pandas as pd

    from condense_jax.ode.sweep import sample_starts

    ok = True
    print(f"`condense ode` whole command vs a per-seed SciPy DOP853 loop, rtol {args.rtol:g}, {os.cpu_count()} cores")
    print(f"{'m':>4} {'seeds':>6} {'stepping':>9} | {'cold s':>7} {'warm s':>7} | {'scipy s/seed':>12} {'scipy total':>11} | "
          f"{'cold x':>7} {'warm x':>7} | {'target':>7} | max rel ΔT*")
    with tempfile.TemporaryDirectory() as tmp:
        for i, conf in enumerate(args.configs):
            m, seeds = (int(v) for v in conf.split(":"))
            n = min(seeds, args.scipy_seeds[min(i, len(args.scipy_seeds) - 1)])
            starts = [sample_starts(s, m, 3, (1.0, 1.0, 1.0)) for s in range(n)]
            with blas_threads(1):
                t0 = time.perf_counter()
                ref = np.array([scipy_full(a, b, c, args.rtol) for a, b, c in starts])
                per_seed = (time.perf_counter() - t0) / n
            scipy_total = per_seed * seeds
            for mode in args.stepping:
                cache = os.path.join(tmp, f"cache-{m}-{mode}")
                out = os.path.join(tmp, f"out-{m}-{mode}")
                cold = run_command(m, seeds, out, cache, args.rtol, mode)
                warm = run_command(m, seeds, out, cache, args.rtol, mode)
                runs = pd.read_parquet(os.path.join(out, "runs")).sort_values("run_id")
                got = runs["t_star"].to_numpy()[:n]
                diff = float(np.max(np.abs(got - ref) / ref))
                target = TARGETS.get((m, seeds))
                passed = diff <= 1e-5 and bool((runs["status"] == "blowup").all())
                ok &= passed
                tgt = "-" if target is None else f"{target:.0f}x " + ("ok" if scipy_total / warm >= target else "MISS")
                print(f"{m:>4} {seeds:>6} {mode:>9} | {cold:>7.1f} {warm:>7.1f} | {per_seed:>12.4f} "
                      f"{scipy_total:>9.0f}{'*' if n < seeds else ' '} | {scipy_total / cold:>6.1f}x "
                      f"{scipy_total / warm:>6.1f}x | {tgt:>7} | {diff:.1e} {'ok' if passed else 'FAIL'}", flush=True)
    print("* extrapolated from the first --scipy-seeds seeds (same starts). cold: empty compilation cache; "
          "warm: the cache the cold run filled (a repeated sweep).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
