"""Blow-up solves (blowup.py) checked against the mathematics and against independent SciPy integrations.

What fixes the expected values:
* Proposition 1 (D1 = aaᵀ − bbᵀ, D2 = bᵀb − ccᵀ conserved) and the full system (3.10) integrated by SciPy;
* the balanced rank-one solution E(t) = (E0^{−1/3} − t)^{−3}, T* = E0^{−1/3} = 1/s exactly;
* Example 1, whose exact solution is a1 = b11 = −c1 = 1/(1 + t), E(t) = −(1 + t)^{−3} → 0⁻ (no blow-up);
* Theorem 1 (T* ≤ t + E(t)^{−1/3} wherever E(t) > 0), time rescaling θ(t) → εθ(εt) (T* → T*/ε);
* depth 2 is linear: a ± c grow/decay like e^{±t}, E(t) = (‖a0+c0‖² e^{2t} − ‖a0−c0‖² e^{−2t})/4.

JIT compilation costs seconds per new (batch, width, options) shape, so solves are shared through
module-scoped fixtures and the shapes are kept few.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference  # tests/reference.py: independent NumPy/SciPy integrations

from condense_jax.ode import blowup, effective, theory
from condense_jax.ode.blowup import SolverOptions

DEFAULT = SolverOptions(series_dtau=0.5)  # default tolerances; records twice as dense as the default grid
TIGHT = SolverOptions(rtol=1e-11, atol=1e-11, series_dtau=0.5)


def _rel(x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return np.abs(x - y) / np.abs(y)


def _theta_norm2(series):
    return series["norm_a2"] + series["norm_b2"] + series["norm_c2"]


def _random_starts(m, n_pos=4, n_neg=4, seed=0):
    """N(0, 1) starts: sample until there are n_pos with E0 > 0 and n_neg with E0 ≤ 0 (positives first)."""
    rng = np.random.default_rng(seed + 1000 * m)
    pos, neg = [], []
    while len(pos) < n_pos or len(neg) < n_neg:
        a, b, c = rng.standard_normal(m), rng.standard_normal((m, m)), rng.standard_normal(m)
        (pos if a @ b @ c > 0 else neg).append((a, b, c))
    starts = pos[:n_pos] + neg[:n_neg]
    return tuple(np.stack(v) for v in zip(*starts))


# ---------------------------------------------------------------------------
# Shared solves


@pytest.fixture(scope="module")
def random5():
    a, b, c = _random_starts(5)
    return dict(
        starts=(a, b, c),
        reduced=blowup.solve_three_layer(a, b, c, DEFAULT),
        reduced_tight=blowup.solve_three_layer(a, b, c, TIGHT),
        full_tight=blowup.solve_deep((a, b, c), TIGHT),
    )


@pytest.fixture(scope="module")
def random20():
    a, b, c = _random_starts(20)
    return dict(
        starts=(a, b, c),
        reduced_tight=blowup.solve_three_layer(a, b, c, TIGHT),
        full_tight=blowup.solve_deep((a, b, c), TIGHT),
    )


@pytest.fixture(scope="module", params=["random5", "random20"])
def random_tight(request):
    return request.getfixturevalue(request.param)


S_VALUES = np.array([1e-3, 1.0, 10.0])


@pytest.fixture(scope="module", params=[3, 10, 30])
def balanced(request):
    m = request.param
    rng = np.random.default_rng(m)
    u, w = rng.standard_normal(m), rng.standard_normal(m)
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    starts = [blowup.balanced_rank_one(s, u, w) for s in S_VALUES]
    a, b, c = (np.stack(v) for v in zip(*starts))
    return blowup.solve_three_layer(a, b, c)  # default options


# ---------------------------------------------------------------------------
# 1. Conservation laws (Proposition 1) and the recorded series


def test_scipy_full_trajectory_conserves_d1_d2():
    """Independent check of Proposition 1 on the full system (3.10), up to ‖θ‖ = 10‖θ0‖."""
    a, b, c = (v[0] for v in _random_starts(5, 1, 0, seed=3))
    r0 = np.sqrt(a @ a + np.sum(b * b) + c @ c)
    sol, shapes = reference.integrate(reference.three_layer_field, (a, b, c), stop_norm=10 * r0, t_end=100.0)
    assert sol.status == 1 and sol.y.shape[1] > 20
    d1_0, d2_0 = (np.asarray(v) for v in effective.conserved(a, b, c))
    for y in sol.y.T:
        ai, bi, ci = reference._unpack(y, shapes)
        d1 = np.outer(ai, ai) - bi @ bi.T
        d2 = bi.T @ bi - np.outer(ci, ci)
        assert np.max(np.abs(d1 - d1_0)) < 1e-8 * r0**2
        assert np.max(np.abs(d2 - d2_0)) < 1e-8 * r0**2


@pytest.mark.parametrize(
    "which, max_growth2, tol",
    [("reduced", 1e2, 1e-7), ("reduced_tight", 1e3, 1e-8)],  # default rtol 1e-9; TIGHT rtol 1e-11
)
def test_recorded_series_match_scipy_full_integration(random5, which, max_growth2, tol):
    """E, ‖a‖², ‖b‖²_F, ‖c‖² recorded by the reduced solver at its own times t agree with the full system
    (3.10) integrated by SciPy at those t, while ‖θ(t)‖² ≤ max_growth2·‖θ0‖². Closer to T* a comparison at
    equal t is ill-conditioned: E'/E ~ 3/(T* − t) ~ ‖θ‖ turns an error δt in the recorded time into a
    relative error ~ ‖θ‖δt (observed: the mismatch grows ∝ ‖θ‖ along the record, for both tolerances)."""
    a, b, c = random5["starts"]
    res = random5[which]
    s = res.series
    for i in range(len(a)):
        r02 = _theta_norm2(s)[i, 0]
        keep = _theta_norm2(s)[i] <= max_growth2 * r02
        assert keep.sum() >= 10
        t = s["t"][i, keep]
        sol, shapes = reference.integrate(reference.three_layer_field, (a[i], b[i], c[i]), t_eval=t)
        assert sol.status == 0
        ref = [reference._unpack(y, shapes) for y in sol.y.T]
        e_ref = np.array([ai @ bi @ ci for ai, bi, ci in ref])
        na_ref = np.array([ai @ ai for ai, _, _ in ref])
        nc_ref = np.array([ci @ ci for _, _, ci in ref])
        # E can pass through 0 (E0 ≤ 0 starts): measure its error against the scale ‖θ‖³
        e_scale = _theta_norm2(s)[i, keep] ** 1.5
        assert np.max(np.abs(s["energy"][i, keep] - e_ref) / e_scale) < tol
        assert np.max(_rel(s["norm_a2"][i, keep], na_ref)) < tol
        assert np.max(_rel(s["norm_c2"][i, keep], nc_ref)) < tol
        # ‖b‖²_F recorded from ‖a‖² − tr D1 agrees too
        nb_ref = np.array([np.sum(bi * bi) for _, bi, _ in ref])
        assert np.max(_rel(s["norm_b2"][i, keep], nb_ref)) < tol


def test_full_solver_conserves_layer_norm_differences(random5):
    """solve_deep evolves b itself: tr D1 = ‖a‖² − ‖b‖²_F and tr D2 = ‖b‖²_F − ‖c‖² must stay constant.
    A projective solver carries relative (to ‖θ(t)‖²) errors, so: to 1e-8·‖θ0‖² while ‖θ‖² ≤ 100‖θ0‖², and
    to 1e-8·‖θ(t)‖² all the way (at ‖θ‖ ~ 1e4‖θ0‖, rounding alone is ~1e-16·‖θ‖² ≈ 1e-8·‖θ0‖²)."""
    s = random5["full_tight"].series
    n2 = _theta_norm2(s)
    r02 = n2[:, :1]
    for tr in (s["norm_a2"] - s["norm_b2"], s["norm_b2"] - s["norm_c2"]):
        drift = np.abs(tr - tr[:, :1])
        early = n2 <= 100 * r02
        assert early.sum(1).min() >= 5
        assert np.max(np.where(early, drift / r02, 0.0)) < 1e-8
        assert np.max(drift / n2) < 1e-8
    # and the values are the conserved traces of the start
    a, b, c = random5["starts"]
    d1, d2 = zip(*(effective.conserved(*x) for x in zip(a, b, c)))
    np.testing.assert_allclose(s["norm_a2"][:, 0] - s["norm_b2"][:, 0], [np.trace(d) for d in d1], rtol=1e-12, atol=1e-12 * r02.max())
    np.testing.assert_allclose(s["norm_b2"][:, 0] - s["norm_c2"][:, 0], [np.trace(d) for d in d2], rtol=1e-12, atol=1e-12 * r02.max())


# ---------------------------------------------------------------------------
# 2 & 10. Balanced rank-one starts: T* = E0^{−1/3} = 1/s exactly


def test_balanced_rank_one_blowup_time(balanced):
    runs = balanced.runs
    assert list(runs["status"]) == ["blowup"] * len(S_VALUES)
    np.testing.assert_allclose(runs["E0"], S_VALUES**3, rtol=1e-13)
    np.testing.assert_allclose(runs["t_star_thm1_bound"], 1.0 / S_VALUES, rtol=1e-13)
    assert np.max(_rel(runs["t_star"], 1.0 / S_VALUES)) < 1e-8
    # ‖a(0)‖ = ‖c(0)‖ = s: balanced starts violate (3.12), yet blow up (E0 > 0, Theorem 1 from t = 0)
    assert not np.any(runs["assumption1"])


@pytest.mark.parametrize(
    "balanced",
    [3, 10, 30],
    indirect=True,
)
def test_balanced_running_bracket_is_exact(balanced):
    """On the balanced solution E(t) = (1/s − t)^{−3}, the bracket end t + E(t)^{−1/3} is T* = 1/s at every
    record (default options, 1e-8 as for T* itself)."""
    s = balanced.series
    t_star = (1.0 / S_VALUES)[:, None]
    assert np.all(s["energy"] > 0)
    assert np.max(_rel(s["tstar_upper"], np.broadcast_to(t_star, s["t"].shape))) < 1e-8


def test_balanced_theorem2_estimate_and_the_norm_lower_bound_is_exact(balanced):
    """cos ζ = 1 on the balanced solution (ȧ = s² u ∥ a), so C = 4/3 and the Theorem 2 estimate is
    t + (3/4)E^{−1/3} = t + (3/4)(upper − t) wherever the final stage is recorded as holding; and it holds
    from t = 0 (every sign condition of Assumption 2 is a product of squares). The proved lower bound
    t + √3/‖θ(t)‖ is an equality there (‖a‖ = ‖b‖_F = ‖c‖ = s(t), T* − t = 1/s(t)): it equals T* at
    every record."""
    s = balanced.series
    np.testing.assert_allclose(s["cos_zeta"], 1.0, rtol=1e-12)
    assert np.all(s["final_stage"])
    np.testing.assert_allclose(s["tstar_thm2_estimate"], s["t"] + 0.75 * (s["tstar_upper"] - s["t"]), rtol=1e-14)
    t_star = (1.0 / S_VALUES)[:, None]
    assert np.max(_rel(s["tstar_lower"], np.broadcast_to(t_star, s["t"].shape))) < 1e-8
    np.testing.assert_allclose(balanced.runs["t_final_stage"], 0.0, atol=0)


# ---------------------------------------------------------------------------
# 3. Example 1: E → 0⁻, no blow-up


def _example1_batch():
    a, b, c = blowup.example1()
    return a[None], b[None], c[None]


@pytest.mark.parametrize("solver", ["reduced", "full"])
def test_example1_does_not_blow_up(solver):
    a, b, c = _example1_batch()
    assert not blowup.assumption1(a, b, c)[0]
    res = blowup.solve_three_layer(a, b, c) if solver == "reduced" else blowup.solve_deep((a, b, c))
    assert res.runs["status"][0] == "no_blowup"
    assert res.runs["t_star"][0] == np.inf
    assert res.runs["E0"][0] == pytest.approx(-1.0, rel=1e-15)
    # the recorded trajectory is the exact one, E(t) = −(1 + t)^{−3}, as far as it is recorded
    t, e = res.series["t"][0], res.series["energy"][0]
    keep = np.isfinite(t) & np.isfinite(e) & (t < 1e3)
    assert keep.sum() >= 5 and t[keep].max() > 1.0
    np.testing.assert_allclose(e[keep], -(1.0 + t[keep]) ** -3.0, rtol=1e-6)


# ---------------------------------------------------------------------------
# 4. Theorem 1 on random starts, both signs of E0


def test_random_starts_blow_up_within_theorem1_bound(random5):
    runs = random5["reduced"].runs
    e0 = runs["E0"]
    assert (e0 > 0).sum() == 4 and (e0 <= 0).sum() == 4
    assert np.all(runs["assumption1"])
    assert list(runs["status"]) == ["blowup"] * len(e0)
    assert np.all(np.isfinite(runs["t_star"]) & (runs["t_star"] > 0))
    pos = e0 > 0
    np.testing.assert_allclose(runs["t_star_thm1_bound"][pos], e0[pos] ** (-1.0 / 3.0), rtol=1e-14)
    assert np.all(runs["t_star"][pos] <= runs["t_star_thm1_bound"][pos])
    assert np.all(np.isnan(runs["t_star_thm1_bound"][~pos]))  # Theorem 1 gives no bound from t = 0
    # every recorded time precedes T*, and the energy never decreases (3.14)
    s = random5["reduced"].series
    assert np.all(s["t"] < runs["t_star"][:, None])
    assert np.all(np.diff(s["energy"], axis=1) >= 0)


def test_negative_energy_starts_cross_zero_and_obey_theorem1_from_then_on(random5):
    res = random5["reduced"]
    s, t_star = res.series, res.runs["t_star"]
    for i in np.flatnonzero(res.runs["E0"] <= 0):
        assert s["energy"][i, -1] > 0
        pos = s["energy"][i] > 0
        # T* is computed to ~1e-8 (default options); t + E^{−1/3} → T* from above, so allow that much
        assert np.all(t_star[i] <= s["tstar_upper"][i, pos] * (1 + 1e-8))


# ---------------------------------------------------------------------------
# 5. Depth 2 (linear, no blow-up) and depth 4


@pytest.fixture(scope="module")
def depth2():
    rng = np.random.default_rng(2)
    a, c = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    return (a, c), blowup.solve_deep((a, c))


def test_depth2_never_blows_up(depth2):
    (a, c), res = depth2
    assert list(res.runs["status"]) == ["no_blowup"] * 3
    assert np.all(res.runs["t_star"] == np.inf)
    # exact linear solution: E(t) = (‖a0 + c0‖² e^{2t} − ‖a0 − c0‖² e^{−2t}) / 4
    t, e = res.series["t"], res.series["energy"]
    p2, q2 = np.sum((a + c) ** 2, 1)[:, None], np.sum((a - c) ** 2, 1)[:, None]
    exact = (p2 * np.exp(2 * t) - q2 * np.exp(-2 * t)) / 4
    assert np.max(np.abs(e - exact) / ((p2 * np.exp(2 * t) + q2 * np.exp(-2 * t)) / 4)) < 1e-7


@pytest.fixture(scope="module")
def depth4():
    rng = np.random.default_rng(4)
    m, n = 5, 3
    params = [rng.standard_normal((n, m)), rng.standard_normal((n, m, m)), rng.standard_normal((n, m, m)), rng.standard_normal((n, m))]
    return params, blowup.solve_deep(params)


def test_depth4_blows_up_and_matches_scipy(depth4):
    params, res = depth4
    assert list(res.runs["status"]) == ["blowup"] * 3
    t_star = res.runs["t_star"]
    assert np.all(np.isfinite(t_star) & (t_star > 0))
    for i in range(3):
        p = [v[i] for v in params]
        ref, tail_share = reference.blowup_time(
            lambda *q: reference.deep_field(q), lambda *q: reference.deep_energy(q), p, depth=4, growth=1e4
        )
        assert tail_share < 1e-6
        assert abs(t_star[i] - ref) / ref < 1e-6


# ---------------------------------------------------------------------------
# 6. Batched = one start at a time; scale invariance


def test_batched_solve_equals_solo_solves(random5):
    a, b, c = random5["starts"]
    runs = random5["reduced"].runs
    for i in range(len(a)):
        solo = blowup.solve_three_layer(a[i], b[i], c[i], DEFAULT).runs  # unbatched arrays
        assert solo["status"][0] == runs["status"][i]
        for key in ("t_star", "E0", "t_final_stage"):
            assert abs(solo[key][0] - runs[key][i]) <= 1e-9 * abs(runs[key][i]), key


def test_time_rescaling_of_the_start(random5):
    """θ(t) solves (3.10) iff εθ(εt) does: a start scaled by ε has T*/ε."""
    a, b, c = random5["starts"]
    eps = 1e-3
    scaled = blowup.solve_three_layer(eps * a, eps * b, eps * c, DEFAULT).runs
    runs = random5["reduced"].runs
    assert list(scaled["status"]) == list(runs["status"])
    assert np.max(_rel(scaled["t_star"] * eps, runs["t_star"])) < 1e-9
    np.testing.assert_allclose(scaled["E0"], eps**3 * runs["E0"], rtol=1e-13)


# ---------------------------------------------------------------------------
# 7 & 8. Reduced form = full form = SciPy


def test_reduced_and_full_solvers_agree_on_tstar(random_tight):
    red, full = random_tight["reduced_tight"].runs, random_tight["full_tight"].runs
    assert list(red["status"]) == ["blowup"] * len(red["t_star"])
    assert list(full["status"]) == list(red["status"])
    assert np.max(_rel(full["t_star"], red["t_star"])) < 1e-8
    np.testing.assert_allclose(full["E0"], red["E0"], rtol=1e-13)


def test_reduced_and_full_series_agree_at_equal_tau(random_tight):
    """Both integrate in the same projective time dτ = ‖θ‖ dt, so t(τ), E(τ) and the layer norms must agree."""
    rs, fs = random_tight["reduced_tight"].series, random_tight["full_tight"].series
    k = min(len(rs["tau"]), len(fs["tau"]))
    np.testing.assert_array_equal(rs["tau"][:k], fs["tau"][:k])
    assert np.max(_rel(fs["t"][:, 1:k], rs["t"][:, 1:k])) < 1e-8
    scale = _theta_norm2(rs)[:, :k] ** 1.5
    assert np.max(np.abs(fs["energy"][:, :k] - rs["energy"][:, :k]) / scale) < 1e-8
    for key in ("norm_a2", "norm_b2", "norm_c2"):
        assert np.max(_rel(fs[key][:, :k], rs[key][:, :k])) < 1e-8, key


def test_reduced_tstar_matches_scipy_full_system(random5):
    """Reference T*: SciPy DOP853 on (3.10) to ‖θ‖ = 1e6‖θ0‖, plus the tail E^{−1/3} (< 1e-5 of T*)."""
    a, b, c = random5["starts"]
    t_star = random5["reduced_tight"].runs["t_star"]
    for i in range(len(a)):
        ref, tail_share = reference.blowup_time(
            reference.three_layer_field, lambda a, b, c: a @ b @ c, (a[i], b[i], c[i]), depth=3, growth=1e6
        )
        assert tail_share < 1e-5
        assert abs(t_star[i] - ref) / ref < 1e-8


# ---------------------------------------------------------------------------
# 9. Matrix sensing (A.8)


SENSING_LAM = np.array([[1.0, -0.5, 0.7, -1.2], [-2.0, 1.5, 0.3, 1.0]])


@pytest.fixture(scope="module")
def sensing():
    rng = np.random.default_rng(9)
    n, m = SENSING_LAM.shape
    a, b, c = (rng.standard_normal((n, m, m)) for _ in range(3))
    return (a, b, c), blowup.solve_sensing(a, b, c, SENSING_LAM)


def test_sensing_blows_up_and_matches_scipy(sensing):
    (a, b, c), res = sensing
    assert list(res.runs["status"]) == ["blowup"] * len(a)
    t_star = res.runs["t_star"]
    assert np.all(np.isfinite(t_star) & (t_star > 0))
    for i in range(len(a)):
        lam = SENSING_LAM[i]
        ref, tail_share = reference.blowup_time(
            lambda a, b, c, lam=lam: reference.sensing_field(a, b, c, lam),
            lambda a, b, c, lam=lam: reference.sensing_energy(a, b, c, lam),
            (a[i], b[i], c[i]), depth="sensing", growth=1e8,
        )
        assert tail_share < 1e-7  # the tail (E^{−1/3}, exact only for max|λ| = 1) is negligible here
        assert abs(t_star[i] - ref) / ref < 1e-6
    assert np.all(np.diff(res.series["energy"], axis=1) >= 0)  # gradient ascent: E never decreases


@pytest.mark.parametrize("kappa", [0.03, 30.0])
def test_sensing_tstar_scales_inversely_with_lambda(sensing, kappa):
    """T*(θ0, κλ) = T*(κθ0, λ) = T*(θ0, λ)/κ: the solver normalises λ as well as the start."""
    (a, b, c), res = sensing
    scaled = blowup.solve_sensing(a, b, c, kappa * SENSING_LAM)
    assert list(scaled.runs["status"]) == ["blowup"] * len(a)
    assert np.max(_rel(scaled.runs["t_star"] * kappa, res.runs["t_star"])) < 1e-8


def test_sensing_start_scale_is_equivalent_to_lambda_scale(sensing):
    """Scaling the start by κ divides T* by κ (the flow is homogeneous of degree 2)."""
    (a, b, c), res = sensing
    kappa = 10.0
    scaled = blowup.solve_sensing(kappa * a, kappa * b, kappa * c, SENSING_LAM)
    assert list(scaled.runs["status"]) == ["blowup"] * len(a)
    assert np.max(_rel(scaled.runs["t_star"] * kappa, res.runs["t_star"])) < 1e-8


# ---------------------------------------------------------------------------
# 10. Running brackets on random starts


def test_running_brackets_contain_tstar(random_tight):
    res = random_tight["reduced_tight"]
    s, t_star = res.series, res.runs["t_star"][:, None]
    upper, lower = s["tstar_upper"], s["tstar_lower"]
    # Theorem 1 is rigorous wherever E > 0
    pos = s["energy"] > 0
    assert np.all(np.isfinite(upper[pos]))
    assert np.all(np.where(pos, t_star <= upper * (1 + 1e-9), True))
    # the norm bound at every record (T* itself is known to ~1e-9 here)
    assert np.all(np.isfinite(lower))
    assert np.all(lower <= t_star * (1 + 1e-9))
    assert np.all(np.where(pos, lower <= upper * (1 + 1e-9), True))
    np.testing.assert_allclose(upper, theory.thm1_running_upper(s["t"], s["energy"]), rtol=1e-15)
    np.testing.assert_allclose(lower, s["t"] + np.sqrt(3 / _theta_norm2(s)), rtol=1e-15)


@pytest.mark.parametrize("m", [2, 5, 20])
def test_no_lower_bound_column_exceeds_tstar_on_unequal_norm_starts(m):
    """Issue #16: with ‖a(0)‖ ≠ ‖c(0)‖ (σ_a = 0.1, σ_c = 0.05, the command of the issue) the old
    Theorem-2 column exceeded T* on 28 of 64 runs at m = 2. Every column documented as a lower
    bound of T* stays below T* (to T*'s own accuracy, 1e-8); the Theorem 2 estimate is allowed not
    to, and on these starts it does not (so the test shows why it is not called a bound)."""
    rng = np.random.default_rng(100 + m)
    n = 16
    a, b, c = 0.1 * rng.standard_normal((n, m)), rng.standard_normal((n, m, m)), 0.05 * rng.standard_normal((n, m))
    res = blowup.solve_three_layer(a, b, c)
    ok = res.runs["status"] == "blowup"
    assert ok.sum() >= n - 1
    t_star = res.runs["t_star"][ok][:, None]
    lower = res.series["tstar_lower"][ok]
    assert np.all(lower <= t_star * (1 + 1e-8)), np.max(lower / t_star)
    assert np.all(res.series["tstar_lower"][ok][:, 0] <= t_star[:, 0])
    if m == 2:  # the estimate overshoots T* on some of these runs
        assert np.nanmax(res.series["tstar_thm2_estimate"][ok] / t_star) > 1


# ---------------------------------------------------------------------------
# 10b. Blow-up status from the dynamics (issue #16)


def test_counter_example_to_assumption1_as_a_necessary_condition():
    """‖a(0)‖ = ‖c(0)‖ = 1 and E0 = −0.6 < 0 violate Assumption 1, yet K = ‖ȧ(0)‖² − ‖ċ(0)‖² =
    6.12 − 1 ≠ 0 and the solution blows up (the SciPy solve of the full system at rtol 1e-13)."""
    a, c, b = np.array([1.0, 0.0]), np.array([-0.6, 0.8]), np.diag([1.0, 3.0])
    assert not blowup.assumption1(a, b, c)[0]
    k, _ = blowup.blowup_quantity(a, b, c)
    np.testing.assert_allclose(k, 5.12, rtol=1e-14)
    ref, tail = reference.blowup_time(reference.three_layer_field, lambda a, b, c: a @ b @ c, [a, b, c], 3)
    assert tail < 1e-5 and abs(ref - 0.88811) < 1e-5
    for res in (blowup.solve_three_layer(a, b, c), blowup.solve_deep((a, b, c))):
        assert res.runs["status"][0] == "blowup" and res.runs["theory_status"][0] == "blowup"
        assert abs(res.runs["t_star"][0] - ref) / ref < 1e-6


@pytest.mark.parametrize("m", [2, 6, 15])
def test_assumption1_violating_starts_with_negative_energy(m):
    """Random starts with ‖c(0)‖ rescaled to ‖a(0)‖ (so (3.12) fails) and E0 < 0: K ≠ 0 for all of
    them, so every one blows up; status and T* against the independent SciPy integration."""
    rng = np.random.default_rng(7 + m)
    starts = []
    while len(starts) < 4:
        a, b, c = rng.standard_normal(m), rng.standard_normal((m, m)) / np.sqrt(m), rng.standard_normal(m)
        c *= np.linalg.norm(a) / np.linalg.norm(c)
        if a @ b @ c > 0:
            c = -c
        starts.append((a, b, c))
    a, b, c = (np.stack(v) for v in zip(*starts))
    assert not np.any(blowup.assumption1(a, b, c)) and np.all(np.einsum("bi,bij,bj->b", a, b, c) < 0)
    res = blowup.solve_three_layer(a, b, c)
    assert list(res.runs["status"]) == ["blowup"] * 4 and list(res.runs["theory_status"]) == ["blowup"] * 4
    for i in range(4):
        ref, tail = reference.blowup_time(reference.three_layer_field, lambda a, b, c: a @ b @ c, [a[i], b[i], c[i]], 3)
        assert tail < 1e-4
        assert abs(res.runs["t_star"][i] - ref) / ref < 1e-6


def test_theory_status_decides_only_what_is_proved():
    """blowup: E0 > 0 or K ≠ 0; no_blowup: balanced with E0 < 0 (Example 1, any scale and width,
    rotated); open: E0 ≤ 0, K = 0 and unbalanced (the solve decides those)."""
    rng = np.random.default_rng(0)
    q1, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    q2, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    u, w = q1[:, 0], q2[:, 0]
    s = 2.5
    balanced_neg = (s * u, s * np.outer(u, w), -s * w)  # E0 = −s³
    balanced_pos = blowup.balanced_rank_one(s, u, w)  # E0 = +s³
    # unbalanced with K = 0, E0 < 0: a = (1, 0), c = (−1, 0), b = [[1, 0], [0, 1]] has ‖ȧ‖ = ‖ċ‖
    open_start = (np.array([1.0, 0.0]), np.eye(2), np.array([-1.0, 0.0]))
    got = [blowup.theory_status(*v)[0] for v in (balanced_neg, balanced_pos, open_start)]
    assert got == ["no_blowup", "blowup", "open"]
    assert blowup.blowup_quantity(*open_start)[0][0] == 0.0
    # that open start is Example 1 in the first coordinate plus a constant b22 (a2 = c2 = 0 stay
    # exactly 0): it does not blow up, and the solve, which decides it, does not claim it does
    res = blowup.solve_three_layer(*open_start, SolverOptions(tau_max=60.0))
    assert res.runs["status"][0] == "max_steps" and np.isnan(res.runs["t_star"][0])
    assert np.all(res.series["energy"][0] < 0)
    # off the balanced set by more than rounding: no longer decided as no_blowup
    a, b, c = balanced_neg
    assert blowup.theory_status(a, b + 1e-6 * np.outer(q1[:, 1], q2[:, 1]), c)[0] != "no_blowup"


# ---------------------------------------------------------------------------
# 11. Proposition 3 diagnostics near T*


def test_proposition3_diagnostics(random_tight):
    runs = random_tight["reduced_tight"].runs
    assert np.all(runs["frac_diverging"] > 0)
    assert np.all(runs["min_cos_xi"] > 0.99)
    assert np.all(np.abs(runs["adot_over_a2"] - 1.0) < 1e-3)
    assert np.all(np.abs(runs["b_top_share"] - 1.0) < 1e-3)
    assert np.all(np.isfinite(runs["t_final_stage"]))
    assert np.all(runs["t_final_stage"] <= runs["t_star"])
    # Proposition 2: once the final stage holds it holds to the end of the record
    fs = random_tight["reduced_tight"].series["final_stage"]
    assert np.all(fs[:, -1])
    assert np.all(np.diff(fs.astype(int), axis=1) >= 0)
