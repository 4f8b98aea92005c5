"""Data sets (separable classes, Fig. 3's matrix completion, checked (x, y)) and the init-scale
parametrisations ε = m^(−γ) and the two-layer phase-diagram coordinates (γ, γ')."""

import numpy as np
import pytest
from scipy.optimize import minimize

from condense_jax.engine import datafiles
from condense_jax.errors import ConfigError
from condense_jax.gd import data, scales


def _one_line_error(fn, *args, match, **kw):
    with pytest.raises(ConfigError, match=match) as e:
        fn(*args, **kw)
    assert len(str(e.value).splitlines()) == 1


# ---------------------------------------------------------------------------
# separable classes


def _max_margin_witness(x, y):
    """Hard-margin SVM through the origin: min ½‖w‖² s.t. y_i w·x_i ≥ 1 (SLSQP), an independent
    witness w; returns its geometric margin min_i y_i w·x_i / ‖w‖."""
    cons = {"type": "ineq", "fun": lambda w: y * (x @ w) - 1.0, "jac": lambda w: y[:, None] * x}
    w0 = np.linalg.lstsq(x, y, rcond=None)[0]
    w0 /= max(np.min(y * (x @ w0)), 1e-3)
    res = minimize(lambda w: 0.5 * w @ w, w0, jac=lambda w: w, constraints=[cons], method="SLSQP",
                   options={"maxiter": 500, "ftol": 1e-14})
    w = res.x
    return np.min(y * (x @ w)) / np.linalg.norm(w)


@pytest.mark.parametrize("n,d,margin,seed", [(200, 2, 0.1, 0), (50, 5, 0.3, 1), (30, 1, 0.5, 2), (100, 3, 0.0, 3)])
def test_separable_classes_are_separable_with_margin(n, d, margin, seed):
    x, y = data.separable_classes(n, d, margin, seed)
    assert x.shape == (n, d) and y.shape == (n,) and x.dtype == y.dtype == np.float64
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.all(np.isfinite(x))
    if margin > 0:
        assert _max_margin_witness(x, y) >= margin * (1 - 1e-6)
    else:  # margin 0: still separable (weakly) through the origin
        assert _max_margin_witness(x, y) >= -1e-9


def test_separable_classes_seeded_and_both_classes_for_tiny_n():
    x1, y1 = data.separable_classes(40, 3, 0.2, seed=5)
    x2, y2 = data.separable_classes(40, 3, 0.2, seed=5)
    x3, _ = data.separable_classes(40, 3, 0.2, seed=6)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    for seed in range(40):  # n = 2 falls on one side by chance in about half the seeds
        x, y = data.separable_classes(2, 2, 0.1, seed)
        assert sorted(y) == [-1.0, 1.0]
        assert _max_margin_witness(x, y) >= 0.1 * (1 - 1e-6)


@pytest.mark.parametrize(
    "kw,needle",
    [(dict(n=1), "n must be"), (dict(n=2.5), "n must be"), (dict(n=True), "n must be"), (dict(d=0), "d must be"),
     (dict(margin=-0.1), "margin"), (dict(margin=float("nan")), "margin"), (dict(margin="big"), "margin"),
     (dict(seed=-1), "seed")],
)
def test_separable_classes_rejects(kw, needle):
    _one_line_error(data.separable_classes, match=needle, **kw)


# ---------------------------------------------------------------------------
# check_xy and load_xy


def test_check_xy_accepts_and_converts():
    x, y = datafiles.check_xy(np.arange(4), np.array([1, -1, 1, -1]))
    assert x.shape == (4, 1) and x.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2, 3])


@pytest.mark.parametrize(
    "x,y,needle",
    [
        (np.ones((3, 2)), np.ones(4), "x has 3 samples but y has 4"),
        (np.ones((0, 2)), np.ones(0), "n = 0"),
        (np.full((3, 2), np.nan), np.ones(3), "non-finite"),
        (np.ones((3, 2)), np.array([1.0, np.inf, 0.0]), "array y has non-numeric or non-finite"),
        (np.ones((3, 2, 2)), np.ones(3), r"must be x \(n, d\)"),
        (np.ones((3, 2)), np.ones((3, 1)), r"must be x \(n, d\)"),
        (np.array([["a", "b"]]), np.ones(1), "non-numeric"),
        (np.ones((2, 2)) * 1j, np.ones(2), "non-numeric"),
    ],
)
def test_check_xy_rejects(x, y, needle):
    _one_line_error(datafiles.check_xy, x, y, "my data", match=needle)
    with pytest.raises(ConfigError, match="^my data"):
        datafiles.check_xy(x, y, "my data")


