"""The two stepping modes: per-start steps (vmapped solves) reproduce a start's numbers exactly
whatever its chunk-mates; shared steps (one step size per chunk) agree with them to the tolerance."""

import numpy as np
import pytest

from condense_jax.ode import blowup


def test_shared_stepping_agrees_to_tolerance_and_per_start_is_batch_independent():
    rng = np.random.default_rng(21)
    a, b, c = rng.standard_normal((6, 8)), rng.standard_normal((6, 8, 8)), rng.standard_normal((6, 8))
    per = blowup.solve_three_layer(a, b, c).runs
    shared = blowup.solve_three_layer(a, b, c, blowup.SolverOptions(stepping="shared")).runs
    np.testing.assert_allclose(shared["t_star"], per["t_star"], rtol=1e-8)
    assert list(shared["status"]) == ["blowup"] * 6
    # the first three starts with different chunk-mates: per-start results are identical to rounding
    mates = blowup.solve_three_layer(
        np.concatenate([a[:3], a[:3] * 2]), np.concatenate([b[:3], b[:3]]), np.concatenate([c[:3], c[:3] * 0.5])
    ).runs
    np.testing.assert_allclose(mates["t_star"][:3], per["t_star"][:3], rtol=1e-14)


@pytest.mark.slow
def test_split_over_host_devices_gives_identical_per_start_numbers(tmp_path):
    """The solver splits a chunk over XLA host devices (one per core under the CLI); per-start
    stepping makes the numbers independent of that split."""
    import subprocess
    import sys

    code = (
        "import numpy as np, jax\n"
        "from condense_jax.ode import blowup\n"
        "rng = np.random.default_rng(21)\n"
        "a, b, c = rng.standard_normal((5, 8)), rng.standard_normal((5, 8, 8)), rng.standard_normal((5, 8))\n"
        "r = blowup.solve_three_layer(a, b, c).runs\n"
        "np.save(%r, np.array([len(jax.devices())] + list(r['t_star']) + list(r['t_final_stage'])))\n"
    )
    out = {}
    for n in (1, 3):
        path = tmp_path / f"n{n}.npy"
        env = {**__import__("os").environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        subprocess.run([sys.executable, "-c", code % str(path)], check=True, env=env, timeout=300)
        out[n] = np.load(path)
    assert out[1][0] == 1 and out[3][0] == 3
    np.testing.assert_allclose(out[3][1:], out[1][1:], rtol=1e-14)
