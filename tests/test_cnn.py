"""The CNN of the CNN-condensation paper (section 3.2) and the matrix Z of its linearised dynamics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from condense_jax.gd import cnn_theory as ct
from condense_jax.gd.models import cnn


def loop_forward(params, x, act):
    """Section 3.2 written as loops: x^[1] = Σ x W + b, x^[l] = Σ σ(x^[l−1]) W + b, f = ⟨a, σ(x^[L])⟩."""
    out = []
    for img in np.asarray(x):
        h = img
        for layer, conv in enumerate(params["conv"]):
            w, b = np.asarray(conv["w"]), np.asarray(conv["b"])
            m, _, c_in, c_out = w.shape
            src = h if layer == 0 else act(h)
            nh, nw = src.shape[0] - m + 1, src.shape[1] - m + 1
            new = np.zeros((nh, nw, c_out))
            for u in range(nh):
                for v in range(nw):
                    for beta in range(c_out):
                        s = b[beta]
                        for alpha in range(c_in):
                            for p in range(m):
                                for q in range(m):
                                    s += src[u + p, v + q, alpha] * w[p, q, alpha, beta]
                        new[u, v, beta] = s
            h = new
        feat = act(h).reshape(-1)
        if "fc" in params:
            feat = act(feat @ np.asarray(params["fc"]["w"]) + np.asarray(params["fc"]["b"]))
        out.append(feat @ np.asarray(params["a"]))
    return np.array(out)


@pytest.mark.parametrize("channels,hidden,c0,d_out", [((4,), None, 1, 1), ((3, 2, 2), 5, 2, 3)])
def test_forward_equals_the_loop_formula(channels, hidden, c0, d_out):
    key = jax.random.PRNGKey(1)
    x = np.random.default_rng(0).standard_normal((3, 9, 8, c0))
    params = cnn.init(key, (9, 8, c0), channels, 3, 0.5, 0.7, hidden=hidden, d_out=d_out, dtype=jnp.float64)
    got = np.asarray(cnn.apply(params, jnp.asarray(x), jnp.tanh))
    np.testing.assert_allclose(got, loop_forward(params, x, np.tanh), rtol=1e-12, atol=1e-12)
    assert got.shape == (3, d_out)


def test_init_scales_and_too_many_layers():
    p = cnn.init(jax.random.PRNGKey(0), (28, 28, 1), (32, 32), 5, 0.1, 0.01, dtype=jnp.float64)
    assert np.std(np.asarray(p["conv"][1]["w"])) == pytest.approx(0.1, rel=0.05)
    assert np.std(np.asarray(p["a"])) == pytest.approx(0.01, rel=0.05)
    assert p["a"].shape == (20 * 20 * 32, 1)
    with pytest.raises(ValueError, match="do not fit"):
        cnn.init(jax.random.PRNGKey(0), (8, 8, 1), (4, 4, 4, 4), 3, 0.1, 0.1)


def test_z_equals_its_definition_on_a_tiny_set():
    rng = np.random.default_rng(2)
    x, y, m = rng.standard_normal((4, 5, 6, 2)), rng.standard_normal(4), 2
    z = ct.z_matrix(x, y, m)
    n, h, w, c = x.shape
    want = np.zeros(((h - m + 1) * (w - m + 1), m * m * c + 1))
    for u in range(h - m + 1):
        for v in range(w - m + 1):
            row = u * (w - m + 1) + v
            for p in range(m):
                for q in range(m):
                    for alpha in range(c):
                        want[row, (p * m + q) * c + alpha] = sum(y[i] * x[i, u + p, v + q, alpha] for i in range(n)) / n
            want[row, -1] = y.mean()
    np.testing.assert_allclose(z, want, rtol=1e-13, atol=1e-15)


def test_z_is_the_linearised_gradient_of_the_two_layer_cnn():
    """At small init (σ = tanh: σ(0) = 0, σ'(0) = 1) −∇_θ R ≈ Zᵀ a_β and −∇_a R ≈ Z θ_β (9)–(10)."""
    rng = np.random.default_rng(3)
    x, y, m = rng.standard_normal((6, 7, 7, 1)), rng.standard_normal(6), 3
    eps = 1e-5
    params = cnn.init(jax.random.PRNGKey(4), (7, 7, 1), (3,), m, eps, eps, dtype=jnp.float64)
    g = jax.grad(lambda p: cnn.mse(cnn.apply(p, jnp.asarray(x), jnp.tanh)[:, 0], jnp.asarray(y)))(params)
    z = ct.z_matrix(x, y, m)
    a = np.asarray(params["a"])[:, 0].reshape(-1, 3)  # rows (u, v), columns β
    theta = np.asarray(cnn.kernel_vectors(params))  # (β, m² + 1)
    grad_theta = np.asarray(cnn.kernel_vectors({"conv": [{"w": g["conv"][0]["w"], "b": g["conv"][0]["b"]}]}))
    np.testing.assert_allclose(-grad_theta, (z.T @ a).T, rtol=1e-4, atol=1e-4 * np.abs(z.T @ a).max())
    np.testing.assert_allclose(-np.asarray(g["a"])[:, 0].reshape(-1, 3), z @ theta.T, rtol=1e-4,
                               atol=1e-4 * np.abs(z @ theta.T).max())


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target.astype(np.float64)


def test_v1_is_nearly_the_all_ones_kernel_on_digits(digits):
    images, target = digits
    sp = ct.spectrum(ct.z_matrix(images, target, 3))  # the raw digit value as the regression target
    assert ct.cos_with_ones(sp["v1"])[0] > 0.95
    assert sp["gap"] > 0 and sp["singular_values"][0] > sp["singular_values"][1]  # Assumption 4
    np.testing.assert_allclose(sp["eigenvalues_ztz"], np.linalg.eigvalsh(
        ct.z_matrix(images, target, 3).T @ ct.z_matrix(images, target, 3))[::-1][:len(sp["eigenvalues_ztz"])], rtol=1e-9)


def test_t_eff_bound():
    lam, gamma, M = 2.0, 5.0, 1000
    assert ct.t_eff_bound(lam, gamma, M, eta0=0.05) == pytest.approx((np.log(0.25) + (1.0 - 0.05) * np.log(M)) / lam)
    assert np.isnan(ct.t_eff_bound(lam, 1.0, M))
    with pytest.raises(ValueError, match="η₀"):
        ct.t_eff_bound(lam, gamma, M, eta0=0.01)


def test_small_init_kernels_condense_toward_v1_large_init_do_not(digits):
    """Two-layer CNN (32 kernels 3×3, tanh, MSE on the digit value, GD) on 200 digits, through the
    engine (train.batched over seeds × ε): after 300 steps from ε = 1e-4 most kernels θ_β have
    |cos(θ_β, v₁)| > 0.9; from ε = 1 none do."""
    from condense_jax.gd import train

    images, target = digits
    idx = np.random.default_rng(0).choice(len(images), 200, replace=False)
    x, y = (images[idx] / 16.0)[..., None], target[idx]
    spec = train.TrainSpec(model="cnn", channels=(32,), kernel_size=3, activation="tanh", lr=0.002, steps=300,
                           record_steps=(0, 300), cos_threshold=0.9)
    res = train.batched(spec, x, y)(jax.random.split(jax.random.PRNGKey(0), 2), jnp.array([1e-4, 1.0], jnp.float32))
    share = np.asarray(res.series["share_v1"])[:, :, -1]  # (seeds, scales)
    assert (share[:, 0] > 0.5).all() and (share[:, 1] < 0.5).all()
    assert (np.asarray(res.series["share_v1"])[:, :, 0] < 0.5).all()  # random at init
    # the same share from the final parameters, by hand
    v1 = ct.spectrum(ct.z_matrix(x, y, 3))["v1"]
    theta = np.asarray(cnn.kernel_vectors(jax.tree_util.tree_map(lambda v: v[0, 0], res.params)), np.float64)
    assert ((np.abs(theta @ v1) / np.linalg.norm(theta, axis=1)) > 0.9).mean() == pytest.approx(share[0, 0])
    assert float(np.asarray(res.series["v1_share"])[0, 0, -1]) == pytest.approx(ct.v1_share(theta, v1), rel=1e-4)
    # batched equals one run alone
    one = train.make_train(spec, x, y)(jax.random.split(jax.random.PRNGKey(0), 2)[1], jnp.float32(1.0))
    np.testing.assert_allclose(np.asarray(one.loss), np.asarray(res.loss)[1, 1], rtol=1e-5)


@pytest.mark.slow
def test_three_conv_layers_cross_entropy_adam(digits):
    """Fig. 3-4 network: three conv layers, a hidden layer, softmax cross-entropy, Adam."""
    from condense_jax.gd import train

    images, target = digits
    x, y = (images[:100] / 16.0)[..., None], target[:100].astype(int)
    spec = train.TrainSpec(model="cnn", channels=(8, 8, 8), kernel_size=2, hidden=16, loss="cross_entropy",
                           optimizer="adam", activation="relu", lr=3e-3, steps=150, record_steps=(0, 150))
    res = train.make_train(spec, x, y)(jax.random.PRNGKey(0), jnp.float32(0.1))
    loss, acc = np.asarray(res.loss), np.asarray(res.series["accuracy"])
    assert loss[0] == pytest.approx(np.log(10), rel=0.01)  # uniform logits at small init
    assert loss[-1] < 0.5 * loss[0] and acc[-1] > 0.8
    assert set(res.series) >= {"rd_conv1", "rd_conv2", "rd_conv3", "share_v1", "v1_share", "amplitude"}
    # cosine matrices: conv1 over the 8 θ_β, deeper layers over all 8 × 8 kernels W_{·,·,α,β}
    shapes = {k: v.shape[1:] for k, v in res.cosines.items() if k.startswith("conv")}
    assert shapes == {"conv1": (8, 8), "conv2": (64, 64), "conv3": (64, 64)}
    kern = np.asarray(cnn.kernels(res.params, 2), np.float64)
    kern /= np.linalg.norm(kern, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(res.cosines["conv3"][-1]), kern @ kern.T, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,words", [
    (dict(model="cnn", loss="hinge"), "unknown loss"),
    (dict(model="cnn", channels=(0,)), "channels"),
    (dict(model="cnn", layer_scales=(1.0, 1.0, 1.0, 1.0)), "layer_scales"),
    (dict(model="three-layer", loss="cross_entropy"), "is for the cnn"),
])
def test_bad_cnn_specs(kwargs, words):
    from condense_jax.errors import ConfigError
    from condense_jax.gd import train

    with pytest.raises(ConfigError, match=words):
        train.TrainSpec(**kwargs)


