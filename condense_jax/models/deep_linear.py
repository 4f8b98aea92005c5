"""Deep matrix factorisation W = W³ W² W¹ (A.1) with matrix-sensing measurements (A.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init(key, m: int, eps: float, depth: int = 3, dtype=jnp.float32) -> list:
    """(A.3): every entry of every factor ~ N(0, ε²); factors listed first-applied first (W¹, W², …)."""
    return [eps * jax.random.normal(k, (m, m), dtype) for k in jax.random.split(key, depth)]


def product(factors) -> jnp.ndarray:
    """W = W^L ⋯ W² W¹."""
    w = factors[0]
    for f in factors[1:]:
        w = f @ w
    return w


def sensing_loss(factors, xs, ys) -> jnp.ndarray:
    """R_S = (1/2n) Σ_i (⟨W, X_i⟩ − y_i)² (A.2); xs (n, m, m), ys (n,)."""
    w = product(factors)
    return 0.5 * jnp.mean((jnp.einsum("ij,nij->n", w, xs) - ys) ** 2)


def completion_measurements(target, observed_mask):
    """Matrix completion as sensing: one X_i = e_j e_kᵀ per observed entry, y_i = W*_jk."""
    import numpy as np

    idx = np.argwhere(np.asarray(observed_mask))
    m = target.shape[0]
    xs = np.zeros((len(idx), m, target.shape[1]), dtype=np.asarray(target).dtype)
    xs[np.arange(len(idx)), idx[:, 0], idx[:, 1]] = 1.0
    return jnp.asarray(xs), jnp.asarray(np.asarray(target)[idx[:, 0], idx[:, 1]])