def test_load_xy_uses_the_same_checks(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((5, 2)), y=np.ones(4))
    _one_line_error(datafiles.load_xy, path, match=r"data file '.*d\.npz' x has 5 samples but y has 4")
    np.savez(path, x=np.ones((0, 2)), y=np.ones(0))
    _one_line_error(datafiles.load_xy, path, match=r"data file '.*d\.npz' has n = 0 samples")
    x, y = data.separable_classes(9, 2, 0.1, seed=1)
    np.savez(path, x=x, y=y)
    x2, y2 = datafiles.load_xy(path)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


# ---------------------------------------------------------------------------
# Fig. 3 matrix completion


def test_fig3_target_and_full_mask():
    t = data.fig3_target(5)
    np.testing.assert_array_equal(t, np.diag([1.0, -1.0, 0.0, 0.0, 0.0]))
    mask, target = data.fig3_completion(5)
    np.testing.assert_array_equal(mask, np.ones((5, 5)))
    np.testing.assert_array_equal(target, t)
    xs, ys = data.fig3_sensing(3)
    assert xs.shape == (9, 3, 3) and ys.shape == (9,)
    np.testing.assert_array_equal(xs.sum(0), np.ones((3, 3)))  # every entry observed once
    np.testing.assert_array_equal(np.einsum("n,nij->ij", ys, xs), data.fig3_target(3))  # Σ y_i X_i = W*


def test_fig3_random_mask():
    m, frac = 10, 0.3
    mask, _ = data.fig3_completion(m, seed=2, kind="random", fraction=frac)
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert mask.sum() == round(frac * m * m)
    assert mask[0, 0] == mask[1, 1] == 1.0
    again, _ = data.fig3_completion(m, seed=2, kind="random", fraction=frac)
    other, _ = data.fig3_completion(m, seed=3, kind="random", fraction=frac)
    np.testing.assert_array_equal(mask, again)
    assert not np.array_equal(mask, other)
    full, _ = data.fig3_completion(m, kind="random", fraction=1.0)
    np.testing.assert_array_equal(full, np.ones((m, m)))


@pytest.mark.parametrize(
    "kw,needle",
    [(dict(m=1), "m must be"), (dict(kind="diag"), "kind"), (dict(kind="random", fraction=0.0), "fraction"),
     (dict(kind="random", fraction=1.5), "fraction"), (dict(kind="random", seed=-2), "seed")],
)
def test_fig3_rejects(kw, needle):
    _one_line_error(data.fig3_completion, match=needle, **kw)


def test_fig3_sensing_refuses_the_paper_size():
    """Full observation at m = 100 would be m⁴ = 10⁸ floats: refused before allocating."""
    _one_line_error(data.fig3_sensing, 100, match="fig3_completion")


def test_load_sensing(tmp_path):
    path = tmp_path / "s.npz"
    xs, ys = data.fig3_sensing(3)
    np.savez(path, x=xs, y=ys)
    xs2, ys2 = data.load_sensing(path)
    np.testing.assert_array_equal(xs2, xs)
    np.testing.assert_array_equal(ys2, ys)
    for arrays, needle in [
        (dict(x=np.ones((2, 3, 4)), y=np.ones(2)), r"x \(n, m, m\)"),
        (dict(x=np.ones((2, 3, 3)), y=np.ones(3)), "2 measurements but y has 3"),
        (dict(x=np.ones((0, 3, 3)), y=np.ones(0)), "no measurements"),
        (dict(x=np.full((2, 3, 3), np.nan), y=np.ones(2)), "non-finite"),
        (dict(x=np.ones((2, 3, 3))), "lacks"),
    ]:
        np.savez(path, **arrays)
        _one_line_error(data.load_sensing, path, match=needle)


# ---------------------------------------------------------------------------
# init scales