@pytest.mark.slow
def test_cnn_through_the_cli(tmp_path, capsys):
    import pandas as pd

    from condense_jax.cli import main

    out = tmp_path / "cnn"
    assert main(["train", "--model", "cnn", "--widths", "8", "--init-scales", "1e-4", "1.0", "--lr", "0.002",
                 "--steps", "200", "--seeds", "2", "--n", "100", "--no-predict", "--quiet", "--no-figure",
                 "--cos-threshold", "0.9", "--out", str(out)]) == 0
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 4 and set(runs["model"]) == {"cnn"}
    small, large = runs[runs["scale"] == 1e-4], runs[runs["scale"] == 1.0]
    assert (small["share_v1"] > 0.5).all() and (large["share_v1"] < 0.5).all()
    cos = pd.read_parquet(out / "cosines")
    assert set(cos["layer"]) == {"conv1", "kernels_conv1"}
    assert np.stack(cos.loc[cos["layer"] == "conv1", "cos"].iloc[0]).shape == (8, 8)  # a list of rows
    # figures: ZᵀZ spectrum (its points are the squared singular values) and per-kernel amplitude / cos
    from condense_jax.gd import plots as train_plots

    paths = [p.name for p in train_plots.figures_from_dir(out)]
    assert "z_spectrum.png" in paths and any(p.startswith("kernels_run") for p in paths)
    rid = int(cos.loc[cos["layer"] == "kernels_conv1", "run_id"].iloc[0])
    fig = train_plots.kernel_figure(cos, rid)
    per = np.stack(cos[(cos["run_id"] == rid) & (cos["layer"] == "kernels_conv1") & (cos["step"] == cos["step"].max())]["cos"].iloc[0]).reshape(-1, 2)
    cos_line = [ln for ln in fig.axes[1].lines if ln.get_gid() == "cos_v1"][0]
    np.testing.assert_allclose(np.sort(cos_line.get_ydata()), np.sort(per[:, 0]), rtol=1e-6)
    with pytest.raises(Exception, match="no per-kernel records"):
        train_plots.kernel_figure(cos, 999)
    rng = np.random.default_rng(5)
    xs, ys = rng.standard_normal((5, 6, 6, 1)), rng.standard_normal(5)
    line = [ln for ln in train_plots.z_spectrum_figure(xs, ys, 2).axes[0].lines if ln.get_gid() == "eigenvalues"][0]
    np.testing.assert_allclose(line.get_ydata(), np.linalg.svd(ct.z_matrix(xs, ys, 2), compute_uv=False) ** 2, rtol=1e-10)
    for args, words in ((["--model", "cnn", "--data", "tanh"], "not an image set"),
                        (["--model", "three-layer", "--data", "digits"], "image set"),
                        (["--model", "cnn", "--n", "5000"], "n = 5000"),
                        (["--model", "three-layer", "--loss", "cross_entropy"], "cnn settings")):
        capsys.readouterr()
        assert main(["train", "--widths", "4", "--steps", "2", "--quiet", "--out", str(tmp_path / "bad"), *args]) == 2
        assert words in capsys.readouterr().err


