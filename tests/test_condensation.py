"""Proposition 3's index classes on starts where the answer is known by construction."""

import numpy as np
import pytest

from condense_jax.ode import blowup


def test_index_with_zero_column_stays_bounded():
    """If c_i = 0 and column bⁱ = 0, then c_i' = bⁱᵀa = 0 and bⁱ' = a c_i = 0: c_i stays 0 (i ∈ C2)."""
    rng = np.random.default_rng(11)
    m = 6
    a, b, c = rng.standard_normal(m), rng.standard_normal((m, m)), rng.standard_normal(m)
    c[2] = 0.0
    b[:, 2] = 0.0
    r = blowup.solve_three_layer(a, b, c).runs
    assert r["status"][0] == "blowup"
    assert r["frac_diverging"][0] * m == pytest.approx(m - 1)
    assert r["min_cos_xi"][0] > 0.999  # (4.4) over C1


def test_generic_start_condenses_fully():
    rng = np.random.default_rng(12)
    m = 8
    r = blowup.solve_three_layer(rng.standard_normal((2, m)), rng.standard_normal((2, m, m)), rng.standard_normal((2, m))).runs
    assert np.all(r["frac_diverging"] == 1.0)
    np.testing.assert_allclose(r["adot_over_a2"], 1.0, atol=1e-3)  # (4.5)
    np.testing.assert_allclose(r["b_top_share"], 1.0, atol=1e-3)  # b → rank one


@pytest.mark.parametrize("s", [0.5, 3.0])
def test_balanced_depth4_tail_is_exact(s):
    """Balanced rank-one depth 4 (a = s u₁, W₃ = s u₁u₂ᵀ, W₂ = s u₂wᵀ, c = s w): every layer norm
    obeys ρ' = ρ³, so T* = 1/(2s²), and the tail E^{−(L−2)/L}/(L−2) = E^{−1/2}/2 gives T* exactly from
    every record t."""
    rng = np.random.default_rng(4)
    u1, u2, w = (v / np.linalg.norm(v) for v in rng.standard_normal((3, 5)))
    res = blowup.solve_deep([s * u1, s * np.outer(u1, u2), s * np.outer(u2, w), s * w])
    exact = 1.0 / (2 * s * s)
    assert res.runs["status"][0] == "blowup"
    assert res.runs["t_star"][0] == pytest.approx(exact, rel=1e-8)
    t, e = res.series["t"][0], res.series["energy"][0]
    np.testing.assert_allclose(t + e ** -0.5 / 2, exact, rtol=1e-8)


def test_unconverged_runs_are_max_steps_not_blowup():
    """A τ budget too short for the T* estimate to settle is reported as max_steps with no T*."""
    rng = np.random.default_rng(13)
    a, b, c = rng.standard_normal((2, 6)), rng.standard_normal((2, 6, 6)), rng.standard_normal((2, 6))
    r = blowup.solve_three_layer(a, b, c, blowup.SolverOptions(tau_first=2.0, tau_max=2.0)).runs
    assert list(r["status"]) == ["max_steps", "max_steps"]
    assert np.all(np.isnan(r["t_star"]))


@pytest.mark.parametrize("stepping", ["per_start", "shared"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_broken_start_does_not_take_its_chunk_down(stepping):
    """‖θ0‖² overflows for the middle start: it is `nonfinite`, its chunk-mates are unaffected."""
    rng = np.random.default_rng(14)
    a, b, c = rng.standard_normal((3, 5)), rng.standard_normal((3, 5, 5)), rng.standard_normal((3, 5))
    opts = blowup.SolverOptions(stepping=stepping)
    alone = blowup.solve_three_layer(a[[0, 2]], b[[0, 2]], c[[0, 2]], opts).runs
    a[1] *= 1e200
    r = blowup.solve_three_layer(a, b, c, opts).runs
    assert list(r["status"]) == ["blowup", "nonfinite", "blowup"]
    assert np.isnan(r["t_star"][1])
    np.testing.assert_allclose(r["t_star"][[0, 2]], alone["t_star"], rtol=1e-8)
