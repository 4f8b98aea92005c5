"""Effective dynamics of small-initialised networks, as pure JAX functions.

Paper: Chen & Luo, "On the dynamics of three-layer neural networks: initial condensation"
(../shared/papers/three_layer_condensation.txt). Notation follows the paper:
a ∈ R^m (output layer), b ∈ R^{m×m} (hidden layer W^[2]), c = W^[1] v ∈ R^m.

Everything here is a pure function of arrays; no I/O, no host-side state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# ---------------------------------------------------------------------------
# The three-layer effective model (3.8)-(3.10)


def energy(a, b, c):
    """E = aᵀ b c (3.8)."""
    return a @ b @ c


def vector_field(a, b, c):
    """(da/dt, db/dt, dc/dt) = (b c, a cᵀ, bᵀ a) (3.10): gradient ascent of E."""
    return b @ c, jnp.outer(a, c), b.T @ a


def conserved(a, b, c):
    """Conservation laws of Proposition 1 (3.11) in matrix form.

    D1 = a aᵀ − b bᵀ and D2 = bᵀ b − c cᵀ are constant along (3.10); their diagonals are the
    per-neuron laws (a_k² − ‖b_k‖², ‖bᵏ‖² − c_k²) and tr D1 + tr D2 = ‖a‖² − ‖c‖².
    """
    return jnp.outer(a, a) - b @ b.T, b.T @ b - jnp.outer(c, c)


def energy_rate(a, b, c):
    """dE/dt = ‖ȧ‖² + ‖ċ‖² + ‖a‖²‖c‖² (3.14); never negative."""
    return jnp.sum((b @ c) ** 2) + jnp.sum((b.T @ a) ** 2) + jnp.sum(a**2) * jnp.sum(c**2)


# ---------------------------------------------------------------------------
# Depth L ≥ 2: E = aᵀ W_{L-1} ⋯ W_2 c, parameters θ = (a, W_{L-1}, …, W_2, c)


def deep_energy(params):
    """E = aᵀ W_{L-1} ⋯ W_2 c for params = (a, W_{L-1}, …, W_2, c); L = len(params)."""
    a, *middle, c = params
    v = c
    for w in reversed(middle):
        v = w @ v
    return a @ v


def deep_vector_field(params):
    """dθ/dt = ∇_θ E: the gradient-ascent flow of any depth (L = 3 is (3.10))."""
    return jax.grad(deep_energy)(tuple(params))


# ---------------------------------------------------------------------------
# Matrix sensing (Appendix A): rows a_i of W̃^[3], b = W̃^[2], columns c_i of W̃^[1]


def sensing_energy(a, b, c, lam):
    """E = Σ_i λ_i a_iᵀ b c_i (A.9); a: (m, m) with rows a_i, c: (m, m) with columns c_i."""
    return jnp.einsum("i,ik,kl,li->", lam, a, b, c)


def sensing_vector_field(a, b, c, lam):
    """(A.8): da_i/dt = λ_i b c_i, db/dt = Σ_i λ_i a_i c_iᵀ, dc_i/dt = λ_i bᵀ a_i."""
    da = lam[:, None] * (b @ c).T
    db = (a.T * lam) @ c.T
    dc = (b.T @ a.T) * lam
    return da, db, dc


# ---------------------------------------------------------------------------
# Projective time (issue #2): θ = r u, dτ = r^{L-2} dt


def projective_rhs(u, grad_u, log_r, degree):
    """τ-derivatives of (u, log r, t) for a gradient field F = ∇E homogeneous of degree L − 1.

    With θ = r u, ‖u‖ = 1 and dτ = r^{L−2} dt, and F(u) = `grad_u`:
        du/dτ = F(u) − ⟨u, F(u)⟩ u,  d log r/dτ = ⟨u, F(u)⟩ = L·E(u),  dt/dτ = r^{−(L−2)}.
    Nothing is singular in τ: a blow-up at finite t is τ → ∞.
    """
    leaves_u, leaves_f = jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(grad_u)
    lam = sum(jnp.vdot(ui, fi) for ui, fi in zip(leaves_u, leaves_f))
    du = jax.tree_util.tree_map(lambda fi, ui: fi - lam * ui, grad_u, u)
    return du, lam, jnp.exp(-(degree - 2) * log_r)


# ---------------------------------------------------------------------------
# The reduced three-layer form (shared/notes/three_layer_reduction.md)


def reduced_rhs(state, lam_hat, mu_hat):
    """τ-derivative of the reduced, normalised three-layer state.

    With x = b c, y = bᵀ a, D1 = Q diag(λ) Qᵀ, D2 = P diag(μ) Pᵀ and s = ‖a‖² + ‖c‖², (3.10) is
        ã' = x̃,  x̃' = (s − λ_i) ã,  c̃' = ỹ,  ỹ' = (s + μ_j) c̃          (note, step 3)
    in the rotated coordinates ã = Qᵀa, x̃ = Qᵀx, c̃ = Pᵀc, ỹ = Pᵀy. We scale by r = ‖θ‖ and use
    projective time dτ = r dt:  α = ã/r, ξ = x̃/r², γ = c̃/r, η = ỹ/r², ℓ = log(r/r0), T = r0 t,
    λ̂ = λ/r0², μ̂ = μ/r0². Then with Ē = E/r³ = α·ξ and σ = ‖α‖² + ‖γ‖²:
        α' = ξ − 3Ē α,     ξ' = (σ − λ̂ e^{−2ℓ}) α − 6Ē ξ,
        γ' = η − 3Ē γ,     η' = (σ + μ̂ e^{−2ℓ}) γ − 6Ē η,
        ℓ' = 3Ē,           T' = e^{−ℓ}.
    (dr²/dt = 4 a·x + 2 c·y = 6E since a·x = c·y = E.)
    """
    alpha, xi, gamma, eta, log_r, _ = state
    e_bar = jnp.vdot(alpha, xi)
    sigma = jnp.vdot(alpha, alpha) + jnp.vdot(gamma, gamma)
    shrink = jnp.exp(-2.0 * log_r)
    return (
        xi - 3.0 * e_bar * alpha,
        (sigma - lam_hat * shrink) * alpha - 6.0 * e_bar * xi,
        eta - 3.0 * e_bar * gamma,
        (sigma + mu_hat * shrink) * gamma - 6.0 * e_bar * eta,
        3.0 * e_bar,
        jnp.exp(-log_r),
    )
