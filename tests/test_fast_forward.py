"""Skipping the plateau (issue #20, gd/fast_forward.py): the leading-order GD map is GD to O(ε²) on
the plateau (slope fitted over three ε), the modified flow follows the map's iterates to O(h³),
the two-layer closed form is the map itself, the rebuilt weights at the handover have the
truncated loss's gradient to O(δ²), and a fast-forwarded sweep gives the escape step, the final
loss, the condensed directions and the Assumption 2 hold step of full GD. Everything the method
cannot do (ReLU, deep-linear, the CNN, Adam) is refused in one line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import run_cli

from condense_jax import TrainSweep
from condense_jax.errors import ConfigError
from condense_jax.gd import data, fast_forward
from condense_jax.gd.models import mlp

M, N = 8, 40


@pytest.fixture(scope="module")
def xy():
    x, y = data.tanh_regression(N, seed=0)
    return data.with_bias(x), y


def _init(m, d, eps, seed=0):
    return mlp.three_layer_init(jax.random.PRNGKey(seed), d, m, (eps, eps, eps), jnp.float64)


def _slope(eps, err):
    return np.polyfit(np.log(eps), np.log(err), 1)[0]


def test_the_leading_order_map_is_gd_to_order_eps_squared_on_the_plateau(xy):
    """K steps of full GD against K steps of the truncated map (normalised time Kh fixed at a
    third of T*): the relative difference falls like ε² (odd σ), slope fitted over three ε."""
    x, y = xy
    v = data.target_direction(x, y)
    kappa = data.effective_rate(x, y, 1.0)
    lr = 0.05
    loss = lambda p: mlp.mse(mlp.three_layer_apply(p, jnp.asarray(x), jnp.tanh), jnp.asarray(y))
    grad = jax.jit(jax.grad(loss))
    errs, epss = [], [3e-2, 1.5e-2, 7.5e-3]
    for eps in epss:
        p = _init(M, x.shape[1], eps)
        h = lr * kappa * eps
        steps = int(round(0.15 / h))  # normalised time 0.15, on the plateau (T* of these starts is ≈ 0.5)
        y_eff = (p["a"] / eps, p["w2"] / eps, p["w1"] @ v / eps)
        step_map = jax.jit(lambda u, h=h: fast_forward.euler_map(u, h))
        q = p
        for _ in range(steps):
            g = grad(q)
            q = jax.tree_util.tree_map(lambda w, dw: w - lr * dw, q, g)
            y_eff = step_map(y_eff)
        full = np.concatenate([np.ravel(q["a"]), np.ravel(q["w2"]), np.ravel(q["w1"] @ v)]) / eps
        eff = np.concatenate([np.ravel(u) for u in y_eff])
        errs.append(np.linalg.norm(full - eff) / np.linalg.norm(eff))
    assert errs[-1] < 1e-3, errs
    assert 1.6 < _slope(epss, errs) < 2.6, (errs, _slope(epss, errs))


def test_the_modified_flow_follows_the_maps_iterates_to_order_h_cubed():
    import diffrax

    key = jax.random.split(jax.random.PRNGKey(1), 3)
    y0 = tuple(0.5 * jax.random.normal(k, s, jnp.float64) for k, s in zip(key, ((6,), (6, 6), (6,))))
    norm = lambda u: float(jnp.sqrt(sum(jnp.sum(t * t) for t in u)))
    hs, errs, flow_errs = [2e-2, 1e-2, 5e-3], [], []
    for h in hs:
        steps = int(round(0.6 / h))
        u = y0
        for _ in range(steps):
            u = fast_forward.euler_map(u, h)
        for field, out in ((lambda t, w, a, h=h: fast_forward.modified_field(w, h), errs), (lambda t, w, a: fast_forward.field(w), flow_errs)):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), 0.0, steps * h, None, y0,
                                      stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), max_steps=100000)
            w = jax.tree_util.tree_map(lambda t: t[-1], sol.ys)
            out.append(norm(jax.tree_util.tree_map(lambda p, q: p - q, w, u)) / norm(u))
    assert 2.6 < _slope(hs, errs) < 3.5, errs  # the modified equation: O(h³)
    assert 0.8 < _slope(hs, flow_errs) < 1.2, flow_errs  # the plain flow: O(h), why the map matters


def test_the_two_layer_closed_form_is_the_truncated_map(xy):
    x, y = xy
    v = jnp.asarray(data.target_direction(x, y))
    p0 = mlp.two_layer_init(jax.random.PRNGKey(2), x.shape[1], 6, 1e-3, 1e-3, jnp.float64)
    lam, lr = 0.8, 0.05
    k_h, p_h, records = fast_forward.effective_two_layer(p0, v, lam, lr, 5000, np.array([0, 10, 100, 5000]), 0.01)
    a, p = p0["a"], p0["w"] @ v
    for _ in range(int(k_h)):
        a, p = a + lr * lam * p, p + lr * lam * a
    np.testing.assert_allclose(p_h["a"], a, rtol=1e-9)
    np.testing.assert_allclose(p_h["w"] @ v, p, rtol=1e-9)
    w_perp = lambda w: w - jnp.outer(w @ v, v)
    np.testing.assert_allclose(w_perp(p_h["w"]), w_perp(p0["w"]), atol=1e-15)  # W(I − vvᵀ) never moves
    norm = lambda k: float(jnp.sqrt(jnp.sum(records["a"][k] ** 2) + jnp.sum((records["w"][k] @ v) ** 2)))
    reached = float(jnp.sqrt(jnp.sum(p_h["a"] ** 2) + jnp.sum((p_h["w"] @ v) ** 2)))
    a1, p1 = a - lr * lam * p, p - lr * lam * a  # one step back (the map is invertible for ηλ < 1)
    before = float(jnp.sqrt(jnp.sum(a1 ** 2) + jnp.sum(p1 ** 2)) / (1 - (lr * lam) ** 2))
    assert 0 < int(k_h) < 5000 and reached >= 0.01 > before  # the first step at which ‖(a, Wv)‖ ≥ δ
    assert norm(0) < 0.01


def test_the_handover_weights_have_the_truncated_gradient_to_order_delta_squared(xy):
    """At the handover the full loss's gradient and the truncated loss's differ by O(δ²) relative
    (odd σ): fitted over three δ; and W¹(I − vvᵀ) is the initial one, W¹v = εc̄."""
    x, y = xy
    v = jnp.asarray(data.target_direction(x, y))
    kappa = data.effective_rate(x, y, 1.0)
    eps, lr = 1e-3, 0.05
    p0 = _init(M, x.shape[1], eps, seed=3)
    xs = jnp.asarray(x)
    full = jax.grad(lambda p: mlp.mse(mlp.three_layer_apply(p, xs, jnp.tanh), jnp.asarray(y)))
    trunc = jax.grad(lambda p: -kappa * p["a"] @ p["w2"] @ (p["w1"] @ v))
    deltas, errs = [0.2, 0.1, 0.05], []
    solve = jax.jit(lambda d: fast_forward.effective_three_layer(p0, eps, v, kappa, lr, 10**7, np.array([0]), d, xs, 1.0))
    for delta in deltas:
        k_h, p_h, _ = solve(delta)
        assert 0 < int(k_h) < 10**7
        np.testing.assert_allclose(p_h["w1"] - jnp.outer(p_h["w1"] @ v, v), p0["w1"] - jnp.outer(p0["w1"] @ v, v), atol=1e-14)
        gf, gt = full(p_h), trunc(p_h)
        diff = sum(float(jnp.sum((gf[k] - gt[k]) ** 2)) for k in gf) ** 0.5
        errs.append(diff / sum(float(jnp.sum(gt[k] ** 2)) for k in gt) ** 0.5)
    assert errs[1] < 0.05, errs
    assert _slope(deltas, errs) > 0.9, errs  # O(δ²) from σ; the loss's f² term is O(δ) (module doc)


@pytest.mark.parametrize("change, expect", [
    (dict(activation="relu"), "smooth odd activation"),
    (dict(model="deep-linear", data="fig3"), "saddle to saddle"),
    (dict(model="cnn", data="synthetic", loss="cross_entropy"), "one conv layer, no hidden layer, MSE"),
    (dict(model="cnn", data="synthetic", conv_layers=2), "one conv layer"),
    (dict(optimizer="adam"), "plain gradient descent"),
    (dict(fast_forward_norm=2.0), "fast_forward_norm must lie in (0, 1]"),
    (dict(fast_forward_norm=-0.1), "fast_forward_norm"),
    (dict(fast_forward_norm=float("nan")), "fast_forward_norm"),
])
def test_what_cannot_be_fast_forwarded_is_refused_in_one_line(change, expect):
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        TrainSweep(**{**dict(fast_forward=True), **change})


def test_fast_forward_enters_the_config_hash_only_when_on():
    """Off, it changes no number: the hash is the one sweeps had before the setting existed (so they
    resume); on, it is another sweep."""
    plain = TrainSweep().config_hash()
    assert TrainSweep(fast_forward_norm=0.5).config_hash() == plain
    assert TrainSweep(fast_forward=True).config_hash() != plain
    assert TrainSweep(fast_forward=True, fast_forward_norm=0.05).config_hash() != TrainSweep(fast_forward=True).config_hash()


def test_the_cli_refuses_before_writing(tmp_path, capsys):
    out = tmp_path / "x"
    code, _, err = run_cli(["train", "--fast-forward", "--activation", "relu", "--out", str(out)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "relu" in err and not out.exists()


def test_a_batch_mixing_starts_above_and_below_the_handover_level_gives_each_runs_own_step(xy):
    """vmapped runs all take the event's root-find: a run that starts at u ≥ δ (k_h = 0), one that
    never reaches δ within its steps (k_h = the cap) and ordinary ones, batched as alone."""
    x, y = xy
    v = jnp.asarray(data.target_direction(x, y))
    kappa = data.effective_rate(x, y, 1.0)
    xs = jnp.asarray(x)
    epss = [0.3, 1e-2, 1e-3, 1e-5]
    starts = [_init(M, x.shape[1], e, seed=4) for e in epss]
    one = lambda p, e: fast_forward.effective_three_layer(p, e, v, kappa, 0.05, 20000, np.array([0, 10, 20000]), 0.1, xs, 1.0)[0]
    alone = [int(jax.jit(one)(p, e)) for p, e in zip(starts, epss)]
    batch = jax.tree_util.tree_map(lambda *u: jnp.stack(u), *starts)
    together = [int(k) for k in jax.jit(jax.vmap(one))(batch, jnp.asarray(epss))]
    assert alone == together, (alone, together)
    assert alone[0] == 0 and alone[-1] == 20000 and 0 < alone[1] < alone[2] < 20000, alone


def test_the_cnn_closed_form_is_gd_on_the_truncated_loss():
    """The CNN's closed form (SVD of Z) equals GD on the truncated loss −s₁ Σ_β a_βᵀZθ_β = −(1/n) Σᵢ yᵢ
    f_lin(xᵢ), built here from the model's own forward pass with σ linear (an independent route to
    Z's orders and signs), step by step up to k_h."""
    from condense_jax.gd.models import cnn

    x, y = data.synthetic_images(30, size=6, seed=1)
    x = np.asarray(x, np.float64).reshape(30, 6, 6, -1)
    y = np.asarray(y, np.float64)
    z = fast_forward.cnn_z(x, y, 3)
    svd = np.linalg.svd(z, full_matrices=False)
    p0 = cnn.init(jax.random.PRNGKey(5), (6, 6, x.shape[-1]), (4,), 3, 1e-4, 1e-4, dtype=jnp.float64)
    lr = 0.05
    k_h, p_h, _ = fast_forward.effective_cnn(p0, svd, 1.0, lr, 10**6, np.array([0]), 1e-2)
    # the truncated loss through the model itself: f linear in each layer (σ = identity), minus its f² term
    lin = lambda p: -jnp.mean(jnp.asarray(y) * cnn.apply(p, jnp.asarray(x), lambda t: t)[:, 0])
    grad = jax.jit(jax.grad(lin))
    p = p0
    for _ in range(int(k_h)):
        p = jax.tree_util.tree_map(lambda w, g: w - lr * g, p, grad(p))
    for got, want in zip(jax.tree_util.tree_leaves(p_h), jax.tree_util.tree_leaves(p)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    assert 0 < int(k_h) < 10**6
