"""Closed-form bounds of the paper, as NumPy functions that work on arrays and pandas columns.

Theorem 1 (3.15): E(t) ≥ (E(s)^{−1/3} − (t − s))^{−3}, hence T* ≤ t + E(t)^{−1/3} whenever E(t) > 0.
Theorem 2 (4.21)-(4.22): once the final stage holds, E' ≤ 3C E^{4/3} with
C = (4/3)(cos Θ₂)^{−4/3}, hence T* ≥ t + E(t)^{−1/3}/C. We evaluate C at the running angle ζ
between a and ȧ (Proposition 5), which is the constant the proof uses from t on.
"""

from __future__ import annotations

import numpy as np


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


def thm2_running_lower(t, energy, cos_zeta):
    """Lower end of the running bracket: T* ≥ t + E(t)^{−1/3}/C(t) (4.22)."""
    return np.asarray(t) + _cube_root_inverse(energy) / thm2_constant(cos_zeta)


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
