"""Deep matrix factorisation W = W³ W² W¹ (A.1) with matrix-sensing measurements (A.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...errors import ConfigError


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


def completion_loss(factors, target, mask) -> jnp.ndarray:
    """R_S = (1/2n) Σ_{observed (j,k)} (W_jk − W*_jk)², n = #observed: (A.2) for the completion
    measurements X = e_j e_kᵀ (equal to sensing_loss on completion_measurements(target, mask))
    without the (n, m, m) stack. The paper's Fig. 3 is matrix completion of diag(1, −1, 0, …);
    which entries it observes is not stated (data.fig3_completion)."""
    mask = jnp.asarray(mask, target.dtype)
    return 0.5 * jnp.sum(mask * (product(factors) - target) ** 2) / jnp.sum(mask)


# ---------------------------------------------------------------------------
# The effective model (A.6)-(A.9) measured on the factors


def sensing_matrix(xs, ys) -> jnp.ndarray:
    """V = (1/n) Σ_i y_i X_i (A.6)."""
    return jnp.einsum("n,nij->ij", ys, xs) / ys.shape[0]


def completion_matrix(target, mask) -> jnp.ndarray:
    """V = (1/n) Σ_{observed} W*_jk e_j e_kᵀ = mask ⊙ W* / #observed: (A.6) for completion."""
    mask = jnp.asarray(mask, target.dtype)
    return mask * target / jnp.sum(mask)


def effective_frame(v, symmetric: bool = True, xp=jnp):
    """The frame (U, R, λ) with V = U diag(λ) Rᵀ, ordered by decreasing |λ|.

    symmetric=True (the paper, (A.7)): V is symmetric (X_i symmetric and commuting, or Fig. 3's
    diagonal V); V = O Λ Oᵀ by eigh of (V + Vᵀ)/2, U = R = O, λ of either sign.
    symmetric=False: the SVD V = U Σ Rᵀ (our extension, not in the paper): λ = σ ≥ 0 and left and
    right frames differ. `symmetric` is static (a Python bool), so this works under jit and vmap.
    Within an eigenspace of a repeated λ (e.g. the kernel of Fig. 3's V) the basis is not unique,
    and Assumption 4's conditions depend on it; for an exactly diagonal V eigh returns a
    permutation of the standard basis. `xp=np` computes it on the host (training does, once per
    data set: no LAPACK call in a compiled run, see devices.py).
    """
    if symmetric:
        lam, o = xp.linalg.eigh(0.5 * (v + v.T))
        order = xp.argsort(-xp.abs(lam))
        o = o[:, order]
        return o, o, lam[order]
    u, s, rt = xp.linalg.svd(v)
    return u, rt.T, s


def effective_state(factors, frame):
    """The rotated factors (a, b, c) of (A.7)/(A.8) in the frame (U, R, λ) of effective_frame.

    W̃³ = Uᵀ W³ U, W̃² = Uᵀ W² R, W̃¹ = Rᵀ W¹ R (for U = R = O the paper's W̃ = Oᵀ W O);
    a = W̃³ (rows a_i), b = W̃², c = W̃¹ (columns c_i), the conventions of
    effective.sensing_energy. Then W̃³W̃²W̃¹ = Uᵀ W R, so E = Σ λ_i a_iᵀ b c_i (A.9) = ⟨W, V⟩, and
    the map is orthogonal, so the gradient flow of ⟨W, V⟩ (A.6) becomes (A.8).
    """
    w1, w2, w3 = factors
    u, r, _ = frame
    return u.T @ w3 @ u, u.T @ w2 @ r, r.T @ w1 @ r


def _sign_counts(s, g):
    """Per row i: #(j, k) with s_ij s_ik g_jk > 0, for s, g with entries in {−1, 0, 1} (O(m³))."""
    p, n = (s > 0).astype(g.dtype), (s < 0).astype(g.dtype)
    gp, gn = (g > 0).astype(g.dtype), (g < 0).astype(g.dtype)
    quad = lambda x, h, y: jnp.sum((x @ h) * y, axis=1)  # x_i h y_iᵀ per row
    return quad(p, gp, p) + quad(n, gp, n) + quad(p, gn, n) + quad(n, gn, p)


