"""Phase diagrams from GD result tables: the width scaling of the relative distance RD.

At each grid point of init-scale exponents, RD = ‖θ_w(t_end) − θ_w(0)‖/‖θ_w(0)‖ of a layer's input
weights is measured at several widths m, at the end of training (the step the loss first fell
below the sweep's loss_threshold). Its width scaling RD ∝ m^(−S_w) classifies the point:

    linear     S_w > 0   (RD → 0 as m → ∞),
    condensed  S_w < 0   (RD → ∞),
    critical   S_w ≈ 0   (|S_w| ≤ k · stderr + tol).

Two-layer theory (Luo, Xu, Ma, Zhang, JMLR 2021), in γ = −log(β₁β₂/α)/log m and
γ' = −log(β₂/β₁)/log m: linear for γ < 1 or γ' > γ − 1, condensed for γ > 1 and γ' < γ − 1, and
critical on the boundary γ = max(1, 1 + γ') (the mean-field scaling γ = 1, γ' = 0 is on it; NTK,
γ = 1/2, γ' = 0, is linear).

Pure pandas/NumPy: tables in, tables out. Figures are in plots.py.
"""

from __future__ import annotations

import numpy as np

from ...engine.stats import ols
from ...errors import ConfigError

REGIMES = ("linear", "critical", "condensed")

# what a phase diagram reads from the runs table, per model: grid coordinates, the layers whose
# RD is fitted (name → RD column), and the condensation scores averaged at the largest width
MODEL_COLUMNS = {
    "two-layer": dict(coords=("gamma_prime", "gamma"), layers={"w": "rd_w"}, scores=("cos_v_w", "n_dir_w")),
    "three-layer": dict(
        coords=("exp_w1", "exp_w2"), layers={"w1": "rd_w1", "w2": "rd_w2"}, scores=("cos_v_w1", "n_dir_w1", "n_dir_w2")
    ),
}


def two_layer_boundary(gamma_prime):
    """γ on the two-layer critical line at γ': γ_c = max(1, 1 + γ') (Luo et al. 2021)."""
    return 1.0 + np.maximum(0.0, np.asarray(gamma_prime, dtype=float))


def two_layer_theory(gamma, gamma_prime, tol: float = 1e-9):
    """The regime Luo et al.'s theory gives at (γ, γ'): condensed above the boundary, linear
    below, critical on it (within tol)."""
    gamma = np.asarray(gamma, dtype=float)
    gap = gamma - two_layer_boundary(gamma_prime)
    return np.where(np.abs(gap) <= tol, "critical", np.where(gap > 0, "condensed", "linear"))


def width_slope(widths, rd) -> tuple[float, float]:
    """S = −d log RD / d log m by least squares, and its OLS standard error (NaN for < 3 widths)."""
    lm, lr = np.log(np.asarray(widths, float)), np.log(np.asarray(rd, float))
    if len(np.unique(lm)) < 2:
        return np.nan, np.nan
    slope, _, se = ols(lm, lr)
    return -slope, se


def fit_slope(frame, rd_col: str, width_col: str = "width", seed_col: str = "seed") -> dict:
    """The width slope of one grid point with its standard error over seeds.

    Each seed with RD at ≥ 2 widths gives its own slope; S_w is their mean and the standard error
    is their standard deviation over √(#seeds). With a single such seed, the OLS standard error
    of its fit is used instead (NaN with only two widths).
    """
    ok = frame[np.isfinite(frame[rd_col]) & (frame[rd_col] > 0)]
    slopes, ols_se = [], np.nan
    for _, g in ok.groupby(seed_col):
        if g[width_col].nunique() >= 2:
            s, ols_se = width_slope(g[width_col], g[rd_col])
            slopes.append(s)
    n = len(slopes)
    if n == 0:
        return dict(slope=np.nan, stderr=np.nan, n_seeds=0, n_widths=int(ok[width_col].nunique()))
    slope = float(np.mean(slopes))
    stderr = float(np.std(slopes, ddof=1) / np.sqrt(n)) if n >= 2 else ols_se
    return dict(slope=slope, stderr=stderr, n_seeds=n, n_widths=int(ok[width_col].nunique()))


def classify(slope, stderr, k: float = 2.0, tol: float = 0.05):
    """linear (S > 0), condensed (S < 0), or critical when |S| ≤ k·stderr + tol; NaN S → 'undetermined'.

    A NaN stderr (one seed, two widths) counts as 0, so only tol separates the regimes then.
    """
    slope = np.asarray(slope, dtype=float)
    se = np.nan_to_num(np.asarray(stderr, dtype=float), nan=0.0)
    band = k * se + tol
    out = np.where(np.abs(slope) <= band, "critical", np.where(slope > 0, "linear", "condensed"))
    return np.where(np.isfinite(slope), out, "undetermined")


def usable_runs(runs):
    """The runs whose RD is measured at the end of training: those that reached the sweep's loss
    threshold (status converged) or, with no threshold set, every run that did not diverge."""
    if "loss_threshold" in runs and (runs["loss_threshold"] > 0).any():
        return runs[runs["status"] == "converged"]
    return runs[runs["status"] != "diverged"]


def phase_table(runs, model: str | None = None, coords=None, k: float = 2.0, tol: float = 0.05):
    """One row per grid point: coordinates, per layer S_w, its stderr and the regime, the theory's
    regime (two-layer), the condensation scores at the largest width, and the run counts.

    runs: a GD runs table (gd/sweep.py). model defaults to the table's `model` column; coords to
    MODEL_COLUMNS[model]["coords"] (x, y of the diagram).
    """
    import pandas as pd

    if runs.empty:
        raise ConfigError("the runs table is empty: nothing to fit")
    model = model or str(runs["model"].iloc[0])
    if model not in MODEL_COLUMNS:
        raise ConfigError(f"phase diagrams are built for {sorted(MODEL_COLUMNS)}; this table's model is {model!r}")
    cols = MODEL_COLUMNS[model]
    coords = tuple(coords or cols["coords"])
    missing = [c for c in (*coords, "width", "seed", "status", *cols["layers"].values()) if c not in runs]
    if missing:
        raise ConfigError(f"the runs table lacks column(s) {missing} needed for a {model} phase diagram")
    if runs["width"].nunique() < 2:
        raise ConfigError(f"a phase diagram needs at least 2 widths; the table has {sorted(runs['width'].unique())}")
    key = runs[list(coords)].round(6)
    usable = usable_runs(runs)
    rows = []
    for point, group in runs.groupby([key[c] for c in coords], sort=True):
        used = usable.loc[usable.index.intersection(group.index)]
        row = dict(zip(coords, point))
        row.update(n_runs=len(group), n_used=len(used), n_diverged=int((group["status"] == "diverged").sum()))
        for name, rd_col in cols["layers"].items():
            fit = fit_slope(used, rd_col)
            row[f"slope_{name}"], row[f"stderr_{name}"] = fit["slope"], fit["stderr"]
            row[f"n_seeds_{name}"], row[f"n_widths_{name}"] = fit["n_seeds"], fit["n_widths"]
            row[f"regime_{name}"] = str(classify(fit["slope"], fit["stderr"], k, tol))
        top = used[used["width"] == used["width"].max()] if len(used) else used
        row["width_max"] = int(top["width"].iloc[0]) if len(top) else np.nan
        for score in cols["scores"]:
            row[score] = float(top[score].mean()) if score in top and len(top) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if model == "two-layer" and set(coords) == {"gamma", "gamma_prime"}:
        table["regime_theory"] = two_layer_theory(table["gamma"], table["gamma_prime"])
    return table
