"""Training as a pure function: vmapped runs equal single runs, GD equals a hand-written update,
learning-rate drops act at their step, a diverging run is frozen without touching its batch-mates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from condense_jax.errors import ConfigError
from condense_jax.gd import data
from condense_jax.gd.models import mlp
from condense_jax.gd.train import TrainSpec, batched, make_train


@pytest.fixture(scope="module")
def tanh_xy():
    x, y = data.tanh_regression(30, seed=0)
    return data.with_bias(x), y


def test_gd_matches_hand_written_updates(tanh_xy):
    x, y = tanh_xy
    spec = TrainSpec(width=5, lr=0.3, steps=4, record_steps=(0, 1, 2, 3, 4), dtype="float64")
    res = make_train(spec, x, y)(jax.random.PRNGKey(1), 0.5)
    params = res.params0
    act = jnp.tanh
    loss = lambda p: mlp.mse(mlp.three_layer_apply(p, jnp.asarray(x), act), jnp.asarray(y))
    expected = [float(loss(params))]
    for _ in range(4):
        g = jax.grad(loss)(params)
        params = {k: params[k] - 0.3 * g[k] for k in params}  # θ ← θ − η ∇R
        expected.append(float(loss(params)))
    np.testing.assert_allclose(np.asarray(res.loss), expected, rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(np.asarray(res.params[k]), np.asarray(params[k]), rtol=1e-12)
    assert int(res.status) == 0 and int(res.stop_step) == 4


def test_lr_drop_acts_at_its_step(tanh_xy):
    x, y = tanh_xy
    base = dict(width=4, steps=6, record_steps=tuple(range(7)), dtype="float64")
    drop = make_train(TrainSpec(lr=0.2, lr_drops=((3, 0.05),), **base), x, y)(jax.random.PRNGKey(2), 0.5)
    same = make_train(TrainSpec(lr=0.2, **base), x, y)(jax.random.PRNGKey(2), 0.5)
    np.testing.assert_allclose(np.asarray(drop.loss[:4]), np.asarray(same.loss[:4]), rtol=1e-14)
    assert not np.allclose(np.asarray(drop.loss[4:]), np.asarray(same.loss[4:]))


@pytest.mark.slow
@pytest.mark.parametrize("group", [None, 1, 4, 100])
def test_vmapped_sweep_equals_single_runs(tanh_xy, group):
    """The sweep's batched call (runs in groups: one at a time, 6 runs as 2 groups of 3, all side
    by side, or what fits in the cache) puts run (seed i, scale j) at [i, j], equal to that run alone."""
    x, y = tanh_xy
    spec = TrainSpec(width=6, lr=0.1, steps=50, dtype="float64")
    train = make_train(spec, x, y)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    scales = jnp.array([1e-2, 1e-1])
    grid = batched(spec, x, y, group=group)(keys, scales)
    assert grid.loss.shape == (3, 2, len(spec.recorded()))
    for i in range(3):
        for j in range(2):
            one = train(keys[i], scales[j])
            np.testing.assert_allclose(np.asarray(grid.loss[i, j]), np.asarray(one.loss), rtol=1e-12)
            np.testing.assert_allclose(np.asarray(grid.params["w2"][i, j]), np.asarray(one.params["w2"]), rtol=1e-12)


def test_diverging_run_is_frozen_and_batch_mates_finish(tanh_xy):
    """Large init scale with a large lr diverges; the small-scale run beside it is unaffected."""
    x, y = tanh_xy
    spec = TrainSpec(model="two-layer", width=8, lr=1.0, steps=200, dtype="float64", diverge_factor=1e3)
    train = make_train(spec, x, y)
    key = jax.random.PRNGKey(4)
    both = jax.vmap(train, in_axes=(None, 0))(key, jnp.array([1e-3, 3.0]))
    alone = train(key, 1e-3)
    assert list(np.asarray(both.status)) == [0, 1]
    np.testing.assert_allclose(np.asarray(both.loss[0]), np.asarray(alone.loss), rtol=1e-12)
    stop = int(both.stop_step[1])
    assert 0 <= stop < 200
    frozen = np.asarray(both.loss[1])
    assert np.all(np.isfinite(frozen))  # no NaN or inf is recorded
    recorded = TrainSpec(model="two-layer", steps=200).recorded()
    after = frozen[recorded >= stop]
    assert np.all(after == after[0])  # records after the freeze keep the frozen loss
    assert after[0] <= 1e3 * float(both.loss[1][0])  # and it is the last loss under the divergence bound


def test_converged_run_stops_at_threshold(tanh_xy):
    x, y = tanh_xy
    spec = TrainSpec(width=8, lr=0.1, steps=400, dtype="float64", loss_threshold=0.3)
    res = make_train(spec, x, y)(jax.random.PRNGKey(5), 0.5)
    assert int(res.status) == 2 and int(res.stop_step) < 400
    assert float(res.loss[-1]) <= 0.3


def test_deep_linear_completion_learns_the_target():
    """Matrix completion of diag(1, −1, 0, 0) from small init (A.3): the loss falls by orders of magnitude."""
    from condense_jax.gd.models import deep_linear

    target = np.diag([1.0, -1.0, 0.0, 0.0])
    xs, ys = deep_linear.completion_measurements(target, np.ones((4, 4), bool))
    spec = TrainSpec(model="deep-linear", width=4, lr=0.5, steps=3000, dtype="float64", record_steps=(0, 3000))
    res = make_train(spec, xs, ys)(jax.random.PRNGKey(6), 0.1)
    assert int(res.status) == 0
    assert float(res.loss[-1]) < 1e-4 * float(res.loss[0])
    w = np.asarray(deep_linear.product(res.params))
    np.testing.assert_allclose(w, target, atol=1e-2)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(model="mlp5"), "unknown model"),
        (dict(activation="gelu"), "unknown activation"),
        (dict(lr=0.0), "lr must be positive"),
        (dict(lr=float("nan")), "lr must be positive"),
        (dict(steps=0), "steps must be"),
        (dict(width=0), "width must be"),
        (dict(optimizer="lbfgs"), "unknown optimizer"),
        (dict(layer_scales=(1.0, -1.0, 1.0)), "layer_scales"),
    ],
)
def test_bad_train_specs(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainSpec(**kwargs)