@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid", "identity"])
def test_written_out_two_layer_gradient_equals_autodiff(act):
    from condense_jax.gd.models import activations

    rng = np.random.default_rng(6)
    x, y = jnp.asarray(rng.standard_normal((5, 7, 6, 2))), jnp.asarray(rng.standard_normal(5))
    params = cnn.init(jax.random.PRNGKey(2), (7, 6, 2), (4,), 3, 0.4, 0.6, dtype=jnp.float64)
    fn = activations.get(act).fn
    want_loss, want = jax.value_and_grad(lambda p: cnn.mse(cnn.apply(p, x, fn)[:, 0], y))(params)
    windows = cnn.patches(x, 3)
    loss, got = cnn.two_layer_value_and_grad(params, windows.reshape(5, -1, windows.shape[-1]), y, act)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-12)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)


def test_papers_experimental_init():
    """Section 5.1: conv layer l at std ((c_in + c_out)/2 · m²)^(−γ), the output layer at ε·s₂."""
    from condense_jax.errors import ConfigError
    from condense_jax.gd import train
    from condense_jax.gd.spec import TrainSweep

    rng = np.random.default_rng(0)
    x, y = rng.random((10, 12, 12, 3)), rng.random(10)
    spec = train.TrainSpec(model="cnn", channels=(64, 64), kernel_size=3, conv_fan_gamma=0.5, steps=1,
                           record_steps=(0, 1), dtype="float64")
    p0 = train.make_train(spec, x, y)(jax.random.PRNGKey(0), 1e-4).params0
    for layer, (c_in, c_out) in enumerate([(3, 64), (64, 64)]):
        want = ((c_in + c_out) / 2 * 9) ** -0.5
        assert np.std(np.asarray(p0["conv"][layer]["w"])) == pytest.approx(want, rel=0.05)
    assert np.std(np.asarray(p0["a"])) == pytest.approx(1e-4, rel=0.05)
    with pytest.raises(ConfigError, match="cnn settings"):
        TrainSweep(model="three-layer", conv_fan_gamma=1.0)
