"""Models and data for gradient-descent training: gradients, the small-ε expansion (3.4), the
target direction v (3.7) and κ, and bad data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from condense_jax.engine import datafiles
from condense_jax.errors import ConfigError
from condense_jax.gd import data
from condense_jax.gd.models import activations, deep_linear, mlp
from condense_jax.ode import effective


def _finite_difference_check(loss, params, h=1e-6, n_dirs=3, seed=0):
    """Directional derivatives of `loss` at `params` against central differences (float64)."""
    grad = jax.grad(loss)(params)
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    for _ in range(n_dirs):
        d = jax.tree_util.tree_unflatten(tree, [jnp.asarray(rng.standard_normal(v.shape)) for v in leaves])
        plus = jax.tree_util.tree_map(lambda p, q: p + h * q, params, d)
        minus = jax.tree_util.tree_map(lambda p, q: p - h * q, params, d)
        fd = (loss(plus) - loss(minus)) / (2 * h)
        an = sum(jnp.vdot(g, q) for g, q in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(d)))
        assert float(fd) == pytest.approx(float(an), rel=1e-6, abs=1e-9)


@pytest.fixture(scope="module")
def tanh_data():
    x, y = data.tanh_regression(40, seed=1)
    return jnp.asarray(data.with_bias(x)), jnp.asarray(y)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "identity", "relu"])
def test_three_layer_gradients_match_finite_differences(tanh_data, act):
    x, y = tanh_data
    params = mlp.three_layer_init(jax.random.PRNGKey(0), 2, 7, (0.7, 0.5, 0.9), jnp.float64)
    fn = activations.get(act).fn
    _finite_difference_check(lambda p: mlp.mse(mlp.three_layer_apply(p, x, fn), y), params)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_two_layer_gradients_match_finite_differences(tanh_data, act):
    x, y = tanh_data
    params = mlp.two_layer_init(jax.random.PRNGKey(1), 2, 9, 0.8, 0.6, jnp.float64)
    fn = activations.get(act).fn
    _finite_difference_check(lambda p: mlp.mse(mlp.two_layer_apply(p, x, fn, alpha=3.0), y), params)


def test_deep_linear_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    target = np.diag([1.0, -1.0, 0.0, 0.0, 0.0])
    xs, ys = deep_linear.completion_measurements(target, rng.random((5, 5)) < 0.6)
    factors = deep_linear.init(jax.random.PRNGKey(2), 5, 0.5, dtype=jnp.float64)
    _finite_difference_check(lambda f: deep_linear.sensing_loss(f, xs, ys), factors)


def test_completion_measurements_read_the_observed_entries():
    target = np.arange(9.0).reshape(3, 3)
    mask = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], bool)
    xs, ys = deep_linear.completion_measurements(target, mask)
    np.testing.assert_array_equal(np.asarray(ys), target[mask])
    np.testing.assert_array_equal(np.einsum("nij,ij->n", np.asarray(xs), target), target[mask])


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_small_eps_expansion_of_the_risk(tanh_data, act):
    """(3.4): R_S(θ) − (1/2n)Σy² = −ε³ āᵀW̄²W̄¹ (σ'(0)²/n) Σ y_i x_i + O(ε⁵); the first-order
    correction vanishes like ε², and the leading term is −ε³ κ E(θ̄) with E from (3.8)."""
    x, y = tanh_data
    a = activations.get(act)
    bar = mlp.three_layer_init(jax.random.PRNGKey(3), 2, 6, (1.0, 1.0, 1.0), jnp.float64)
    v = data.target_direction(np.asarray(x), np.asarray(y))
    kappa = data.effective_rate(np.asarray(x), np.asarray(y), a.slope0)
    e_bar = mlp.effective_energy(bar, jnp.asarray(v))
    assert float(e_bar) == pytest.approx(float(effective.energy(bar["a"], bar["w2"], bar["w1"] @ v)))
    errors = []
    for eps in (1e-2, 1e-3):
        theta = jax.tree_util.tree_map(lambda p, e=eps: e * p, bar)
        f = mlp.three_layer_apply(theta, x, a.fn)
        excess = jnp.mean(0.5 * f**2 - y * f)  # = R_S(θ) − (1/2n)Σy², without the cancellation
        assert float(excess) == pytest.approx(float(mlp.mse(f, y) - 0.5 * jnp.mean(y**2)), rel=1e-4)
        errors.append(abs(float(excess) / (-(eps**3) * kappa * float(e_bar)) - 1.0))
    assert errors[0] < 1e-2 and errors[1] < errors[0] / 50  # O(ε²) relative correction


def test_target_direction_and_rate():
    x, y = data.tanh_regression(50, grid=True)
    v = data.target_direction(x, y)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    # tanh is odd and the grid symmetric: Σ y x > 0 in the single input direction
    assert v[0] == pytest.approx(1.0)
    assert data.effective_rate(x, y, 1.0) == pytest.approx(np.sum(y * x[:, 0]) / 50)
    xb = data.with_bias(x)  # the bias column is orthogonal to Σ y x for odd data
    assert data.target_direction(xb, y) == pytest.approx([1.0, 0.0], abs=1e-12)


def test_activation_qualification():
    assert activations.get("tanh").effective_ok and activations.get("sigmoid").effective_ok
    assert not activations.get("relu").effective_ok
    assert float(activations.get("sigmoid").fn(0.0)) == 0.0
    g = jax.grad(activations.get("sigmoid").fn)(0.0)
    assert float(g) == pytest.approx(activations.get("sigmoid").slope0)
    with pytest.raises(ConfigError, match="unknown activation 'gelu'"):
        activations.get("gelu")


@pytest.mark.parametrize(
    "arrays,needle",
    [
        (dict(x=np.ones((3, 2)), y=np.ones(4)), "3 samples but y has 4"),
        (dict(x=np.ones((0, 2)), y=np.ones(0)), "n = 0"),
        (dict(x=np.full((3, 2), np.nan), y=np.ones(3)), "non-finite"),
        (dict(x=np.ones((3, 2, 2)), y=np.ones(3)), "must be x (n, d)"),
        (dict(x=np.ones((3, 2))), "lacks"),
    ],
)
def test_bad_regression_data(tmp_path, arrays, needle):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        datafiles.load_xy(tmp_path / "d.npz")


def test_good_regression_data_roundtrip(tmp_path):
    x, y = data.tanh_regression(7, seed=3)
    np.savez(tmp_path / "d.npz", x=x[:, 0], y=y)
    x2, y2 = datafiles.load_xy(tmp_path / "d.npz")
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    with pytest.raises(ConfigError, match="positive integer"):
        data.tanh_regression(0)
