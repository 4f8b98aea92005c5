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


# A power law is claimed only where the points are one: a heuristic, stated with every fit printed.
POWER_LAW_TOL = 0.15  # the largest |local slope − fitted exponent| a power-law range may have
POWER_LAW_MIN_LEVELS = 3  # two levels make a slope, not a test of a power law


def _level_ranks(lx, g, levels):
    """Each point's level as a rank 0, 1, … in the order of the levels' median log x; without
    `levels`, the distinct x values (≤ 12 of them) or else 8 equal bins of log x per group."""
    if levels is not None:
        lev = np.asarray(levels)
        keys = np.unique(lev)
        med = np.array([np.median(lx[lev == k]) for k in keys])
        rank = {k: r for r, k in enumerate(keys[np.argsort(med, kind="stable")])}
        return np.array([rank[k] for k in lev])
    ux = np.unique(np.round(lx, 9))
    if ux.size <= 12:
        return np.searchsorted(ux, np.round(lx, 9))
    ranks = np.zeros(lx.size, int)
    for k in np.unique(g):
        sel = g == k
        lo, hi = lx[sel].min(), lx[sel].max()
        ranks[sel] = np.minimum(((lx[sel] - lo) / max(hi - lo, 1e-300) * 8).astype(int), 7)
    return ranks


def _fit_levels(lx, ly, g, ranks, lo, hi):
    """OLS of the points of levels lo..hi (per-group intercepts removed by centring) and the local
    slopes between neighbouring levels' medians, per group."""
    sel = (ranks >= lo) & (ranks <= hi)
    x, y, gg = lx[sel].copy(), ly[sel].copy(), g[sel]
    groups = np.unique(gg)
    for k in groups:
        x[gg == k] -= x[gg == k].mean()
        y[gg == k] -= y[gg == k].mean()
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, _, se = ols(x, y, 1 + len(groups))
    local = []
    for k in groups:
        mx, my = [], []
        for r in range(lo, hi + 1):
            at = sel & (g == k) & (ranks == r)
            if at.any():
                mx.append(np.median(lx[at]))
                my.append(np.median(ly[at]))
        dx = np.diff(mx)
        local += list(np.diff(my)[dx > 0] / dx[dx > 0])
    return slope, se, np.array(local), sel


def power_law(x, y, groups=None, levels=None, tol: float = POWER_LAW_TOL) -> dict:
    """log y = slope · log x (+ an intercept per group) by least squares, over the range where the
    points are a power law, by a stated heuristic: the points fall into levels of x (the distinct
    x, the `levels` given, e.g. a nominal setting, or bins of log x); the fit is made over the widest
    contiguous range of ≥ 3 levels on which every local log-log slope (between neighbouring
    levels' medians, per group) is within `tol` of the fitted exponent, the lowest such range on
    a tie (a law that holds at small x and bends away, e.g. saturates, above). Keys: slope, stderr,
    intercept (NaN with groups), n (points fitted), x_lo / x_hi (the fitted range), levels_used,
    levels (all), local (the local slopes over all levels) and `law`: "holds" (over every level),
    "range" (over a sub-range only), "two levels" (a slope, no test of a power law), "no" (no 3
    neighbouring levels are one; slope NaN) or "one level" (slope NaN)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    g = np.asarray(groups)[ok] if groups is not None else np.zeros(lx.size, int)
    empty = dict(slope=np.nan, stderr=np.nan, intercept=np.nan, n=int(lx.size), x_lo=np.nan, x_hi=np.nan,
                 levels_used=0, levels=0, local=np.array([]), law="one level")
    if lx.size < 2 or np.ptp(lx) == 0:
        return empty
    ranks = _level_ranks(lx, g, None if levels is None else np.asarray(levels)[ok])
    n_lev = int(ranks.max()) + 1
    whole = _fit_levels(lx, ly, g, ranks, 0, n_lev - 1)
    if whole is None:
        return {**empty, "levels": n_lev}
    best, law = None, "no"
    if n_lev < POWER_LAW_MIN_LEVELS:
        best, law = (0, n_lev - 1, whole), "two levels" if n_lev == 2 else "one level"
    else:
        for length in range(n_lev, POWER_LAW_MIN_LEVELS - 1, -1):
            fits = [(lo, lo + length - 1, _fit_levels(lx, ly, g, ranks, lo, lo + length - 1)) for lo in range(n_lev - length + 1)]
            fits = [(lo, hi, f) for lo, hi, f in fits if f is not None and f[2].size and np.all(np.abs(f[2] - f[0]) <= tol)]
            if fits:
                best = fits[0]  # the lowest such run: a law that bends away (saturates) at large x
                law = "holds" if length == n_lev else "range"
                break
    if best is None:
        return {**empty, "levels": n_lev, "local": whole[2], "law": "no"}
    lo, hi, (slope, se, _, sel) = best
    intercept = np.nan
    if groups is None:
        intercept = float(np.mean(ly[sel]) - slope * np.mean(lx[sel]))
    return dict(slope=float(slope), stderr=float(se), intercept=intercept, n=int(sel.sum()),
                x_lo=float(np.exp(lx[sel].min())), x_hi=float(np.exp(lx[sel].max())), levels_used=hi - lo + 1,
                levels=n_lev, local=whole[2], law=law)
