"""Theory checks of an ODE sweep, with pandas: T* against Theorem 1, ρ = (T* − t)/E^(−1/3), the
measured Theorem 2 constant C(t) = Ė/(3E^(4/3)), and the scaling of T* with width and imbalance.

    python analysis/theory_checks.py RESULT_DIR [--out OUTDIR]

Same figures and numbers as `condense plot theory RESULT_DIR` (default OUTDIR: RESULT_DIR/figures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from condense_jax.errors import ConfigError
from condense_jax.ode import plots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    try:
        paths, nums = plots.theory_figures_from_dir(args.result, args.out)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in nums.items():
        print(f"{k}: {v}")
    for path in paths:
        print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
