"""The phase diagram of a training sweep, with pandas: fit, classify, print and draw.

    python analysis/phase_diagram.py RESULT_DIR [--k 2] [--tol 0.05]

Reads RESULT_DIR/runs (a sweep over widths and a grid of init-scale exponents, e.g.
sweeps/phase_two_layer.toml or sweeps/phase_three_layer.toml), fits RD ∝ m^(−S) at every grid
point (phase.phase_table), prints the table and writes the same files as `condense phase`:
RESULT_DIR/phase/phase_table.{parquet,csv} and the figures in RESULT_DIR/figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from condense_jax.errors import ConfigError
from condense_jax.gd.phase_diagram import plots as phase_plots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--k", type=float, default=2.0, help="critical band: |S| ≤ k·stderr + tol")
    ap.add_argument("--tol", type=float, default=0.05)
    args = ap.parse_args(argv)
    try:
        table, paths = phase_plots.phase_from_dir(args.result, k=args.k, tol=args.tol)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=[c for c in table.columns if c.startswith("n_seeds_")]).round(3).to_string(index=False))
    for path in paths:
        print(f"wrote: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
