"""Plateau escape of gradient descent against the effective model: the escape step scales as 1/ε and
approaches T*/(ε κ lr) (escape.py), W¹ condenses onto v after the plateau, the rescaling carries
σ'(0)² (checked on the network's own gradient), ReLU gets NaN and a warning, and T* matches an
independent SciPy integration of (3.10) from the normalised start.

What the gap measured − predicted should do (steps, lr = η, h̄ = ε κ η the GD step in effective time):
* gradient flow: near T* the weights in original units follow θ ≈ 1/(κ(t_* − t)), independent of ε,
  so the loss halves a fixed O(1/κ) time before t_* = T*/(εκ): a constant number of steps, O(1/(κη));
* gradient descent is forward Euler with step h̄ on a flow that blows up like s' = s²: each step
  1/s falls by h̄(1 − h̄ s), so Euler needs Σ h̄ s_k ≈ ∫ s dt̄ = ln(growth of s) extra steps, and s grows
  by ~1/ε from the normalised start to O(1) weights: ≈ ln(1/ε) extra steps, whatever η.
So gap ≈ ln(1/ε) + O(1) steps against ~T*/(εκη) predicted: the relative error falls like ε ln(1/ε),
and the gap itself grows by ≈ ln(ε₁/ε₂) between two scales (measured: +3.7 steps from ε = 10^−2.5 to
10^−4 with ln(10^1.5) = 3.45; relative errors ≈ 2%, 0.9%, 0.4%, 0.15%).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference  # tests/reference.py: independent NumPy/SciPy integrations

from condense_jax.gd import data, escape
from condense_jax.gd.models import mlp
from condense_jax.gd.train import TrainSpec, make_train

WIDTH = 16
LR = 0.5
STEPS = 6000  # the latest escape (ε = 1e-4) is near 4,400 steps; the rest is for condensation
SEEDS = 4
LOG_EPS = np.array([-2.5, -3.0, -3.5, -4.0])


@pytest.fixture(scope="module")
def xy():
    x, y = data.tanh_regression(100, seed=0)
    return data.with_bias(x), y  # d = 2, so the rows of W¹ have a direction to condense onto


@pytest.fixture(scope="module")
def runs(xy):
    """Seeds × scales of float64 GD on the three-layer tanh network, and the predicted escapes."""
    x, y = xy
    spec = TrainSpec(width=WIDTH, lr=LR, steps=STEPS, record_steps=(0, STEPS), dtype="float64")
    train = make_train(spec, x, y)
    grid = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    eps = 10.0**LOG_EPS
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(SEEDS)])
    res = grid(keys, jnp.asarray(eps))
    params0 = {k: np.asarray(v).reshape(SEEDS * len(eps), *np.shape(v)[2:]) for k, v in res.params0.items()}
    pred = escape.predicted_escape(params0, np.tile(eps, SEEDS), x, y, "tanh", LR)
    return eps, res, {k: np.asarray(v).reshape(SEEDS, len(eps)) for k, v in pred.items()}


def test_escape_step_scales_as_one_over_eps_and_meets_the_prediction(runs):
    eps, res, pred = runs
    measured = np.asarray(res.escape_step).astype(np.float64)
    assert np.all(measured > 0), measured
    assert np.all(pred["status"] == "blowup")
    for s in range(SEEDS):  # log-log slope per seed (measured: −0.994 … −0.996)
        slope = np.polyfit(np.log(eps), np.log(measured[s]), 1)[0]
        assert abs(slope + 1) < 0.1, (s, slope)

    predicted = pred["predicted_step"]
    rel = np.abs(measured - predicted) / predicted
    # the relative error falls with ε, like ε ln(1/ε) (module docstring), at every seed
    assert np.all(np.diff(rel, axis=1) < 0), rel
    # at ε = 1e-4 the expected gap is ≈ ln(1e4) + O(1) ≈ 10 steps of ≈ 4,000 (measured 0.13–0.16%);
    # 1% would need a gap of ≈ 40 steps, 4× the GD log term: no longer the effective model's T*
    assert np.all(rel[:, -1] < 0.01), rel
    gap = measured - predicted
    assert np.all(np.abs(gap) < 2 * np.log(1 / eps) + 2), gap
    # the gap grows with the GD (forward Euler) log term ≈ ln(ε_max/ε_min), not like 1/ε
    growth = gap[:, -1].mean() - gap[:, 0].mean()
    expected = np.log(eps[0] / eps[-1])
    assert 0.5 * expected < growth < 1.5 * expected, (growth, expected)


def test_w1_rows_condense_on_v_after_the_plateau(runs):
    _, res, _ = runs
    cos = np.asarray(res.series["cos_v_w1"])  # (seeds, scales, records): init and the last step
    ndir = np.asarray(res.series["n_dir_w1"])
    small = -1  # ε = 1e-4: the smallest scale, the clearest plateau
    assert np.all(cos[:, small, 0] < 0.85), cos[:, small, 0]  # random rows (measured 0.46–0.76)
    assert np.all(ndir[:, small, 0] >= 5), ndir[:, small, 0]  # measured 7–9 of 16 rows
    assert np.all(np.asarray(res.escape_step)[:, small] < STEPS)
    assert np.all(cos[:, small, -1] > 0.98), cos[:, small, -1]  # measured 0.993–0.996
    assert np.all(ndir[:, small, -1] <= 2), ndir[:, small, -1]


def test_rescaling_carries_sigma_prime_squared(xy):
    """−∇R_S(εθ̄) = ε² κ ∇E(θ̄) (1 + O(ε²)) on the network itself, κ = σ'(0)²‖Σ yᵢxᵢ‖/n: shifted
    sigmoid (σ'(0) = 1/4) against tanh, so a wrong power of σ'(0) would be off by 4 or 16."""
    x, y = xy
    v = data.target_direction(x, y)
    key = jax.random.PRNGKey(7)
    bar = mlp.three_layer_init(key, x.shape[1], 8, (1.0, 1.0, 1.0), jnp.float64)
    energy = lambda p: p["a"] @ p["w2"] @ (p["w1"] @ v)
    grad_e = jax.grad(energy)(bar)
    eps = 1e-3
    for name, act, slope in (("tanh", jnp.tanh, 1.0), ("sigmoid", lambda z: jax.nn.sigmoid(z) - 0.5, 0.25)):
        kappa = data.effective_rate(x, y, slope)
        loss = lambda p, act=act: mlp.mse(mlp.three_layer_apply(p, jnp.asarray(x), act), jnp.asarray(y))
        grad_r = jax.grad(loss)({k: eps * w for k, w in bar.items()})
        for k in bar:
            np.testing.assert_allclose(-np.asarray(grad_r[k]), eps**2 * kappa * np.asarray(grad_e[k]), rtol=1e-4, err_msg=name)


def test_sigmoid_prediction_is_sixteen_times_tanh(runs, xy):
    """Same starts, same T*; κ carries σ'(0)² = 1/16 for the shifted sigmoid, so 16× the steps."""
    x, y = xy
    eps, res, pred = runs
    params0 = {k: np.asarray(v).reshape(SEEDS * len(eps), *np.shape(v)[2:]) for k, v in res.params0.items()}
    sig = escape.predicted_escape(params0, np.tile(eps, SEEDS), x, y, "sigmoid", LR)  # the compiled shape
    np.testing.assert_allclose(sig["t_star"], pred["t_star"].ravel(), rtol=1e-12)
    np.testing.assert_allclose(sig["kappa"], pred["kappa"].ravel() / 16, rtol=1e-14)
    np.testing.assert_allclose(sig["predicted_step"], 16 * pred["predicted_step"].ravel(), rtol=1e-12)


def test_relu_gets_nan_and_a_warning(xy):
    x, y = xy
    params0 = mlp.three_layer_init(jax.random.PRNGKey(0), x.shape[1], 5, (1e-3,) * 3, jnp.float32)
    params0 = {k: np.stack([np.asarray(w)] * 3) for k, w in params0.items()}
    with pytest.warns(UserWarning, match="relu.*not smooth") as record:
        out = escape.predicted_escape(params0, 1e-3, x, y, "relu", 0.1)
    assert len(record) == 1
    for k in ("t_star", "predicted_step", "kappa"):
        assert out[k].shape == (3,) and np.all(np.isnan(out[k])), k
    assert list(out["status"]) == ["not_applicable"] * 3


def test_units_against_an_independent_integration(runs, xy):
    """T* from the normalised start (a/ε, W²/ε, W¹v/ε) against SciPy DOP853 on the full (a, b, c)
    system, and the step T*/(ε κ lr) with κ written out for tanh (σ'(0) = 1)."""
    x, y = xy
    eps, res, pred = runs
    seed, j = 1, 2
    p = {k: np.asarray(v, np.float64)[seed, j] for k, v in res.params0.items()}
    s = y @ x
    v = s / np.linalg.norm(s)
    start = (p["a"] / eps[j], p["w2"] / eps[j], p["w1"] @ v / eps[j])
    energy = lambda a, b, c: float(a @ b @ c)  # E (3.8)
    t_ref, tail_share = reference.blowup_time(reference.three_layer_field, energy, start, 3)
    assert tail_share < 1e-4
    np.testing.assert_allclose(pred["t_star"][seed, j], t_ref, rtol=1e-6)
    kappa = np.linalg.norm(s) / len(y)
    np.testing.assert_allclose(pred["kappa"][seed, j], kappa, rtol=1e-14)
    np.testing.assert_allclose(pred["predicted_step"][seed, j], t_ref / (eps[j] * kappa * LR), rtol=1e-6)
