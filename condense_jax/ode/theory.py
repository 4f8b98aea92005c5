"""Closed-form bounds of the paper, as NumPy functions that work on arrays and pandas columns.

Theorem 1 (3.15): E(t) ≥ (E(s)^{−1/3} − (t − s))^{−3}, hence T* ≤ t + E(t)^{−1/3} whenever E(t) > 0.
A lower bound at every time (norm_running_lower): T* ≥ t + √3/‖θ(t)‖, θ = (a, b, c).
Theorem 2 (4.21)-(4.22): after a time T₃ at which the final stage holds and the angle ζ between a
and ȧ stays below a uniform Θ₂ until T*, E' ≤ 3C E^{4/3} with C = (4/3)(cos Θ₂)^{−4/3}, hence
T* ≥ t + E(t)^{−1/3}/C. We can only evaluate C at the running angle ζ(t), which is not Θ₂: that
gives an estimate of T* (thm2_running_estimate), not a bound, and it does exceed T* on real runs.
"""

from __future__ import annotations

import numpy as np

from ..engine.stats import power_law


def _cube_root_inverse(e):
    e = np.asarray(e, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(e > 0, np.power(np.where(e > 0, e, 1.0), -1.0 / 3.0), np.nan)


def thm1_upper_bound(e0):
    """T* ≤ E(0)^{−1/3} when E(0) > 0 (Theorem 1); NaN when E(0) ≤ 0 (no bound from t = 0)."""
    return _cube_root_inverse(e0)


def thm1_running_upper(t, energy):
    """Upper end of the running bracket: T* ≤ t + E(t)^{−1/3}, valid where E(t) > 0."""
    return np.asarray(t) + _cube_root_inverse(energy)


def thm2_constant(cos_zeta):
    """C(t) = (4/3)(cos ζ)^{−4/3} (Theorem 2's C = C₀/3 with C₀ = 4(cos Θ₂)^{−4/3}); NaN if cos ζ ≤ 0."""
    cz = np.asarray(cos_zeta, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cz > 0, (4.0 / 3.0) * np.power(np.where(cz > 0, cz, 1.0), -4.0 / 3.0), np.nan)


def thm2_running_estimate(t, energy, cos_zeta):
    """t + E(t)^{−1/3}/C(t) with C(t) = (4/3)(cos ζ(t))^{−4/3}: Theorem 2's lower end (4.22) with
    the running angle in place of the uniform Θ₂. An estimate of T*, NOT a bound."""
    return np.asarray(t) + _cube_root_inverse(energy) / thm2_constant(cos_zeta)


def norm_running_lower(t, norm2):
    """T* ≥ t + √3/‖θ(t)‖, ‖θ‖² = ‖a‖² + ‖b‖²_F + ‖c‖² (norm2), at every t < T*, any start.

    Proof: along (3.10), d‖θ‖²/dt = 6E (Prop. 1, (3.11): each of ‖a‖², ‖b‖²_F, ‖c‖² grows at 2E),
    and E = aᵀbc ≤ ‖a‖‖b‖₂‖c‖ ≤ ‖a‖‖b‖_F‖c‖ ≤ (‖θ‖²/3)^{3/2} (AM–GM on the three squares). So
    u = ‖θ‖² obeys u' ≤ (2/√3) u^{3/2}, i.e. d/dt u^{−1/2} ≥ −1/√3, and u(s)^{−1/2} ≥
    u(t)^{−1/2} − (s − t)/√3 for t ≤ s < T*. A solution that blows up at T* leaves every bounded
    set, so u(s)^{−1/2} → 0 as s → T*: 0 ≥ u(t)^{−1/2} − (T* − t)/√3. Equality holds on the
    balanced rank-one state (‖a‖ = ‖b‖_F = ‖c‖, b = a wᵀ), so the bound is tight near T*."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(t) + np.sqrt(3.0 / np.asarray(norm2, dtype=np.float64))


def thm1_energy_lower_envelope(t, t_s, e_s):
    """E(t) ≥ (E(s)^{−1/3} − (t − s))^{−3} for s ≤ t < s + E(s)^{−1/3} (3.15)."""
    gap = _cube_root_inverse(e_s) - (np.asarray(t) - t_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gap > 0, gap**-3.0, np.nan)


def thm2_energy_upper_envelope(t, t_s, e_s, c):
    """E(t) ≤ (E(s)^{−1/3} − C (t − s))^{−3} for s ≤ t (4.21), valid once the final stage holds."""
    gap = _cube_root_inverse(e_s) - c * (np.asarray(t) - t_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gap > 0, gap**-3.0, np.inf)


# ---------------------------------------------------------------- checks on the ODE tables (issue #4)
#
# The measured constant. Along (3.10), Ė = ‖ȧ‖² + ‖ċ‖² + ‖a‖²‖c‖² (proof of Theorem 2), and
# C(t) = Ė/(3E^{4/3}) (series column `thm2_rate`) gives d/dt E^{−1/3} = −C(t) exactly, so
#   Theorem 1  ⇔  C(t) ≥ 1,
#   E(t) ≤ (E(s)^{−1/3} − C̄ (t − s))^{−3} with C̄ = max of C on [s, t]  (4.21 with the measured C),
#   E(t)^{−1/3} = ∫_t^{T*} C du, so ρ(t) = (T* − t)/E(t)^{−1/3} = 1/mean(C on [t, T*]) ≤ 1.
# In the balanced rank-one state (a = s u, b = s u wᵀ, c = s w) Ė = 3E^{4/3}: C ≡ 1 and ρ ≡ 1, and
# Theorem 1's and Theorem 2's bounds coincide. The paper's proof constant C = C₀/3 =
# (4/3)(cos Θ₂)^{−4/3} (thm2_constant above) is an upper bound of the measured C near T* (it uses
# Ė ≤ 4‖ȧ‖^{4/3}‖a‖^{4/3}, where the balanced state has 3), so it is 4/3, not 1, there.


def ratio_to_blowup(t, t_star, energy):
    """ρ(t) = (T* − t)/E(t)^{−1/3}: ≤ 1 by Theorem 1, ≥ 1/max C by Theorem 2, → 1 as it condenses."""
    return (np.asarray(t_star, float) - np.asarray(t, float)) / _cube_root_inverse(energy)


def running_max_constant(c):
    """C̄(t) = max of the measured C on [s, t] along one run's records (s the first record given)."""
    c = np.asarray(c, dtype=float)
    return np.fmax.accumulate(np.where(np.isfinite(c), c, -np.inf))


def thm2_envelope_measured(t, t_s, e_s, c):
    """E(t) ≤ (E(s)^{−1/3} − C̄(t)(t − s))^{−3} (4.21) with C̄ the running max of the measured C
    from s on (c: C at the records t ≥ s, in order); ∞ where the bracket closes."""
    return thm2_energy_upper_envelope(t, t_s, e_s, running_max_constant(c))


def tstar_violations(runs, rtol: float = 1e-9) -> int:
    """Runs with finite T* and E0 > 0 whose T* exceeds Theorem 1's bound E0^{−1/3} (must be 0)."""
    ts, e0 = np.asarray(runs["t_star"], float), np.asarray(runs["E0"], float)
    ok = np.isfinite(ts) & (e0 > 0)
    return int(np.sum(ts[ok] > thm1_upper_bound(e0[ok]) * (1 + rtol)))


def power_law_fit(x, y, groups=None, levels=None) -> dict:
    """log y = slope · log x + intercept by least squares over the positive finite pairs, fitted
    only over the range of x where the points are a power law (engine/stats.power_law: the widest
    run of ≥ 3 neighbouring levels of x whose local log-log slopes are all within
    stats.POWER_LAW_TOL of the fitted exponent, a heuristic; `law` and x_lo / x_hi say what was
    fitted), with the OLS standard error of the slope (NaN with one distinct x). With `groups`
    (e.g. the width), each group has its own intercept (logs centred per group) and one common
    slope is fitted: the exponent in x at fixed group; `intercept` is then NaN. `levels` labels the
    points' levels of x (e.g. the nominal scale ratio) where x itself is measured and scattered."""
    return power_law(x, y, groups=groups, levels=levels)


def initial_imbalance(series):
    """‖a(0)‖/‖c(0)‖ per run (Assumption 1's axis), from the first record of each run."""
    first = series.sort_values(["run_id", "t"]).groupby("run_id").first()
    return np.sqrt(first["norm_a2"] / first["norm_c2"])
