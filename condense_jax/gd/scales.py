"""Initialisation-scale parametrisations (pure NumPy; scalars or arrays, broadcast).

* Width exponent: ε = m^(−γ) (the paper's N(0, 1/m^(2γ)) inits, e.g. Fig. 2b).
* Two-layer phase diagram (Luo, Xu, Ma, Zhang, JMLR 2021): for f = (1/α) Σ_k a_k σ(w_k · x) with
  w_k ~ N(0, β₁² I), a_k ~ N(0, β₂²),
      γ = −log(β₁β₂/α) / log m,     γ' = −log(β₂/β₁) / log m.
Invalid values are a ConfigError with one line naming them.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def _out(v):
    """0-d arrays back to Python floats; arrays unchanged."""
    return float(v) if np.ndim(v) == 0 else v


def _real(name: str, value) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a real number (or array of them), got {value!r}") from None
    if not np.all(np.isfinite(v)):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


def _positive(name: str, value) -> np.ndarray:
    v = _real(name, value)
    if np.any(v <= 0):
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return v


def _width(value, low: float) -> np.ndarray:
    v = _real("width m", value)
    if np.any(v < low):
        raise ConfigError(f"width m must be at least {low:g} (log m is the unit of the exponents), got {value!r}")
    return v


def eps_from_exponent(width, gamma):
    """ε = m^(−γ)."""
    return _out(_width(width, 1) ** -_real("gamma", gamma))


def exponent_from_eps(width, eps):
    """γ = −log ε / log m, the inverse of eps_from_exponent (m ≥ 2)."""
    return _out(-np.log(_positive("eps", eps)) / np.log(_width(width, 2)))


def two_layer_coordinates(beta1, beta2, alpha, m):
    """(γ, γ') = (−log(β₁β₂/α)/log m, −log(β₂/β₁)/log m) of Luo et al. (2021); m ≥ 2.

    β₁ is the std of the input weights w and β₂ that of the output weights a (the CNN paper's
    names, used throughout condense_jax). Luo et al. write the output std first: their
    γ' = −log(β_a/β_w)/log m = −log(β₂/β₁)/log m here, the ratio for which their regimes hold
    (linear for γ < 1 or γ' > γ − 1, condensed for γ > 1 and γ' < γ − 1; gd/phase_diagram/fit.py).
    """
    b1, b2, a = _positive("beta1", beta1), _positive("beta2", beta2), _positive("alpha", alpha)
    logm = np.log(_width(m, 2))
    return _out(-np.log(b1 * b2 / a) / logm), _out(-np.log(b2 / b1) / logm)


def two_layer_scales(gamma, gamma_prime, m, alpha=1.0):
    """(β₁, β₂) = (input std, output std) with the given (γ, γ') at width m and output scale α;
    the inverse of two_layer_coordinates.

    β₁β₂/α = m^(−γ) and β₂/β₁ = m^(−γ') give β₁ = √α m^((γ'−γ)/2), β₂ = √α m^(−(γ+γ')/2).
    """
    g, gp, a = _real("gamma", gamma), _real("gamma_prime", gamma_prime), _positive("alpha", alpha)
    m = _width(m, 2)
    return _out(np.sqrt(a) * m ** ((gp - g) / 2)), _out(np.sqrt(a) * m ** (-(g + gp) / 2))