def assumption4_counts(a, b, c, lam, rtol: float | None = None) -> dict:
    """Assumption 4 (Appendix A) counted, over the indices i with λ_i ≠ 0 only ("for λ_i = 0 we
    neglect those terms"); a has rows a_i, c columns c_i (effective_state), b_j is row j of b and
    b^j its column j (section 3.1).

    (1) #(i, j) with λ_i c_{i,j} a_iᵀ b^j > 0 (`a4_in`) and with λ_i a_{i,j} b_j c_i > 0 (`a4_out`),
        each out of `a4_first_total` = n_λ·m;
    (2) #(i, j, k) with ⟨c_{i,k} b^k, c_{i,j} b^j⟩ > 0 (`a4_in_pairs`) and with
        ⟨a_{i,k} b_k, a_{i,j} b_j⟩ > 0 (`a4_out_pairs`), each out of `a4_pairs_total` = n_λ·m²;
    (3) #(i, j, k, l) with λ_i λ_j a_{i,k} a_{j,k} c_{i,l} c_{j,l} > 0 (`a4_cross`), out of
        `a4_cross_total` = n_λ²·m²;
    `a4_active` = n_λ, and `a4_holds` when every count is its total and n_λ ≥ 1.

    λ_i counts as zero when |λ_i| ≤ rtol·max|λ| (default √eps of the dtype: eigh leaves the zero
    eigenvalues at rounding level). Inactive indices are masked, not filtered: static shapes, so
    this works under jit and vmap. O(m³) time, O(m²) memory (signs, never the m⁴ products).
    Counts have JAX's default integer type (int32 without x64: (3) exact while m⁴ < 2³¹).
    """
    dtype = jnp.result_type(a, b, c, lam)
    if rtol is None:
        rtol = float(jnp.finfo(dtype).eps) ** 0.5
    absl = jnp.abs(lam)
    act = absl > rtol * jnp.max(absl)
    n_act = jnp.sum(act)
    m = a.shape[1]
    lam_s = jnp.sign(lam).astype(dtype)
    ct = c.T  # ct[i, j] = c_{i,j}
    first_in = (lam[:, None] * ct * (a @ b) > 0) & act[:, None]
    first_out = (lam[:, None] * a * (b @ c).T > 0) & act[:, None]
    sa, sc = jnp.sign(a).astype(dtype), jnp.sign(ct).astype(dtype)
    in_pairs = jnp.where(act, _sign_counts(sc, jnp.sign(b.T @ b)), 0)
    out_pairs = jnp.where(act, _sign_counts(sa, jnp.sign(b @ b.T)), 0)
    # (3): for each (i, j), #k with a_{i,k} a_{j,k} of each sign times #l likewise for c
    pa, na = (sa > 0).astype(dtype), (sa < 0).astype(dtype)
    pc, nc = (sc > 0).astype(dtype), (sc < 0).astype(dtype)
    a_same, a_diff = pa @ pa.T + na @ na.T, pa @ na.T + na @ pa.T
    c_same, c_diff = pc @ pc.T + nc @ nc.T, pc @ nc.T + nc @ pc.T
    s = jnp.outer(lam_s, lam_s)
    cross = jnp.where(s > 0, a_same * c_same + a_diff * c_diff, a_same * c_diff + a_diff * c_same)
    cross = jnp.where(act[:, None] & act[None, :], cross, 0)
    to_int = lambda x: jnp.sum(jnp.round(x).astype(n_act.dtype))
    out = dict(
        a4_in=jnp.sum(first_in), a4_out=jnp.sum(first_out),
        a4_in_pairs=to_int(in_pairs), a4_out_pairs=to_int(out_pairs), a4_cross=to_int(cross),
        a4_active=n_act, a4_first_total=n_act * m, a4_pairs_total=n_act * m * m, a4_cross_total=n_act * n_act * m * m,
    )
    out["a4_holds"] = (
        (n_act > 0) & (out["a4_in"] == out["a4_first_total"]) & (out["a4_out"] == out["a4_first_total"])
        & (out["a4_in_pairs"] == out["a4_pairs_total"]) & (out["a4_out_pairs"] == out["a4_pairs_total"])
        & (out["a4_cross"] == out["a4_cross_total"])
    )
    return out


def top_singular_values(w, k: int) -> np.ndarray:
    """The k largest singular values of W (…, m, m), in decreasing order: NumPy on the host (a
    LAPACK call inside a compiled run can deadlock jaxlib's CPU thread pool, see devices.py)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(np.shape(w)[-2:]):
        raise ConfigError(f"top_k must be an integer in [1, {min(np.shape(w)[-2:])}], got {k!r}")
    return np.linalg.svd(np.asarray(w), compute_uv=False)[..., :k]
