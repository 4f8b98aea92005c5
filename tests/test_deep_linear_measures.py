"""Effective-model measurements of deep matrix factorisation (Appendix A): the completion loss
against explicit sensing (A.2), the frame of V (A.6)/(A.7), the rotated state (A.8) with
E (A.9) = ⟨W, V⟩, and Assumption 4 counted against a direct NumPy loop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from condense_jax.errors import ConfigError
from condense_jax.gd import data
from condense_jax.gd.models import deep_linear
from condense_jax.ode import effective


def _factors(rng, m, scale=1.0):
    return [jnp.asarray(scale * rng.standard_normal((m, m))) for _ in range(3)]


# ---------------------------------------------------------------------------
# completion loss = sensing loss on completion measurements


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completion_loss_equals_sensing_loss(seed):
    rng = np.random.default_rng(seed)
    m = 4
    target = jnp.asarray(rng.standard_normal((m, m)))
    mask = rng.random((m, m)) < 0.6
    mask[0, 0] = True
    factors = _factors(rng, m)
    xs, ys = deep_linear.completion_measurements(target, mask)
    assert xs.shape == (mask.sum(), m, m)
    direct = float(deep_linear.sensing_loss(factors, xs, ys))
    for msk in (mask, mask.astype(np.float64), jnp.asarray(mask)):
        assert float(deep_linear.completion_loss(factors, target, msk)) == pytest.approx(direct, rel=1e-13)
    # NumPy: (1/2n) Σ_observed (W − W*)²
    w = np.asarray(factors[2]) @ np.asarray(factors[1]) @ np.asarray(factors[0])
    ref = 0.5 * np.sum(((w - np.asarray(target)) ** 2)[mask]) / mask.sum()
    assert direct == pytest.approx(ref, rel=1e-13)
    # and the matrix V of (A.6) both ways
    np.testing.assert_allclose(deep_linear.completion_matrix(target, mask), deep_linear.sensing_matrix(xs, ys), atol=1e-15)


@pytest.mark.parametrize("kind", ["full", "random"])
def test_fig3_data_both_ways(kind):
    m = 5
    mask, target = data.fig3_completion(m, seed=3, kind=kind, fraction=0.4)
    xs, ys = data.fig3_sensing(m, seed=3, kind=kind, fraction=0.4)
    xs_ref, ys_ref = deep_linear.completion_measurements(jnp.asarray(target), mask > 0)
    np.testing.assert_array_equal(xs, np.asarray(xs_ref))
    np.testing.assert_array_equal(ys, np.asarray(ys_ref))
    factors = _factors(np.random.default_rng(0), m, 0.7)
    a = deep_linear.completion_loss(factors, jnp.asarray(target), mask)
    b = deep_linear.sensing_loss(factors, jnp.asarray(xs), jnp.asarray(ys))
    assert float(a) == pytest.approx(float(b), rel=1e-13)
    # at W = 0 the loss is Σ_observed W*² / 2n = 2 / 2n: both non-zero entries are always observed
    zero = [jnp.zeros((m, m))] * 3
    assert float(deep_linear.completion_loss(zero, jnp.asarray(target), mask)) == pytest.approx(1.0 / mask.sum())


# ---------------------------------------------------------------------------
# frame, rotated state, energy and vector field


def _random_v(rng, m, symmetric):
    v = rng.standard_normal((m, m))
    return jnp.asarray(v + v.T if symmetric else v)


@pytest.mark.parametrize("symmetric", [True, False])
def test_frame_reconstructs_v(symmetric):
    rng = np.random.default_rng(5)
    m = 6
    v = _random_v(rng, m, symmetric)
    u, r, lam = deep_linear.effective_frame(v, symmetric=symmetric)
    np.testing.assert_allclose(u @ jnp.diag(lam) @ r.T, v, atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(m), atol=1e-12)
    np.testing.assert_allclose(r.T @ r, np.eye(m), atol=1e-12)
    assert np.all(np.diff(np.abs(np.asarray(lam))) <= 1e-12)  # decreasing |λ|
    if symmetric:
        np.testing.assert_array_equal(u, r)
        np.testing.assert_allclose(np.sort(lam), np.linalg.eigvalsh(np.asarray(v)), atol=1e-12)
    else:
        np.testing.assert_allclose(lam, np.linalg.svd(np.asarray(v), compute_uv=False), atol=1e-12)


def test_fig3_frame_is_diagonal():
    """Full observation of diag(1, −1, 0, …): V = W*/m², eigenvalues ±1/m² on e_1, e_2, rest 0."""
    m = 7
    mask, target = data.fig3_completion(m)
    v = deep_linear.completion_matrix(jnp.asarray(target), mask)
    np.testing.assert_allclose(v, target / m**2, atol=0)
    u, r, lam = deep_linear.effective_frame(v)
    lam = np.asarray(lam)
    np.testing.assert_allclose(np.sort(lam[:2]), [-1 / m**2, 1 / m**2], rtol=1e-14)
    np.testing.assert_allclose(lam[2:], 0, atol=1e-18)
    top = np.abs(np.asarray(u)[:, :2])  # the active modes are ±e_1, ±e_2
    np.testing.assert_allclose(top[:2].sum(0), [1, 1], atol=1e-14)
    np.testing.assert_allclose(top[2:], 0, atol=1e-14)
    counts = deep_linear.assumption4_counts(*deep_linear.effective_state(_factors(np.random.default_rng(1), m), (u, r, lam)), lam)
    assert int(counts["a4_active"]) == 2


@pytest.mark.parametrize("symmetric", [True, False])
def test_energy_and_vector_field_in_the_frame(symmetric):
    """E = Σ λ_i a_iᵀ b c_i (A.9) = ⟨W³W²W¹, V⟩, and the rotated gradient of ⟨W, V⟩ (A.6) is (A.8)."""
    rng = np.random.default_rng(11)
    m = 5
    v = _random_v(rng, m, symmetric)
    factors = _factors(rng, m)
    frame = deep_linear.effective_frame(v, symmetric=symmetric)
    a, b, c = deep_linear.effective_state(factors, frame)
    lam = frame[2]
    w = deep_linear.product(factors)
    assert float(effective.sensing_energy(a, b, c, lam)) == pytest.approx(float(jnp.vdot(w, v)), rel=1e-12)
    # NumPy, with the paper's a_i (rows of W̃³) and c_i (columns of W̃¹)
    e_np = sum(float(lam[i]) * np.asarray(a)[i] @ np.asarray(b) @ np.asarray(c)[:, i] for i in range(m))
    assert e_np == pytest.approx(float(jnp.vdot(w, v)), rel=1e-12)
    # (A.6) rotated with the same orthogonal map is (A.8)
    g1, g2, g3 = jax.grad(lambda f: jnp.vdot(deep_linear.product(f), v))(factors)
    ga, gb, gc = deep_linear.effective_state([g1, g2, g3], frame)
    da, db, dc = effective.sensing_vector_field(a, b, c, lam)
    for x, y in ((ga, da), (gb, db), (gc, dc)):
        np.testing.assert_allclose(x, y, atol=1e-11)
    # the rotation is orthogonal: it keeps every Frobenius norm
    for f, g in zip(factors, (c, b, a)):
        assert float(jnp.linalg.norm(g)) == pytest.approx(float(jnp.linalg.norm(f)), rel=1e-13)


# ---------------------------------------------------------------------------
# Assumption 4: a direct NumPy loop


def _a4_reference(a, b, c, lam):
    """Assumption 4 with explicit loops; c_{i,j} = c[j, i], b_j = b[j], b^j = b[:, j]."""
    a, b, c, lam = (np.asarray(x, np.float64) for x in (a, b, c, lam))
    m = a.shape[0]
    act = [i for i in range(m) if lam[i] != 0]
    rm = range(m)
    first_in = sum(lam[i] * c[j, i] * (a[i] @ b[:, j]) > 0 for i in act for j in rm)
    first_out = sum(lam[i] * a[i, j] * (b[j] @ c[:, i]) > 0 for i in act for j in rm)
    in_pairs = sum(np.dot(c[k, i] * b[:, k], c[j, i] * b[:, j]) > 0 for i in act for j in rm for k in rm)
    out_pairs = sum(np.dot(a[i, k] * b[k], a[i, j] * b[j]) > 0 for i in act for j in rm for k in rm)
    cross = sum(lam[i] * lam[j] * a[i, k] * a[j, k] * c[q, i] * c[q, j] > 0  # q: the paper's l
                for i, j in itertools.product(act, act) for k in rm for q in rm)
    n = len(act)
    holds = n > 0 and first_in == first_out == n * m and in_pairs == out_pairs == n * m * m and cross == n * n * m * m
    return dict(a4_in=first_in, a4_out=first_out, a4_in_pairs=in_pairs, a4_out_pairs=out_pairs, a4_cross=cross,
                a4_active=n, a4_first_total=n * m, a4_pairs_total=n * m * m, a4_cross_total=n * n * m * m, a4_holds=holds)


def _check(a, b, c, lam):
    got = deep_linear.assumption4_counts(jnp.asarray(a), jnp.asarray(b), jnp.asarray(c), jnp.asarray(lam))
    ref = _a4_reference(a, b, c, lam)
    assert {k: (bool(v) if k == "a4_holds" else int(v)) for k, v in got.items()} == ref
    return ref


def _holding_state(rng, m, lam):
    """a_i = x_i p, b = p qᵀ, c_i = sign(λ_i) z_i q with p, q, x, z > 0: every term of Assumption 4
    is a product of positives times (λ_i sign λ_i)(λ_j sign λ_j) > 0. Rows/columns of inactive i
    are random (they must be ignored)."""
    p, q, x, z = (rng.uniform(0.5, 2.0, m) for _ in range(4))
    a = np.outer(x, p)
    b = np.outer(p, q)
    c = np.outer(q, np.sign(lam) * z)
    off = lam == 0
    a[off] = rng.standard_normal((off.sum(), m))
    c[:, off] = rng.standard_normal((m, off.sum()))
    return a, b, c


@pytest.mark.parametrize("lam", [[1.0, 2.0, 0.5, 3.0], [2.0, -1.0, 0.0, 0.5], [0.0, -1.0, 0.0, 0.0]])
def test_assumption4_holds_on_constructed_state(lam):
    rng = np.random.default_rng(2)
    lam = np.asarray(lam)
    a, b, c = _holding_state(rng, 4, lam)
    ref = _check(a, b, c, lam)
    assert ref["a4_holds"] and ref["a4_active"] == np.count_nonzero(lam)


def test_assumption4_one_flip_breaks_exactly_one_first_condition():
    """Flipping the sign of c_{0,0} flips the sign of exactly one term of condition (1a)."""
    rng = np.random.default_rng(4)
    lam = np.array([1.5, -0.5, 0.0, 2.0])
    a, b, c = _holding_state(rng, 4, lam)
    c[0, 0] = -c[0, 0]
    ref = _check(a, b, c, lam)
    assert not ref["a4_holds"]
    assert ref["a4_in"] == ref["a4_first_total"] - 1


@pytest.mark.parametrize("seed", range(6))
def test_assumption4_random_against_loops(seed):
    rng = np.random.default_rng(100 + seed)
    m = 4
    a, b, c = (rng.standard_normal((m, m)) for _ in range(3))
    lam = rng.standard_normal(m)
    lam[rng.random(m) < 0.3] = 0.0
    ref = _check(a, b, c, lam)
    if ref["a4_active"] and seed < 3:  # generic random states violate it
        assert not ref["a4_holds"]


def test_assumption4_counts_do_not_depend_on_frame_signs_or_order():
    """Flipping the sign of frame vectors (a → S a S, …) or relabelling them (with λ) keeps every
    term's sign, hence every count: eigh's arbitrary choices do not matter."""
    rng = np.random.default_rng(8)
    m = 5
    a, b, c = (rng.standard_normal((m, m)) for _ in range(3))
    lam = np.array([1.0, -2.0, 0.0, 0.5, -0.3])
    ref = _check(a, b, c, lam)
    s = np.diag(rng.choice([-1.0, 1.0], m))
    assert _check(s @ a @ s, s @ b @ s, s @ c @ s, lam) == ref
    p = np.eye(m)[rng.permutation(m)]
    assert _check(p @ a @ p.T, p @ b @ p.T, p @ c @ p.T, p @ lam) == ref


def test_assumption4_no_active_index():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((3, 3)) for _ in range(3))
    ref = _check(a, b, c, np.zeros(3))
    assert ref["a4_active"] == 0 and not ref["a4_holds"]


def test_assumption4_rounding_level_lambda_is_inactive():
    """A zero eigenvalue that eigh leaves at 1e-17 does not count as λ_i ≠ 0."""
    rng = np.random.default_rng(0)
    lam = np.array([1.0, -1.0, 1e-17, -3e-18])
    a, b, c = _holding_state(rng, 4, np.array([1.0, -1.0, 0.0, 0.0]))
    got = deep_linear.assumption4_counts(*(jnp.asarray(x) for x in (a, b, c, lam)))
    assert int(got["a4_active"]) == 2 and bool(got["a4_holds"])
    got = deep_linear.assumption4_counts(*(jnp.asarray(x) for x in (a, b, c, lam)), rtol=0.0)
    assert int(got["a4_active"]) == 4


def test_assumption4_is_scale_invariant_and_float32():
    rng = np.random.default_rng(7)
    lam = np.array([2.0, -1.0, 0.0, 0.5])
    a, b, c = (rng.standard_normal((4, 4)) for _ in range(3))
    ref = _a4_reference(a, b, c, lam)
    got = deep_linear.assumption4_counts(*(jnp.asarray(x, jnp.float32) for x in (1e-6 * a, 1e-6 * b, 1e-6 * c, lam)))
    assert {k: (bool(v) if k == "a4_holds" else int(v)) for k, v in got.items()} == ref


# ---------------------------------------------------------------------------
# jit / vmap, singular values (on the host, from the recorded product)


def test_everything_under_jit_and_vmap():
    rng = np.random.default_rng(9)
    m, batch = 5, 3
    vs = jnp.asarray(rng.standard_normal((batch, m, m)))
    vs = vs + jnp.swapaxes(vs, 1, 2)
    fs = [jnp.asarray(rng.standard_normal((batch, m, m))) for _ in range(3)]

    def measure(v, f1, f2, f3):
        frame = deep_linear.effective_frame(v)
        state = deep_linear.effective_state([f1, f2, f3], frame)
        return state, deep_linear.assumption4_counts(*state, frame[2]), deep_linear.product([f1, f2, f3])

    batched = jax.jit(jax.vmap(measure))(vs, *fs)
    for k in range(batch):
        one = measure(vs[k], *(f[k] for f in fs))
        # |entries|: eigenvector signs are arbitrary (and the counts do not depend on them)
        for x, y in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(batched)):
            np.testing.assert_allclose(np.abs(x), np.abs(y[k]), atol=1e-10)


def test_top_singular_values():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 6))
    np.testing.assert_allclose(deep_linear.top_singular_values(jnp.asarray(w), 3), np.linalg.svd(w, compute_uv=False)[:3], rtol=1e-12)
    # rank two: W = u vᵀ + 2 x yᵀ with orthonormal pairs has singular values (2, 1, 0, …)
    q, _ = np.linalg.qr(rng.standard_normal((6, 4)))
    w2 = np.outer(q[:, 0], q[:, 1]) + 2 * np.outer(q[:, 2], q[:, 3])
    np.testing.assert_allclose(deep_linear.top_singular_values(jnp.asarray(w2), 3), [2, 1, 0], atol=1e-12)
    # batched over records, as host_series calls it: (runs, K, m, m)
    ws = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(deep_linear.top_singular_values(ws, 2), np.linalg.svd(ws, compute_uv=False)[..., :2], rtol=1e-12)
    for k in (0, 7, 2.0, True):
        with pytest.raises(ConfigError, match="top_k"):
            deep_linear.top_singular_values(jnp.asarray(w), k)
