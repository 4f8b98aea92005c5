"""Many devices (issue #6): a sweep split over 4 XLA host devices gives the single-device tables.

Each command runs in a fresh process with XLA_FLAGS=--xla_force_host_platform_device_count=N (the
CLI keeps a device count the user sets). The four-phase tables and the float32 training columns
are bitwise equal (a training run is computed in a group of the same size on any device count,
train.in_groups); the ODE's float64 columns (and the training runs' T* and predicted escape step,
which come from it) agree to float64 rounding, because XLA vectorises a batch of 6 starts
differently from the 4 shards' batches of 2 (every start is still solved on its own, no
collectives), so those compare to 1e-12 relative, which for a float32 column means equal; every
non-float column is equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "ode": (["ode", "--widths", "8", "--seeds", "6"], ["run_id", "tau"], 1e-12),
    "train": (["train", "--widths", "8", "--seeds", "6", "--init-scales", "1e-2", "1e-3", "--steps", "150"], ["run_id", "step"], 1e-12),
    "four-phases": (["four-phases", "--widths", "8", "--seeds", "6", "--init-scales", "1e-2", "1e-5", "--n", "30",
                     "--t-max", "200", "--n-records", "30"], ["run_id", "t"], 0.0),
}


def run(args, out: Path, devices: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    res = subprocess.run([sys.executable, "-m", "condense_jax.cli", args[0], "--out", str(out), *args[1:], "--quiet", "--no-figure"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]


def same(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in a.columns:
        x, y = a[col], b[col]
        if x.dtype.kind == "f" and rtol > 0:
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=0, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(x, y, check_exact=True)


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_four_devices_give_the_single_device_tables(kind, tmp_path):
    args, keys, rtol = COMMANDS[kind]
    run(args, tmp_path / "one", 1)
    run(args, tmp_path / "four", 4)
    import json

    assert len(json.loads((tmp_path / "four" / "manifest.json").read_text())["devices"]) == 4
    for table, order in (("runs", keys[:1]), ("series", keys)):
        one = pd.read_parquet(tmp_path / "one" / table).sort_values(order).reset_index(drop=True)
        four = pd.read_parquet(tmp_path / "four" / table).sort_values(order).reset_index(drop=True)
        same(one, four, rtol)


def test_float64_requests_compute_in_float64_in_a_fresh_process():
    """A float64 training run switches JAX's 64-bit mode on before tracing; otherwise JAX would
    compute it in float32 (with a warning) until some other module switched the mode on."""
    code = ("import warnings, jax, numpy as np\n"
            "warnings.simplefilter('error')\n"
            "from condense_jax import train_sweep\n"
            "from condense_jax.config import TrainSweep\n"
            "assert not jax.config.jax_enable_x64\n"
            "plan = train_sweep.plan_train_sweep(TrainSweep(widths=(5,), seeds=2, steps=20, dtype='float64', predict_escape=False))\n"
            "frames = plan.chunks[0].compute()\n"
            "assert jax.config.jax_enable_x64\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
