"""Series on a user's grid in t or in E: rows sit on the requested values and agree with an
independent SciPy integration of the full system (3.10) at those times."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from condense_jax.ode import blowup
from condense_jax.ode.sweep import solve_blowup


def full_energy_at(a, b, c, times):
    m = len(a)

    def f(t, th):
        a_, b_, c_ = th[:m], th[m:m + m * m].reshape(m, m), th[m + m * m:]
        return np.concatenate([b_ @ c_, np.outer(a_, c_).ravel(), b_.T @ a_])

    sol = solve_ivp(f, (0, max(times)), np.concatenate([a, b.ravel(), c]), method="DOP853",
                    rtol=1e-12, atol=1e-12, t_eval=times, dense_output=False)
    th = sol.y.T
    return np.array([x[:m] @ x[m:m + m * m].reshape(m, m) @ x[m + m * m:] for x in th])


@pytest.fixture(scope="module")
def starts():
    rng = np.random.default_rng(5)
    return rng.standard_normal((2, 6)), rng.standard_normal((2, 6, 6)), rng.standard_normal((2, 6))


@pytest.mark.slow
def test_t_grid(starts):
    a, b, c = starts
    t_star = blowup.solve_three_layer(a, b, c).runs["t_star"]
    grid = (0.0, 0.05, 0.2, 0.9 * t_star.min(), 0.99 * t_star.max(), 10.0)
    runs, series = solve_blowup(a, b, c, blowup.SolverOptions(series_t=grid))
    np.testing.assert_allclose(runs["t_star"], t_star, rtol=1e-12)
    for i in range(2):
        s = series[series["run_id"] == i]
        reachable = [t for t in grid if t < t_star[i]]
        np.testing.assert_allclose(s["t"], reachable, rtol=1e-9, atol=1e-12)  # rows on the grid, none past T*
        np.testing.assert_allclose(s["t_target"], reachable)
        e_ref = full_energy_at(a[i], b[i], c[i], np.array(reachable))
        np.testing.assert_allclose(s["energy"], e_ref, rtol=1e-6)


def test_energy_grid(starts):
    a, b, c = starts
    grid = (-1e3, 1.0, 10.0, 1e4, 1e8)
    runs, series = solve_blowup(a, b, c, blowup.SolverOptions(series_E=grid))
    for i in range(2):
        s = series[series["run_id"] == i]
        reachable = [e for e in grid if e >= runs["E0"][i]]
        np.testing.assert_allclose(s["energy"], reachable, rtol=1e-9)
        # E is nondecreasing (3.14), so the times are increasing and below T*
        assert np.all(np.diff(s["t"]) > 0) and np.all(s["t"] < runs["t_star"][i])
        e_ref = full_energy_at(a[i], b[i], c[i], s["t"].to_numpy())
        np.testing.assert_allclose(s["energy"], e_ref, rtol=1e-6)
