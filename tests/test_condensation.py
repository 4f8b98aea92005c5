"""Proposition 3's index classes on starts where the answer is known by construction."""

import numpy as np
import pytest

from condense_jax import blowup


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
