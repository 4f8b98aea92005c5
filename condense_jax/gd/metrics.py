"""What a training run records: condensation and final-stage measurements as pure JAX functions.

All functions work on one run's parameters (no batch axis) and are meant to be vmapped. Names
follow the paper: for the three-layer network (3.1) the effective variables are a, b = W², c = W¹v
(3.9), in units of the init scale ε ("normalised": a/ε, W²/ε, W¹v/ε).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def relative_distance(w, w0) -> jnp.ndarray:
    """RD = ‖θ(t) − θ(0)‖ / ‖θ(0)‖ of one layer (Luo et al. 2021; (14) of the CNN paper)."""
    return jnp.linalg.norm((w - w0).ravel()) / jnp.linalg.norm(w0.ravel())


def row_cosines(w) -> jnp.ndarray:
    """Cosine-similarity matrix D(w_i, w_j) of the rows of w (m, d); a zero row has cosine 0."""
    norms = jnp.linalg.norm(w, axis=1)
    u = w / jnp.where(norms > 0, norms, 1.0)[:, None]
    return u @ u.T


def mean_abs_cos_with(w, v) -> jnp.ndarray:
    """Mean over rows of |cos(w_i, v)|: 1 when every row lies on the line of v."""
    norms = jnp.linalg.norm(w, axis=1)
    return jnp.mean(jnp.abs(w @ v) / jnp.where(norms > 0, norms, 1.0) / jnp.linalg.norm(v))


def distinct_directions(cos, threshold: float) -> jnp.ndarray:
    """Number of directions (lines) among the rows: greedy leaders in row order.

    Row i starts a new direction unless |cos(w_i, w_j)| ≥ threshold for an earlier leader j. For a
    condensed layer (all rows on one or two lines) this is the number of lines; at a random init in
    d ≥ 2 it grows with the width.
    """
    close = jnp.abs(cos) >= threshold
    m = cos.shape[0]

    def visit(i, leader):
        covered = jnp.any(leader & close[i])
        return leader.at[i].set(~covered)

    leader = jax.lax.fori_loop(0, m, visit, jnp.zeros(m, bool))
    return jnp.sum(leader)


def assumption2(a, b, c) -> dict:
    """Assumption 2 of the paper, counted.

    (1) #i with c_i aᵀbⁱ > 0 (`a2_in`) and #i with a_i b_i c > 0 (`a2_out`); their sum is the
        "sum of positive numbers" of Fig. 2 (at most 2m).
    (2) #(i, j) with ⟨c_i bⁱ, c_j bʲ⟩ > 0 (`a2_in_pairs`) and with ⟨a_i b_i, a_j b_j⟩ > 0
        (`a2_out_pairs`), each out of m². O(m³): only at recorded steps.
    """
    m = a.shape[0]
    first_in = c * (a @ b) > 0  # c_i aᵀ bⁱ
    first_out = a * (b @ c) > 0  # a_i b_i c
    cols = b * c[None, :]  # columns c_i bⁱ
    rows = b * a[:, None]  # rows a_i b_i
    in_pairs = jnp.sum(cols.T @ cols > 0)
    out_pairs = jnp.sum(rows @ rows.T > 0)
    a2_in, a2_out = jnp.sum(first_in), jnp.sum(first_out)
    holds = (a2_in == m) & (a2_out == m) & (in_pairs == m * m) & (out_pairs == m * m)
    return dict(a2_in=a2_in, a2_out=a2_out, a2_pos_sum=a2_in + a2_out, a2_in_pairs=in_pairs,
                a2_out_pairs=out_pairs, a2_holds=holds)


def three_layer(params, params0, v, eps, threshold: float) -> dict:
    """Series quantities of the three-layer network (3.1) at one step."""
    a, b, w1 = params["a"], params["w2"], params["w1"]
    c = w1 @ v  # (3.9): c = W¹ v
    cos1, cos2 = row_cosines(w1), row_cosines(b)
    return dict(
        rd_a=relative_distance(a, params0["a"]),
        rd_w2=relative_distance(b, params0["w2"]),
        rd_w1=relative_distance(w1, params0["w1"]),
        energy=(a @ b @ c) / eps**3,  # (3.8) in normalised units
        norm_a=jnp.linalg.norm(a) / eps,
        norm_w2=jnp.linalg.norm(b) / eps,
        norm_c=jnp.linalg.norm(c) / eps,
        norm_w1=jnp.linalg.norm(w1) / eps,
        cos_v_w1=mean_abs_cos_with(w1, v),
        n_dir_w1=distinct_directions(cos1, threshold),
        n_dir_w2=distinct_directions(cos2, threshold),
        **assumption2(a, b, c),
    ), dict(w1=cos1, w2=cos2)


def two_layer(params, params0, v, eps, threshold: float) -> dict:
    """Series quantities of the two-layer network f = (1/α) Σ a_k σ(w_k · x)."""
    a, w = params["a"], params["w"]
    cos = row_cosines(w)
    return dict(
        rd_a=relative_distance(a, params0["a"]),
        rd_w=relative_distance(w, params0["w"]),
        norm_a=jnp.linalg.norm(a) / eps,
        norm_w=jnp.linalg.norm(w) / eps,
        cos_v_w=mean_abs_cos_with(w, v),
        n_dir_w=distinct_directions(cos, threshold),
    ), dict(w=cos)


def deep_linear(factors, factors0, v_matrix, frame, eps, top_k: int) -> dict:
    """Series quantities of deep matrix factorisation W = W³W²W¹ (A.1): RD per factor, the product
    W itself (`w_product`, turned into its top singular values by `host_series`), E = ⟨W, V⟩ (A.9)
    in normalised units and the Assumption 4 counts."""
    from .models import deep_linear as dl

    w = dl.product(factors)
    out = {f"rd_w{i + 1}": relative_distance(f, f0) for i, (f, f0) in enumerate(zip(factors, factors0))}
    # the top singular values of W are computed on the host from the recorded product
    # (host_series): an SVD (LAPACK) inside a compiled run can deadlock jaxlib's CPU thread pool
    # when several host devices run one at once (devices.py)
    out["w_product"] = w
    out["energy"] = jnp.vdot(w, v_matrix) / eps ** len(factors)
    a, b, c = dl.effective_state(factors, frame)
    out.update(dl.assumption4_counts(a, b, c, frame[2]))
    return out, {}


def cnn(params, params0, v1, eps, threshold: float) -> tuple[dict, dict]:
    """Series quantities of the CNN (CNN paper): for the first conv layer, θ_β = (vec W_β, b_β) per
    output channel; the share of kernels with |cos(θ_β, v₁)| > threshold, their mean |cos| with
    v₁, ‖θ_{W,v₁}‖/‖θ_W‖ (15), the mean kernel amplitude ‖θ_β‖/ε, the distinct directions; RD (14)
    per conv layer and of a. The cosine matrix of the θ_β is kept for heatmaps."""
    from .models import cnn as model

    theta = model.kernel_vectors(params)
    norms = jnp.linalg.norm(theta, axis=1)
    cos_v1 = jnp.abs(theta @ v1) / jnp.where(norms > 0, norms, 1.0)
    cos = row_cosines(theta)
    out = {f"rd_conv{i + 1}": relative_distance(
        jnp.concatenate([c["w"].ravel(), c["b"]]), jnp.concatenate([c0["w"].ravel(), c0["b"]]))
        for i, (c, c0) in enumerate(zip(params["conv"], params0["conv"]))}
    out.update(
        rd_a=relative_distance(params["a"], params0["a"]),
        share_v1=jnp.mean(cos_v1 > threshold),
        cos_v1=jnp.mean(cos_v1),
        v1_share=jnp.linalg.norm(theta @ v1) / jnp.linalg.norm(theta),
        amplitude=jnp.mean(norms) / eps,
        n_dir_conv1=distinct_directions(cos, threshold),
    )
    # per kernel, for the amplitude / cos(θ_β, v₁) figure: signed cos with v₁ and ‖θ_β‖/ε
    per_kernel = jnp.stack([(theta @ v1) / jnp.where(norms > 0, norms, 1.0), norms / eps], 1)
    # deeper conv layers: D(u, v) (5) between every pair of their vectorised kernels W_{·,·,α,β}
    # (C_{l−1}·C_l of them), for per-layer heatmaps; the first layer's matrix above is over the θ_β
    layers = {f"conv{i + 1}": row_cosines(model.kernels(params, i)) for i in range(1, len(params["conv"]))}
    return out, dict(conv1=cos, **layers, kernels_conv1=per_kernel)


def host_series(series: dict, top_k: int) -> dict:
    """Series of a finished call with the recorded matrices replaced by what is measured from them
    on the host: `w_product` (runs, K, m, m) → `sv_1` … `sv_k`, the top singular values of W
    (NumPy's SVD in float64, stored in W's dtype), in W's place among the columns."""
    if "w_product" not in series:
        return series
    from .models import deep_linear as dl

    out = {}
    for name, value in series.items():
        if name != "w_product":
            out[name] = value
            continue
        w = np.asarray(value)
        sv = dl.top_singular_values(w.astype(np.float64), top_k).astype(w.dtype)
        out.update({f"sv_{j + 1}": sv[..., j] for j in range(top_k)})
    return out
