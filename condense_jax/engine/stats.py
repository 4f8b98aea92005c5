"""The one least-squares fit the package's summaries use."""

from __future__ import annotations

import numpy as np


def ols(x, y, n_params: int = 2) -> tuple[float, float, float]:
    """(slope, intercept, stderr) of y = slope · x + intercept by least squares, with the slope's
    OLS standard error √(Σ r² / (n − n_params) / Σ (x − x̄)²), NaN without residual degrees of
    freedom. `n_params` counts every fitted parameter (more than 2 when the caller has already
    removed per-group intercepts by centring). The caller ensures ≥ 2 points and ≥ 2 distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    design = np.stack([x, np.ones_like(x)], 1)
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(x) - n_params
    if dof < 1:
        return float(slope), float(intercept), np.nan
    resid = y - (slope * x + intercept)
    return float(slope), float(intercept), float(np.sqrt(resid @ resid / dof / np.sum((x - x.mean()) ** 2)))
