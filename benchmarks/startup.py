"""The fixed cost of a small sweep in a fresh process, with a warm XLA cache (issue #19: ≤ 3 s).

Each command runs in a fresh process (best of --repeat, after one warm-up run that fills the
cache); wall seconds of the whole command, Python start-up included:

    python benchmarks/startup.py            # prints a table; results_startup.txt keeps the last one
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "XDG_CACHE_HOME": str(tmp / "cache")}
    rng = np.random.default_rng(0)
    for m in (20, 200):
        np.savez(tmp / f"init{m}.npz", a=rng.standard_normal((64, m)), b=rng.standard_normal((64, m, m)),
                 c=rng.standard_normal((64, m)))
    py, cli = sys.executable, [sys.executable, "-m", "condense_jax.cli"]

    def sweep(*flags):
        def cmd():
            out = tmp / "out"
            shutil.rmtree(out, ignore_errors=True)
            return [*cli, *flags, "--out", str(out), "--quiet", "--no-figure"]
        return cmd

    rows = [
        ("python -c pass", lambda: [py, "-c", "pass"]),
        ("import jax, diffrax, pandas, pyarrow", lambda: [py, "-c", "import jax, diffrax, pandas, pyarrow"]),
        ("condense --help", lambda: [*cli, "--help"]),
        ("condense ode --init (64 starts, m = 20)", sweep("ode", "--init", str(tmp / "init20.npz"))),
        ("condense ode --init (64 starts, m = 200)", sweep("ode", "--init", str(tmp / "init200.npz"))),
        ("condense ode --widths 20 --seeds 64", sweep("ode", "--widths", "20", "--seeds", "64")),
        ("condense train --widths 20 --seeds 4 --steps 200", sweep("train", "--widths", "20", "--seeds", "4", "--steps", "200",
                                                                   "--no-predict")),
    ]
    lines = [f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPU cores, warm XLA cache, "
             f"best of {args.repeat} fresh processes, wall seconds", ""]
    for label, make in rows:
        subprocess.run(make(), env=env, check=True, capture_output=True)  # warm-up: fills the cache
        lines.append(f"{label:<52} {_best(make, env, args.repeat):6.2f} s")
        print(lines[-1], flush=True)
    (ROOT / "benchmarks" / "results_startup.txt").write_text("\n".join(lines) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _best(make, env, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        cmd = make()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    sys.exit(main())
