"""The four-phase detector (issue #8): phase boundary times of one run from its recorded series.

A run of the two-layer ReLU classifier from small init (dynamics.py) goes through
(I) initial condensation, (II) saddle-to-plateau, (III) plateau escape, (IV) convergence
(Wang & Ma 2023). On the record times t_k, with the loss L_k, L₀ = L(0) and the local log-log
slope s_k = Δ log L / Δ log t (central differences), the detector (thresholds in `Detector`) finds:

- the drop: the first record with L ≤ (1 − drop_tol) L₀ — the run has left the saddle at θ = 0;
- t_I→II, the end of condensation: the first record at which the live neurons of each sign of
  a_k lie within cos_tol of their group's mean direction (min cos ≥ cos_tol, `cond_pos`/`cond_neg`),
  strictly before the drop, i.e. while the norms are still O(ε). Reached only after the drop, or
  never: phase I is absent (a large init does not condense). A sign group with no live neuron has
  no direction (its cond is NaN): such a record does not count as condensed, and `empty_group`
  says that it happened before the drop.
- the first steep fall: the first record from the drop on with s ≤ −steep_slope;
- t_II→III, the plateau: the first record after that fall with s ≥ −plateau_slope while
  L ≥ plateau_min_loss · L₀ (a level, not the 1/t tail). None: phase III is absent and phase II
  runs into phase IV;
- the plateau's end: the next record with s ≤ −steep_slope (the loss falls again), and the escape
  event t_escape: the last record in (plateau, end] at which activation patterns changed (NaN when
  the plateau ended without one: the second group of neurons grew out of it on its own);
- t_III→IV, convergence: the first record (after the plateau's end, or after the first fall) from
  which on every sample is classified right and −s stays in conv_band to the last record: the
  loss's asymptotic decay Θ(1/(t (log t)^{2−2/L})) of an L-homogeneous network (Lyu & Li 2020),
  1/(t log t) here (L = 2), has −s = 1 + 1/log t, slightly above 1. None: phase IV is absent (not
  reached within the record times).

No boundary is ever invented: an absent phase has NaN times and its flag False.
"""

from __future__ import annotations

import numpy as np

from ..engine.stats import ols
from .thresholds import Detector

PHASES = ("I", "II", "III", "IV")
__all__ = ["Detector", "PHASES", "detect", "detect_runs", "fit_log_eps", "log_slope"]


def log_slope(t, loss) -> np.ndarray:
    """s_k = d log L / d log t at each record (central differences; one-sided at the ends)."""
    lt, ll = np.log(np.asarray(t, float)), np.log(np.maximum(np.asarray(loss, float), 1e-300))
    return np.gradient(ll, lt)


def _first(mask, start: int = 0) -> int | None:
    idx = np.flatnonzero(np.asarray(mask)[start:])
    return int(idx[0]) + start if len(idx) else None


def absent() -> dict:
    """The detector's answer for a run too short to judge: every boundary NaN, every phase absent."""
    nan = float("nan")
    out = {k: nan for k in ("t_I_II", "t_II_III", "t_III_IV", "t_escape", "t_plateau_end", "t_drop", "plateau_loss")}
    out["empty_group"] = False
    out.update({f"phase_{p}": False for p in PHASES})
    out["phases"] = "none"
    return out


def detect(t, loss, cond, pattern_changes, accuracy, det: Detector | None = None) -> dict:
    """Phase boundaries of one run: t (R,) increasing, loss (R,), cond (R,) = min(cond_pos,
    cond_neg) (NaN where a group is empty), pattern_changes (R,), accuracy (R,); `det` the
    thresholds (default: Detector()).
    Returns a flat dict (see the module doc)."""
    det = det or Detector()
    if len(t) < 3:
        return absent()
    t, loss = np.asarray(t, float), np.asarray(loss, float)
    cond, changes, acc = np.asarray(cond, float), np.asarray(pattern_changes), np.asarray(accuracy, float)
    nan = float("nan")
    out = {"t_I_II": nan, "t_II_III": nan, "t_III_IV": nan, "t_escape": nan, "t_plateau_end": nan,
           "t_drop": nan, "plateau_loss": nan}
    loss0 = loss[0]
    k_drop = _first(loss <= (1 - det.drop_tol) * loss0)
    out["empty_group"] = bool(np.any(np.isnan(cond[: len(t) if k_drop is None else k_drop])))
    k_cond = _first(np.nan_to_num(cond, nan=-np.inf) >= det.cos_tol)
    phase1 = k_cond is not None and (k_drop is None or k_cond < k_drop)
    if phase1:
        out["t_I_II"] = t[k_cond]
    s = log_slope(t, loss)
    phase2 = phase3 = phase4 = False
    k_start = None
    if k_drop is not None:
        phase2 = True
        out["t_drop"] = t[k_drop]
        k_steep = _first(s <= -det.steep_slope, k_drop)
        if k_steep is not None:
            k_start = k_steep
            k_plat = _first((s >= -det.plateau_slope) & (loss >= det.plateau_min_loss * loss0), k_steep + 1)
            if k_plat is not None:
                phase3 = True
                out["t_II_III"], out["plateau_loss"] = t[k_plat], loss[k_plat]
                k_end = _first(s <= -det.steep_slope, k_plat + 1)
                k_start = k_end
                if k_end is not None:
                    out["t_plateau_end"] = t[k_end]
                    ev = np.flatnonzero(changes[k_plat + 1 : k_end + 1] > 0)
                    if len(ev):
                        out["t_escape"] = t[k_plat + 1 + ev[-1]]
    if k_start is not None:
        lo, hi = det.conv_band
        good = (-s >= lo) & (-s <= hi) & (acc >= 1.0)
        # the last run of consecutive good records, if it reaches the final record
        if good[-1]:
            bad = np.flatnonzero(~good[k_start:])
            k_conv = k_start + (bad[-1] + 1 if len(bad) else 0)
            if k_conv < len(t) - 1:  # at least two records in the band
                phase4 = True
                out["t_III_IV"] = t[k_conv]
    present = dict(zip(PHASES, (phase1, phase2, phase3, phase4)))
    out.update({f"phase_{p}": v for p, v in present.items()})
    out["phases"] = "+".join(p for p, v in present.items() if v) or "none"
    return out


def detect_runs(t, loss, cond, pattern_changes, accuracy, det: Detector | None = None) -> list[dict]:
    """`detect` over runs: every array (runs, R), t may be (R,)."""
    loss = np.asarray(loss)
    t = np.broadcast_to(np.asarray(t), loss.shape)
    return [detect(t[i], loss[i], cond[i], pattern_changes[i], accuracy[i], det) for i in range(len(loss))]


def fit_log_eps(runs, column: str = "t_I_II") -> dict:
    """Least squares t = intercept + slope · log(1/ε) over the runs where `column` is finite, with
    the slope's OLS standard error (NaN with fewer than 3 runs or one ε)."""
    t = runs[column].to_numpy(float)
    x = runs["log_inv_eps"].to_numpy(float)
    ok = np.isfinite(t) & np.isfinite(x)
    x, t = x[ok], t[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        return dict(slope=np.nan, stderr=np.nan, intercept=np.nan, n=int(len(x)))
    slope, intercept, se = ols(x, t)
    return dict(slope=float(slope), stderr=float(se), intercept=float(intercept), n=int(len(x)))