def test_eps_from_exponent_hand_checked():
    assert scales.eps_from_exponent(100, 2) == pytest.approx(1e-4, rel=1e-15)
    assert scales.eps_from_exponent(200, 2) ** 2 == pytest.approx(1 / 200**4, rel=1e-14)  # Fig. 2a: N(0, 1/200⁴)
    assert scales.eps_from_exponent(100, 3) ** 2 == pytest.approx(1 / 100**6, rel=1e-14)  # Fig. 3: N(0, 1/100⁶)
    assert scales.eps_from_exponent(16, -0.5) == pytest.approx(4.0, rel=1e-15)
    assert scales.exponent_from_eps(100, 1e-3) == pytest.approx(1.5, rel=1e-14)


def test_eps_round_trip_arrays():
    rng = np.random.default_rng(0)
    widths = rng.integers(2, 500, 20)
    gammas = rng.uniform(-1, 3, 20)
    eps = scales.eps_from_exponent(widths, gammas)
    np.testing.assert_allclose(scales.exponent_from_eps(widths, eps), gammas, rtol=1e-12, atol=1e-12)
    assert isinstance(scales.eps_from_exponent(10, 1), float)


def test_two_layer_coordinates_hand_checked():
    # m = 4, α = 2, β₁ (input) = 2, β₂ (output) = 1/4: β₁β₂/α = 1/4 = 4^(−1), β₂/β₁ = 1/8 = 4^(−3/2)
    g, gp = scales.two_layer_coordinates(2.0, 0.25, 2.0, 4)
    assert (g, gp) == pytest.approx((1.0, 1.5), rel=1e-14)
    # NTK scaling α = √m, β₁ = β₂ = 1: γ = 1/2; mean-field α = m: γ = 1 (Luo et al. 2021); γ' = 0
    m = 1000
    assert scales.two_layer_coordinates(1.0, 1.0, np.sqrt(m), m) == pytest.approx((0.5, 0.0), abs=1e-14)
    assert scales.two_layer_coordinates(1.0, 1.0, m, m) == pytest.approx((1.0, 0.0), abs=1e-14)
    b1, b2 = scales.two_layer_scales(1.0, 1.5, 4, alpha=2.0)
    assert (b1, b2) == pytest.approx((2.0, 0.25), rel=1e-14)


def test_two_layer_round_trips():
    rng = np.random.default_rng(1)
    m = rng.integers(2, 1000, 30).astype(float)
    g, gp, alpha = rng.uniform(-1, 3, 30), rng.uniform(-2, 2, 30), rng.uniform(0.1, 10, 30)
    b1, b2 = scales.two_layer_scales(g, gp, m, alpha)
    np.testing.assert_allclose(b1 * b2 / alpha, m ** -g, rtol=1e-12)  # the defining relations
    np.testing.assert_allclose(b2 / b1, m ** -gp, rtol=1e-12)
    g2, gp2 = scales.two_layer_coordinates(b1, b2, alpha, m)
    np.testing.assert_allclose(g2, g, atol=1e-12)
    np.testing.assert_allclose(gp2, gp, atol=1e-12)
    beta1, beta2 = rng.uniform(1e-4, 3, 30), rng.uniform(1e-4, 3, 30)
    c = scales.two_layer_coordinates(beta1, beta2, alpha, m)
    np.testing.assert_allclose(scales.two_layer_scales(*c, m, alpha), (beta1, beta2), rtol=1e-12)


@pytest.mark.parametrize(
    "fn,args,needle",
    [
        (scales.two_layer_coordinates, (1.0, 1.0, 1.0, 1), "width m must be at least 2"),
        (scales.two_layer_coordinates, (0.0, 1.0, 1.0, 10), "beta1 must be positive"),
        (scales.two_layer_coordinates, (1.0, -1.0, 1.0, 10), "beta2 must be positive"),
        (scales.two_layer_coordinates, (1.0, 1.0, 0.0, 10), "alpha must be positive"),
        (scales.two_layer_coordinates, (1.0, 1.0, 1.0, np.array([10, 1])), "width m"),
        (scales.two_layer_scales, (float("nan"), 0.0, 10), "gamma must be finite"),
        (scales.two_layer_scales, (1.0, "x", 10), "gamma_prime must be a real number"),
        (scales.two_layer_scales, (1.0, 0.0, 1.5), "width m must be at least 2"),
        (scales.eps_from_exponent, (0, 1.0), "width m must be at least 1"),
        (scales.exponent_from_eps, (1, 0.1), "width m must be at least 2"),
        (scales.exponent_from_eps, (10, 0.0), "eps must be positive"),
    ],
)
def test_scales_reject(fn, args, needle):
    _one_line_error(fn, *args, match=needle)
