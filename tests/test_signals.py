"""Signals that always work (issue #17): a first SIGINT / SIGTERM stops after the running chunk, a
second aborts at once even inside a long compiled call, a Ctrl-C while JAX imports is not lost,
and a signal after the last chunk leaves a complete sweep."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from helpers import condense

from condense_jax import cli, kinds
from condense_jax.engine import execute, store

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

ROOT = Path(__file__).resolve().parents[1]




def test_a_second_signal_aborts_a_long_compiled_chunk_at_once(tmp_path):
    """Two signals 1 s apart during a chunk of 10⁶ steps were coalesced: the process exited ~20 s
    later, after writing the chunk."""
    out = tmp_path / "d"
    proc = condense(["train", "--out", str(out), "--widths", "20", "--seeds", "6", "--chunk-size", "2",
                     "--steps", "1000000", "--no-predict", "--quiet", "--no-figure"])
    t0 = time.monotonic()
    while not (out / "manifest.json").exists():
        assert proc.poll() is None and time.monotonic() - t0 < 120, proc.communicate()
        time.sleep(0.05)
    time.sleep(3.0)  # inside the first chunk's compiled call
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    t_second = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t_second
    assert proc.returncode == 130, err
    assert took < 5.0, f"the second signal took {took:.1f} s to act"
    assert "SIGINT: finishing the running chunk" in err and "aborted at once" in err and "Traceback" not in err
    assert not list(out.rglob(".*.tmp-*"))
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    assert not list((out / "runs").glob("part-*")) if (out / "runs").exists() else True


@pytest.mark.parametrize("delay", [0.15, 0.5, 1.0])
def test_ctrl_c_while_jax_imports_stops_before_anything_is_written(delay, tmp_path):
    """It was swallowed 6 times in 10: the sweep then ran to the end with exit 0."""
    out = tmp_path / "d"
    proc = condense(["ode", "--out", str(out), "--widths", "5", "--seeds", "3", "--quiet", "--no-figure"])
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if "nothing was written" in err:
        assert not out.exists()
    else:  # the signal came after the sweep had started: it stopped after a chunk, or had completed
        assert "stopped after chunk" in err or "had completed" in err, err


def test_a_signal_during_the_last_chunk_leaves_a_complete_sweep(tmp_path, capsys, monkeypatch):
    """It used to give exit −2/−15 with atexit tracebacks, sometimes `complete: false`."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    real = execute.write_chunk

    def write(out, part, chunk, meta, columns=None):
        if part == 1:  # the last of two chunks
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the watcher announces it
        return real(out, part, chunk, meta, columns)

    monkeypatch.setattr(execute, "write_chunk", write)
    out = tmp_path / "d"
    code = cli.main(["ode", "--out", str(out), "--widths", "4", "--seeds", "4", "--chunk-size", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 130 and "had completed" in err and "Traceback" not in err
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert not (out / "figures").exists()  # figures skipped on request
    store.load(out)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handed back


def test_an_interrupt_without_a_message_still_says_what_happened(tmp_path, capsys, monkeypatch):
    """`f"condense: {e or '…'}"` printed a bare `condense: ` (an exception is always true)."""
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "execute", boom)
    assert cli.main(["ode", "--out", str(tmp_path / "d"), "--widths", "4", "--seeds", "2", "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("condense: interrupted;") and "--resume" in err


def test_default_chunks_are_short_enough_for_a_first_signal():
    """A first signal takes effect after the running chunk: by default a training chunk is sized
    to about 30 s (a deliberately high time estimate), a four-phase chunk to at most 512 runs
    (~20 s of the default setting here), so that no sweep is one long chunk."""
    from condense_jax.four_phases import sweep as four_phases
    from condense_jax.four_phases.spec import FourPhaseSweep
    from condense_jax.gd import sweep as train_sweep
    from condense_jax.gd.spec import TrainSweep

    spec = TrainSweep(widths=(20,), seeds=6, steps=1_000_000, predict_escape=False)  # the command
    plan = kinds.plan(spec)
    x, _ = train_sweep.load_data(spec)
    per_run = train_sweep.seconds_per_run(spec, train_sweep.train_spec(spec, 20), x)
    assert 5 <= per_run <= 60  # 10⁶ steps at m = 20: ~13 s measured on this CPU
    assert len(plan.chunks) >= 2 and all(c.n_runs * per_run <= 2 * 60 for c in plan.chunks)
    fp = kinds.plan(FourPhaseSweep(widths=(20,), seeds=300, init_scales=(1e-2, 1e-4)))
    assert max(c.n_runs for c in fp.chunks) <= four_phases.CHUNK_RUNS and len(fp.chunks) >= 2
