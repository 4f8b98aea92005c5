"""The written-out three-layer forward and backward pass (mlp.three_layer_value_and_grad) against
autodiff of the plain loss, in float64, for every activation; and inside training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from condense_jax.gd import data, train
from condense_jax.gd.models import activations, mlp


@pytest.fixture(scope="module")
def xy():
    x, y = data.tanh_regression(37, seed=3)
    return jnp.asarray(data.with_bias(x)), jnp.asarray(y)


@pytest.mark.parametrize("act", sorted(activations.ACTIVATIONS))
@pytest.mark.parametrize("scale", [1e-3, 0.7])
@pytest.mark.parametrize("shape", [(2, 9), (1, 9), (1, mlp.SHARED_BACKWARD_MAX_WIDTH + 1)], ids=["bias", "scalar-shared", "scalar-wide"])
def test_fused_equals_autodiff(xy, act, scale, shape):
    """With a bias (d = 2), and for scalar inputs (d = 1) both through the shared backward product
    (m ≤ SHARED_BACKWARD_MAX_WIDTH) and the two separate ones."""
    x, y = xy
    d, m = shape
    x = x[:, :d]
    params = mlp.three_layer_init(jax.random.PRNGKey(7), d, m, (scale, 1.3 * scale, 0.8 * scale), jnp.float64)
    if act == "relu":  # keep every pre-activation away from the kink, where σ' is a convention
        params = {k: jnp.abs(v) for k, v in params.items()}
        x = x.at[:, d - 1].set(1.0 + jnp.abs(x[:, 0]))
    fn = activations.get(act).fn
    want_loss, want = jax.value_and_grad(lambda p: mlp.mse(mlp.three_layer_apply(p, x, fn), y))(params)
    loss, grads = jax.jit(mlp.three_layer_value_and_grad, static_argnums=3)(params, x, y, act)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-14)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == params[k].dtype
        np.testing.assert_allclose(np.asarray(grads[k]), np.asarray(want[k]), rtol=1e-12, atol=1e-15 * float(jnp.max(jnp.abs(want[k]))))
    # with a direction v, the same pass also gives the Fig. 2 positive sum, equal to metrics.positive_sum
    v = jax.random.normal(jax.random.PRNGKey(8), (d,), jnp.float64)
    loss_v, grads_v, pos = jax.jit(mlp.three_layer_value_and_grad, static_argnums=3)(params, x, y, act, v)
    assert float(loss_v) == float(loss) and int(pos) == int(mlp.positive_sum(params["a"], params["w2"], params["w1"] @ v))
    for k in params:
        np.testing.assert_allclose(np.asarray(grads_v[k]), np.asarray(grads[k]), rtol=1e-12, atol=1e-15 * float(jnp.max(jnp.abs(want[k]))))


def test_relu_at_the_kink_uses_jax_convention():
    """relu'(0) = 0 in JAX; the fused pass agrees where pre-activations are exactly 0."""
    x = jnp.array([[0.0], [1.0], [-2.0]])
    y = jnp.array([0.3, -0.1, 0.5])
    params = {"a": jnp.array([0.5, -1.0]), "w2": jnp.array([[1.0, 0.0], [0.5, 2.0]]), "w1": jnp.array([[1.0], [-1.0]])}
    want_loss, want = jax.value_and_grad(lambda p: mlp.mse(mlp.three_layer_apply(p, x, jax.nn.relu), y))(params)
    loss, grads = mlp.three_layer_value_and_grad(params, x, y, "relu")
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-15)
    for k in params:
        np.testing.assert_allclose(np.asarray(grads[k]), np.asarray(want[k]), rtol=1e-15, atol=1e-17)


def test_float32_stays_float32(xy):
    x, y = (v.astype(jnp.float32) for v in xy)
    params = mlp.three_layer_init(jax.random.PRNGKey(1), 2, 6, (0.1, 0.1, 0.1), jnp.float32)
    loss, grads = mlp.three_layer_value_and_grad(params, x, y, "tanh")
    assert loss.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in grads.values())


