"""Theory checks on ODE tables: the measured Theorem 2 constant C(t) = Ė/(3E^{4/3}), the ratio
ρ = (T* − t)/E^{−1/3}, the envelopes, exponent fits, the figures and `condense plot theory`."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

from condense_jax.cli import main
from condense_jax.errors import ConfigError
from condense_jax.ode import blowup, effective, plots, theory


def test_energy_derivative_is_the_sum_of_squares():
    """effective.energy_rate = Ė along effective.vector_field (3.10), by autodiff of effective.energy:
    ‖bc‖² + ‖bᵀa‖² + ‖a‖²‖c‖² (the proof of Theorem 2), at random starts of several widths."""
    rng = np.random.default_rng(0)
    for m in (1, 5, 12):
        a, b, c = rng.standard_normal(m), rng.standard_normal((m, m)), rng.standard_normal(m)
        _, e_dot = jax.jvp(effective.energy, (a, b, c), tuple(effective.vector_field(a, b, c)))
        assert float(effective.energy_rate(a, b, c)) == pytest.approx(float(e_dot), rel=1e-12)
        assert float(e_dot) == pytest.approx(np.sum((b @ c) ** 2) + np.sum((b.T @ a) ** 2) + (a @ a) * (c @ c), rel=1e-12)


def test_closed_form_balanced_case_pure_functions():
    """E(t) = (T* − t)^{−3}: ρ ≡ 1, C ≡ 1, and both envelopes from any s equal E exactly."""
    t_star = 2.0
    t = np.linspace(0.0, 1.99, 200)
    e = (t_star - t) ** -3.0
    np.testing.assert_allclose(theory.ratio_to_blowup(t, t_star, e), 1.0, rtol=1e-12)
    for k in (0, 50, 150):
        np.testing.assert_allclose(theory.thm1_energy_lower_envelope(t[k:], t[k], e[k]), e[k:], rtol=1e-9)
        np.testing.assert_allclose(theory.thm2_envelope_measured(t[k:], t[k], e[k], np.ones(200 - k)), e[k:], rtol=1e-9)
    # the paper's proof constant at cos ζ = 1 is 4/3 (from Ė ≤ 4‖ȧ‖^{4/3}‖a‖^{4/3}), not the measured 1
    assert float(theory.thm2_constant(1.0)) == pytest.approx(4 / 3)


def test_balanced_start_through_the_solver_has_c_one_and_ratio_one():
    rng = np.random.default_rng(3)
    u, w = rng.standard_normal(6), rng.standard_normal(6)
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    starts = [blowup.balanced_rank_one(s, u, w) for s in (0.5, 2.0)]
    a, b, c = (np.stack(v) for v in zip(*starts))
    res = blowup.solve_three_layer(a, b, c)
    s = res.series
    np.testing.assert_allclose(res.runs["t_star"], [2.0, 0.5], rtol=1e-8)  # T* = 1/s0
    np.testing.assert_allclose(s["thm2_rate"], 1.0, rtol=1e-9)
    left = res.runs["t_star"][:, None] - s["t"]
    keep = left > 1e-3 * res.runs["t_star"][:, None]  # closer, T*'s own tolerance dominates T* − t
    rho = theory.ratio_to_blowup(s["t"], res.runs["t_star"][:, None], s["energy"])
    np.testing.assert_allclose(rho[keep], 1.0, rtol=1e-6)


def test_random_starts_obey_theorem_1_in_the_measured_constant():
    """C(t) ≥ 1 (Theorem 1) at every record and ρ ≤ 1; ρ → 1 at blow-up (the balanced limit)."""
    rng = np.random.default_rng(7)
    a, b, c = rng.standard_normal((8, 10)), rng.standard_normal((8, 10, 10)), rng.standard_normal((8, 10))
    res = blowup.solve_three_layer(a, b, c)
    s, ts = res.series, res.runs["t_star"][:, None]
    rate = s["thm2_rate"][np.isfinite(s["thm2_rate"])]
    assert rate.size and rate.min() >= 1 - 1e-9
    pos = (s["energy"] > 0) & (ts - s["t"] > 1e-3 * ts)  # closer, T*'s own tolerance dominates T* − t
    rho = theory.ratio_to_blowup(s["t"], ts, s["energy"])
    assert np.nanmax(rho[pos]) <= 1 + 1e-6
    last = [np.flatnonzero(pos[i])[-1] for i in range(len(ts))]
    np.testing.assert_allclose([rho[i, k] for i, k in enumerate(last)], 1.0, atol=1e-3)


def test_power_law_fit_recovers_exponents():
    rng = np.random.default_rng(1)
    x = np.repeat([10.0, 30.0, 100.0, 300.0], 50)
    y = 3.0 * x**-0.5 * np.exp(0.05 * rng.standard_normal(x.size))
    fit = theory.power_law_fit(x, y)
    assert abs(fit["slope"] + 0.5) < 3 * fit["stderr"] and fit["stderr"] < 0.01
    assert fit["intercept"] == pytest.approx(np.log(3.0), abs=0.05)
    # per-group intercepts: the exponent in x at fixed group, which a pooled fit gets wrong when
    # the groups shift both x and y
    g = np.repeat([0, 1], 100)
    x2 = rng.uniform(1, 10, 200) * np.where(g == 1, 10.0, 1.0)
    y2 = x2**0.3 * np.where(g == 1, 1e-3, 1.0) * np.exp(0.02 * rng.standard_normal(200))
    grouped = theory.power_law_fit(x2, y2, groups=g)
    assert abs(grouped["slope"] - 0.3) < 3 * grouped["stderr"] and grouped["stderr"] < 0.02
    pooled = theory.power_law_fit(x2, y2)  # the pooled points jump at x = 10: no one power law over them
    assert pooled["law"] == "range" and (pooled["x_hi"] <= 10 or pooled["x_lo"] >= 10)
    assert np.isnan(theory.power_law_fit([5.0, 5.0], [1.0, 2.0])["slope"])


def test_power_law_is_fitted_only_where_it_holds():
    """The stated heuristic: the widest run of >= 3 neighbouring levels whose local log-log slopes
    are within POWER_LAW_TOL of the exponent; a saturating curve is fitted below the saturation,
    two levels are a slope (no test), and a curve that bends everywhere is no power law."""
    x = np.repeat([0.1, 0.3, 1.0, 3.0, 10.0], 5)
    saturating = np.minimum(x, 1.0) ** 0.5  # T* against the imbalance: flat above a ratio of 1
    fit = theory.power_law_fit(x, saturating)
    assert fit["law"] == "range" and fit["slope"] == pytest.approx(0.5) and (fit["x_lo"], fit["x_hi"]) == pytest.approx((0.1, 1.0))
    exact = theory.power_law_fit(x, x**-0.25)
    assert exact["law"] == "holds" and exact["slope"] == pytest.approx(-0.25) and exact["levels_used"] == 5
    two = theory.power_law_fit([1.0, 1.0, 3.0, 3.0], [1.0, 1.1, 2.0, 2.1])
    assert two["law"] == "two levels" and np.isfinite(two["slope"])
    bending = theory.power_law_fit(x, np.exp(np.log(x) ** 2))  # local slopes -2.9 ... 3.5: no 3 agree
    assert bending["law"] == "no" and np.isnan(bending["slope"])
    lines = plots.theory_lines(dict(runs=25, violations=0, min_thm2_rate=1.0, width_exponent=bending, imbalance_exponent=fit))
    assert "T* ~ m: not a power law" in lines[1] and "for imbalance 0.1–1 only (3 of 5 imbalances" in lines[1]
    assert "heuristic" in lines[2] and "nan" not in " ".join(lines)


def test_violation_count():
    runs = pd.DataFrame(dict(E0=[1.0, 8.0, -1.0, 1.0], t_star=[0.9, 0.6, 5.0, np.nan]))  # bounds 1, 0.5
    assert theory.tstar_violations(runs) == 1


@pytest.fixture(scope="module")
def ode_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("theory") / "ode"
    assert main(["ode", "--widths", "4", "8", "--seeds", "6", "--scale-c", "1", "0.3", "--out", str(out),
                 "--no-figure", "--quiet"]) == 0
    return out


def test_theory_figures_and_cli(ode_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(["plot", "theory", str(ode_dir)]) == 0
    out = capsys.readouterr().out
    assert "(Theorem 1 violated): 0" in out
    for name in ("tstar_bounds", "tstar_ratio", "tstar_scaling"):
        png = ode_dir / "figures" / f"{name}.png"
        assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_parquet(ode_dir / "runs")
    series = pd.read_parquet(ode_dir / "series")
    with pytest.raises(ConfigError, match="no blown-up run"):
        plots.ratio_figure(runs.iloc[:0], series, run_ids=[])
    with pytest.raises(ConfigError, match="no blown-up run"):
        plots.scaling_figure(runs.assign(status="no_blowup"), series)
    with pytest.raises(ConfigError, match="thm2_rate"):
        plots.ratio_figure(runs, series.drop(columns="thm2_rate"))
    assert main(["plot", "theory", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err


def test_a_fit_that_cannot_be_made_says_so_instead_of_printing_nan():
    nan_fit = theory.power_law_fit([20, 20, 20], [1.0, 2.0, 3.0])  # one width: no exponent
    good = theory.power_law_fit([10, 20, 40, 80], [1.0, 2.0, 4.0, 8.0])
    lines = plots.theory_lines(dict(runs=3, violations=0, min_thm2_rate=1.0, width_exponent=nan_fit, imbalance_exponent=good))
    assert "nan" not in " ".join(lines)
    assert "T* ~ m: no fit (3 runs" in lines[1] and "T* ~ (|a0|/|c0|)^1.000" in lines[1]
