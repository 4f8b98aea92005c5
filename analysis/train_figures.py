"""Every figure that applies to a gradient-descent sweep result, as PNG files.

    python analysis/train_figures.py RESULT_DIR [--out OUTDIR]

Reads the Parquet tables of a `condense train` result (runs/, and series/ and cosines/ where
present) with pandas and writes, depending on the model(s) and the recorded columns: the loss
curves with the measured escape and the region where the effective model fails (Fig. 1 left), the
cosine-similarity heatmaps of W¹/W² rows at init and after condensation (Fig. 1 right), the
Assumption 2 (1) counts over training (Fig. 2a), the max sum of positive numbers against α
(Fig. 2b), deep-linear loss and singular values (Fig. 3), and predicted against measured escape
steps. Default OUTDIR: RESULT_DIR/figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from condense_jax.errors import ConfigError
from condense_jax.gd import plots as train_plots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--out", type=Path, help="folder for the PNG files (default: RESULT/figures)")
    args = ap.parse_args(argv)
    try:
        paths = train_plots.figures_from_dir(args.result, args.out)
    except ConfigError as e:
        print(f"train_figures: error: {e}", file=sys.stderr)
        return 2
    if not paths:
        print("no figure applies to this result", file=sys.stderr)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