def _reference_run(spec, x, y, key, scale):
    """make_train's documented semantics step by step in Python, with autodiff and θ ← θ − η ∇R:
    records, final θ, status, stop step, escape step and the running maximum of the positive sum."""
    model = train._model(spec, x, y)
    loss_fn, grad_fn = jax.jit(model.loss), jax.jit(jax.grad(model.loss))
    pos_fn = jax.jit(model.positive_sum) if model.positive_sum is not None else None
    params = model.init(key, scale, spec.layer_scales)
    loss0 = float(loss_fn(params))
    prev, status, stop, escape, pos = params, 0, spec.steps, -1, -1
    recorded, losses = set(spec.recorded().tolist()), []
    for i in range(spec.steps + 1):
        loss = float(loss_fn(params))
        if status == 0:
            if not np.isfinite(loss) or loss > spec.diverge_factor * loss0:
                params, status, stop = prev, 1, i - 1  # frozen at θ_{i−1}
                loss = float(loss_fn(params))
            else:
                if loss <= spec.loss_threshold:
                    status, stop = 2, i
                if escape < 0 and loss <= spec.escape_fraction * loss0:
                    escape = i
                if pos_fn is not None:
                    pos = max(pos, int(pos_fn(params)))
        if i in recorded:
            losses.append(loss)
        if i < spec.steps and status == 0:
            lr = spec.lr
            for s, v in sorted(spec.lr_drops):
                lr = v if i >= s else lr
            prev, grads = params, grad_fn(params)
            params = jax.tree_util.tree_map(lambda p, g, lr=lr: p - lr * g, params, grads)
    return np.array(losses), params, status, stop, escape, pos


@pytest.mark.parametrize(
    "kwargs,scales",
    [
        (dict(width=6, lr=0.1, steps=57), (1e-2, 0.5)),  # default records: intervals of odd and even length
        (dict(width=5, lr=0.3, steps=9, record_steps=(0, 3, 4, 9), lr_drops=((5, 0.1),)), (0.5,)),
        (dict(width=8, lr=0.1, steps=150, loss_threshold=0.3), (0.5, 1e-3)),  # converges / does not
        (dict(width=8, lr=3.0, steps=60, diverge_factor=10.0), (1.0, 2.0, 1e-2)),  # diverges
        (dict(width=7, lr=0.2, steps=40, activation="sigmoid"), (0.5,)),
        (dict(model="two-layer", width=8, lr=1.0, steps=80, diverge_factor=1e3), (1e-3, 3.0)),  # autodiff path
    ],
)
def test_engine_equals_step_by_step_reference(kwargs, scales):
    """The batched engine (two steps per iteration, written-out gradient, no optimiser state for GD)
    reproduces the plain step-by-step semantics: losses, parameters, statuses, stop/escape steps."""
    x, y = data.tanh_regression(30, seed=0)
    x = data.with_bias(x)
    spec = train.TrainSpec(dtype="float64", **kwargs)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    out = train.batched(spec, x, y)(keys, jnp.asarray(scales))
    for i, key in enumerate(keys):
        for j, scale in enumerate(scales):
            losses, params, status, stop, escape, pos = _reference_run(spec, x, y, key, scale)
            np.testing.assert_allclose(np.asarray(out.loss[i, j]), losses, rtol=1e-9)
            for k in params:
                np.testing.assert_allclose(np.asarray(out.params[k][i, j]), np.asarray(params[k]), rtol=1e-8, atol=1e-12)
            got = [int(out.status[i, j]), int(out.stop_step[i, j]), int(out.escape_step[i, j]), int(out.max_pos_sum[i, j])]
            assert got == [status, stop, escape, pos]


def test_group_size_fits_the_cache_budget(monkeypatch):
    """A group's working set (θ_i, θ_{i−1}, ∇θ and per hidden layer h, δ, σ' of every run) fits in a
    quarter of the L2 cache, and one run more would not (unless a single run is already larger)."""
    from condense_jax.engine import devices

    monkeypatch.setattr(devices, "l2_bytes", lambda: 2 << 20)
    budget = (2 << 20) // 4
    for model, layers in (("three-layer", 2), ("two-layer", 1)):
        for m in (5, 20, 50, 200, 1000):
            for dtype in ("float32", "float64"):
                spec = train.TrainSpec(model=model, width=m, dtype=dtype)
                params = m * m + 2 * m if model == "three-layer" else 2 * m  # d = 1
                per_run = np.dtype(dtype).itemsize * (3 * params + 3 * layers * m * 100)
                size = train.group_size(spec, (100, 1))
                assert size >= 1
                assert size * per_run <= budget or size == 1
                assert (size + 1) * per_run > budget
