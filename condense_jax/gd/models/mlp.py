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



def positive_sum(a, b, c) -> jnp.ndarray:
    """The Fig. 2 \"sum of positive numbers\" Σ_k [c_k (aᵀb)_k > 0] + Σ_j [a_j (bc)_j > 0] alone, O(m²):
    cheap enough for every step."""
    return jnp.sum(c * (a @ b) > 0) + jnp.sum(a * (b @ c) > 0)


def _contract(a, b, axis_a: int, axis_b: int):
    """Σ_k a[..k..] b[..k..] over axis_a of a and axis_b of b, as one dot_general (no transposes
    written out: XLA then keeps each operand in place; `a.T @ b` made it copy h¹ and W²)."""
    return jax.lax.dot_general(a, b, (((axis_a,), (axis_b,)), ((), ())))


# Widest hidden layer for which a scalar-input network takes its backward pass as one product
# (see three_layer_value_and_grad); measured on the 2-core Xeon, n = 100, float32, in the
# training engine: m = 20 1.4x, 32 1.12x, 50 1.17x, 64 1.02x, 80 0.65x, 100 0.66x faster.
SHARED_BACKWARD_MAX_WIDTH = 64


def three_layer_value_and_grad(params: dict, x, y, act_name: str, v=None):
    """R_S and its gradient for the three-layer network, forward and backward written out; with
    the target direction v, also the Fig. 2 positive sum at params: (R_S, ∇R_S, sum).

    Equals `jax.value_and_grad(lambda p: mse(three_layer_apply(p, x, σ), y))(params)` up to
    rounding, with the work of one step in three m×m×n matrix products: z² = W² h¹, ∇W² = δ² h¹ᵀ
    and W²ᵀ δ². Hidden activations are kept as (m, n) (one column per sample), and σ' is taken
    from the stored outputs (1 − h² for tanh), so no pre-activation is kept. An activation
    without such a closed form falls back to autodiff.

    For scalar inputs (d = 1) and widths up to SHARED_BACKWARD_MAX_WIDTH, both backward products
    come from δ² in one (m × n)·(n × 2m) product: ∇W¹_k = Σ_i (W²ᵀδ²)_ki σ'_ki x_i
    = Σ_j W²_jk P_jk with P = δ² (σ'¹ ∘ x)ᵀ, and [∇W², P] = δ² [h¹; σ'¹ ∘ x]ᵀ. Same flops, one
    product fewer per step, which is what small products cost on a CPU; wider products run
    faster as two.

    The positive sum Σ_k [c_k (aᵀW²)_k > 0] + Σ_j [a_j (W²c)_j > 0], c = W¹v (positive_sum)
    rides on the same products instead of two matrix-vector products of its own: W²c is one more
    column of z² = W²[h¹ c], and aᵀW² one more column of W²ᵀ[δ² a] (or, with the shared backward
    product, one more column sum of W² ∘ ·).
    """
    from . import activations

    act, deriv = activations.get(act_name).fn, activations.get(act_name).derivative_of_output
    a, w2, w1 = params["a"], params["w2"], params["w1"]
    n, m = y.shape[0], a.shape[0]
    h1 = act(_contract(w1, x, 1, 1))  # (m, n) = σ(W¹ xᵀ)
    c = None if v is None else w1 @ v  # (3.9)
    h1c = h1 if v is None else jnp.concatenate([h1, c[:, None]], axis=1)  # [h¹ c]
    z2 = _contract(w2, h1c, 1, 0)  # W² h¹ (m, n), and W²c as column n
    h2 = act(z2[:, :n])  # (m, n) = σ(W² h¹)
    err = _contract(a, h2, 0, 0) - y  # (n,) f − y
    loss = 0.5 * jnp.mean(err * err)
    r = err / n  # ∂R_S/∂f
    d2 = a[:, None] * r[None, :]  # ∂R_S/∂z² (m, n)
    if deriv is not None:
        d2 = d2 * deriv(h2)
    grad_a = _contract(h2, r, 1, 0)
    if x.shape[1] == 1 and m <= SHARED_BACKWARD_MAX_WIDTH:
        s1x = x[:, 0] if deriv is None else deriv(h1) * x[:, 0]  # σ'(z¹_ki) x_i (m, n)
        both = _contract(d2, jnp.concatenate([h1, jnp.broadcast_to(s1x, h1.shape)]), 1, 1)  # δ² [h¹; σ'¹∘x]ᵀ (m, 2m)
        grads = {"a": grad_a, "w2": both[:, :m], "w1": jnp.sum(w2 * both[:, m:], axis=0)[:, None]}  # Σ_j W²_jk P_jk
        atw2 = None if v is None else _contract(a, w2, 0, 0)  # aᵀW²
    else:
        d2a = d2 if v is None else jnp.concatenate([d2, a[:, None]], axis=1)  # [δ² a]
        d1a = _contract(w2, d2a, 0, 0)  # ∂R_S/∂h¹ = W²ᵀ δ² (m, n), and aᵀW² as column n
        d1 = d1a[:, :n] if deriv is None else d1a[:, :n] * deriv(h1)
        grads = {"a": grad_a, "w2": _contract(d2, h1, 1, 1), "w1": _contract(d1, x, 1, 0)}
        atw2 = None if v is None else d1a[:, n]
    if v is None:
        return loss, grads
    return loss, grads, jnp.sum(c * atw2 > 0) + jnp.sum(a * z2[:, n] > 0)
