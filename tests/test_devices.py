"""Many devices (issues #6 and #16): every kind of sweep runs on 1, 2 and 4 XLA host devices with
no hang and no abort, and gives the single-device tables; no compiled program holds a collective.

The split over devices (devices.split_batch) runs each device's share as its own single-device
call: no collective, no rendezvous. The scan of XLA's HLO dump checks that, and that no compiled
run calls LAPACK (jaxlib 0.10's CPU LAPACK kernels fan a batch out into the thread pool they run
on and wait, which deadlocks once every pool thread is such a kernel: the four-phase `eigvalsh`
hang of #16). The control programs prove that the scan finds both.

The 2-device run happens on a busy machine: two processes spin on the two cores meanwhile.
Tables: training and four-phase tables are bitwise those of one device (a run is computed the
same way whatever its device: groups of the same size, or one seed at a time), except the
training runs' T* and predicted escape step, which come from the effective ODE; the ODE's float64
columns agree to 1e-12 relative (XLA vectorises a batch of 5 starts differently from shares of
3 or 2; every start is still solved on its own), and to 1e-7 with --stepping shared (one step size
per device's share instead of per chunk, every start held to the tolerance); every other column
is equal.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from device_sweeps import KINDS
from helpers import tables

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).with_name("device_sweeps.py")
COLLECTIVE = re.compile(r"\b(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter|collective-broadcast|"
                        r"ragged-all-to-all|send|recv)(-start|-done)?\(")
LAPACK = re.compile(r'custom_call_target="lapack_')
ODE_RTOL = 1e-12
FROM_THE_ODE = ("t_star", "predicted_escape_step")  # training columns from the effective ODE's solve
SHARED_RTOL = 1e-7  # --stepping shared: one step size per device's share, each start held to rtol 1e-9


def _sweeps(out: Path, devices: int, cache: bool, dump: Path | None = None) -> None:
    """Every kind at `devices` host devices in a fresh process; cache: the tests' own compilation
    cache (conftest.py: keyed by the program and the device count, so a warm session reuses it)
    or none at all (the HLO-dumped run compiles everything it runs)."""
    flags = f"--xla_force_host_platform_device_count={devices}"
    if dump is not None:
        flags += f" --xla_dump_to={dump} --xla_dump_hlo_as_text"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HELPER.parent)]), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": flags}
    if not cache:
        env["CONDENSE_JAX_NO_CACHE"] = "1"
    args = [sys.executable, str(HELPER), str(out)] + (["--controls"] if dump is not None else [])
    try:
        res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=400, check=False)
    except subprocess.TimeoutExpired as e:  # a hang: what ran before it is in its stderr
        pytest.fail(f"{devices} devices: no exit after 400 s; last lines: {(e.stderr or b'')[-1500:]!r}")
    assert res.returncode == 0, f"{devices} devices: exit {res.returncode}\n{res.stderr[-3000:]}"
    print(f"{devices} devices:\n{res.stderr}")


def _same(a: pd.DataFrame, b: pd.DataFrame, rtol: float, where: str, skip=()) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b), where
    for col in a.columns:
        if col in skip:
            continue
        x, y = a[col], b[col]
        rtol = max(rtol, ODE_RTOL) if col in FROM_THE_ODE else rtol
        if x.dtype.kind == "f" and rtol > 0:
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=0, equal_nan=True,
                                       err_msg=f"{where}: {col}")
        elif x.dtype.kind == "O" and len(x) and isinstance(x.iloc[0], (np.ndarray, list)):  # cosine matrices
            for u, v in zip(x, y):
                np.testing.assert_array_equal(np.stack(u), np.stack(v), err_msg=f"{where}: {col}")
        else:
            pd.testing.assert_series_equal(x, y, check_exact=True, obj=f"{where}: {col}")


@pytest.fixture(scope="module")
def device_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("devices")
    _sweeps(base / "one", 1, True)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]  # a busy machine
    try:
        _sweeps(base / "two", 2, False, dump=base / "hlo")
    finally:
        for h in hogs:
            h.kill()
    _sweeps(base / "four", 4, True)
    return base


@pytest.mark.parametrize("devices", ["two", "four"])
def test_every_kind_gives_the_single_devicetables(device_runs, devices):
    for kind in KINDS:
        one, many = tables(device_runs / "one" / kind), tables(device_runs / devices / kind)
        assert set(one) == set(many) and {"runs", "series"} <= set(one), kind
        for table in one:
            rtol = SHARED_RTOL if kind == "ode_shared" else ODE_RTOL if kind.startswith("ode") else 0.0
            skip = ("num_steps",) if kind == "ode_shared" else ()  # the share's step count
            _same(one[table], many[table], rtol, f"{kind}/{table}", skip)
    import json

    manifest = json.loads((device_runs / devices / "ode" / "manifest.json").read_text())
    assert len(manifest["devices"]) == {"two": 2, "four": 4}[devices]


def test_no_compiled_program_holds_a_collective_or_a_lapack_call(device_runs):
    dumps = [p for p in (device_runs / "hlo").glob("*after_optimizations.txt")]
    controls = {"collective_control": COLLECTIVE, "lapack_control": LAPACK}
    seen = {name: False for name in controls}
    programs = 0
    for path in dumps:
        text = path.read_text(errors="replace")
        control = next((name for name in controls if name in path.name), None)
        if control is not None:
            seen[control] = seen[control] or bool(controls[control].search(text))
            continue
        programs += 1
        assert not COLLECTIVE.search(text), f"a collective in {path.name}: {COLLECTIVE.search(text).group(0)}"
        assert not LAPACK.search(text), f"a LAPACK call in {path.name}: {LAPACK.search(text).group(0)}"
    assert seen == {name: True for name in controls}, f"the scan missed a control program: {seen}"
    assert programs >= len(KINDS), f"only {programs} programs dumped"


def test_float64_requests_compute_in_float64_in_a_fresh_process():
    """A float64 training run switches JAX's 64-bit mode on before tracing; otherwise JAX would
    compute it in float32 (with a warning) until some other module switched the mode on."""
    code = ("import warnings, jax, numpy as np\n"
            "warnings.simplefilter('error')\n"
            "from condense_jax.gd import sweep as train_sweep\n"
            "from condense_jax.gd.spec import TrainSweep\n"
            "assert not jax.config.jax_enable_x64\n"
            "plan = train_sweep.plan_train_sweep(TrainSweep(widths=(5,), seeds=2, steps=20, dtype='float64', predict_escape=False))\n"
            "frames = plan.chunks[0].compute()\n"
            "assert jax.config.jax_enable_x64\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
