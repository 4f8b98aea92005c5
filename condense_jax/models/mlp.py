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


# σ' as a function of the output h = σ(z), for the activations of models/activations.py whose
# derivative has that closed form (None: σ' = 1). relu: σ'(z) = 1 for z > 0, else 0 (JAX's choice
# at 0), and h > 0 ⟺ z > 0. sigmoid is the shifted one, h = s − 1/2 with s = 1/(1+e^{−z}):
# σ' = s (1 − s) = 1/4 − h².
_DERIVATIVE_OF_OUTPUT = {
    "tanh": lambda h: 1 - h * h,
    "sigmoid": lambda h: 0.25 - h * h,
    "identity": None,
    "relu": lambda h: (h > 0).astype(h.dtype),
}


def _contract(a, b, axis_a: int, axis_b: int):
    """Σ_k a[..k..] b[..k..] over axis_a of a and axis_b of b, as one dot_general (no transposes
    written out: XLA then keeps each operand in place; `a.T @ b` made it copy h¹ and W²)."""
    return jax.lax.dot_general(a, b, (((axis_a,), (axis_b,)), ((), ())))


def three_layer_value_and_grad(params: dict, x, y, act_name: str):
    """R_S and its gradient for the three-layer network, forward and backward written out.

    Equals `jax.value_and_grad(lambda p: mse(three_layer_apply(p, x, σ), y))(params)` up to
    rounding, with the work of one step in three m×m×n matrix products: z² = W² h¹, ∇W² = δ² h¹ᵀ
    and W²ᵀ δ². Hidden activations are kept as (m, n) (one column per sample), and σ' is taken
    from the stored outputs (1 − h² for tanh), so no pre-activation is kept. An activation
    without such a closed form falls back to autodiff.
    """
    from .activations import get

    act = get(act_name).fn
    if act_name not in _DERIVATIVE_OF_OUTPUT:
        return jax.value_and_grad(lambda p: mse(three_layer_apply(p, x, act), y))(params)
    deriv = _DERIVATIVE_OF_OUTPUT[act_name]
    a, w2, w1 = params["a"], params["w2"], params["w1"]
    n = y.shape[0]
    h1 = act(_contract(w1, x, 1, 1))  # (m, n) = σ(W¹ xᵀ)
    h2 = act(_contract(w2, h1, 1, 0))  # (m, n) = σ(W² h¹)
    err = _contract(a, h2, 0, 0) - y  # (n,) f − y
    loss = 0.5 * jnp.mean(err * err)
    r = err / n  # ∂R_S/∂f
    d2 = a[:, None] * r[None, :]  # ∂R_S/∂z² (m, n)
    if deriv is not None:
        d2 = d2 * deriv(h2)
    d1 = _contract(w2, d2, 0, 0)  # ∂R_S/∂h¹ = W²ᵀ δ²
    if deriv is not None:
        d1 = d1 * deriv(h1)
    grads = {"a": _contract(h2, r, 1, 0), "w2": _contract(d2, h1, 1, 1), "w1": _contract(d1, x, 1, 0)}
    return loss, grads
