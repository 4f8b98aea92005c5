"""T* against Theorem 1's bound for every run, and E(t) between its envelopes for a few runs.

    python analysis/tstar_bounds.py RESULT_DIR [--output PNG] [--runs ID ...]

Reads the Parquet tables of a `condense ode` / `condense run` result with pandas, prints the
Theorem 1 check (T* ≤ E0^(−1/3) for every run with E0 > 0: the count of violations must be 0) and
the median ratio T*/bound per width and scale, and draws the figure (same as `condense plot tstar`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from condense_jax.engine import store
from condense_jax.errors import ConfigError
from condense_jax.ode import plots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--output", type=Path, help="PNG path (default: RESULT/figures/tstar_bounds.png)")
    ap.add_argument("--runs", type=int, nargs="+", help="run ids for the E(t) panel (default: three spread by T*/bound)")
    args = ap.parse_args(argv)
    try:
        if store.read_manifest(args.result) is None:
            raise ConfigError(f"{str(args.result)!r} is not a condense_jax result directory")
        runs = pd.read_parquet(args.result / "runs")
        chosen = args.runs or plots.pick_runs(runs)
        series = pd.read_parquet(args.result / "series", filters=[("run_id", "in", list(chosen))]) if chosen else None
        pos = runs[(runs["E0"] > 0) & np.isfinite(runs["t_star"])]
        violations = int((pos["t_star"] > pos["t_star_thm1_bound"] * (1 + 1e-9)).sum())
        print(f"{len(runs)} runs; status: {runs['status'].value_counts().to_dict()}")
        print(f"Theorem 1: {len(pos)} runs with E0 > 0, {violations} with T* > E0^(-1/3)")
        ratio = (pos["t_star"] / pos["t_star_thm1_bound"]).rename("T*/bound")
        keys = [k for k in ("width", "scale_a", "scale_b", "scale_c") if k in pos and pos[k].notna().any()]
        if keys:
            print(pd.concat([pos[keys], ratio], axis=1).groupby(keys)["T*/bound"].median().to_string())
        out = plots.tstar_bounds_figure(runs, series if series is not None else runs.iloc[:0], args.output or args.result / "figures" / "tstar_bounds.png", chosen)
        print(f"figure: {out}")
    except ConfigError as e:
        print(f"tstar_bounds: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
