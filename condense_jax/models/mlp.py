"""Two- and three-layer fully connected networks as pure functions of (params, x).

Three-layer (3.1): f(x) = aᵀ σ(W² σ(W¹ x)), init (3.3) a_k, W²_kk', W¹_kk' ~ N(0, ε²) (one ε per
layer allowed). Two-layer (Luo, Xu, Ma, Zhang 2021): f(x) = (1/α) Σ_k a_k σ(w_k · x) with
w_k ~ N(0, β₁² I), a_k ~ N(0, β₂²). x has shape (n, d); outputs have shape (n,).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def three_layer_init(key, d: int, m: int, scales: tuple[float, float, float], dtype=jnp.float32) -> dict:
    """(3.3) with per-layer scales (ε_a, ε_2, ε_1): a (m,), w2 (m, m), w1 (m, d)."""
    ka, k2, k1 = jax.random.split(key, 3)
    eps_a, eps_2, eps_1 = scales
    return {
        "a": eps_a * jax.random.normal(ka, (m,), dtype),
        "w2": eps_2 * jax.random.normal(k2, (m, m), dtype),
        "w1": eps_1 * jax.random.normal(k1, (m, d), dtype),
    }


def three_layer_apply(params: dict, x, act) -> jnp.ndarray:
    """f(x) = aᵀ σ(W² σ(W¹ x)) (3.1), for every row of x."""
    h1 = act(x @ params["w1"].T)
    h2 = act(h1 @ params["w2"].T)
    return h2 @ params["a"]


def two_layer_init(key, d: int, m: int, beta1: float, beta2: float, dtype=jnp.float32) -> dict:
    """w_k ~ N(0, β₁² I_d), a_k ~ N(0, β₂²)."""
    kw, ka = jax.random.split(key)
    return {"a": beta2 * jax.random.normal(ka, (m,), dtype), "w": beta1 * jax.random.normal(kw, (m, d), dtype)}


def two_layer_apply(params: dict, x, act, alpha: float = 1.0) -> jnp.ndarray:
    """f(x) = (1/α) Σ_k a_k σ(w_k · x)."""
    return act(x @ params["w"].T) @ params["a"] / alpha


def mse(pred, y) -> jnp.ndarray:
    """R_S = (1/2n) Σ_i (f(x_i) − y_i)² (3.2)."""
    return 0.5 * jnp.mean((pred - y) ** 2)


def effective_energy(params: dict, v) -> jnp.ndarray:
    """E = aᵀ W² W¹ v (3.8) of the three-layer network, in the units of its parameters."""
    return params["a"] @ params["w2"] @ (params["w1"] @ v)
