"""Sweeps that survive (issue #6): --resume, SIGTERM / SIGINT, --dry-run, for every kind of sweep."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import condense

from condense_jax import cli
from condense_jax.engine import store

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
ODE = ["ode", "--widths", "6", "10", "--seeds", "48", "--chunk-size", "4", "--quiet", "--no-figure"]




def table(out: Path, name: str, keys) -> pd.DataFrame:
    return pd.read_parquet(out / name).sort_values(keys).reset_index(drop=True)


def wait_for(path: Path, proc, timeout=240.0):
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "res"
    assert cli.main([*ODE[:1], "--out", str(out), *ODE[1:]]) == 0
    return out


def test_sigterm_finishes_the_chunk_then_resume_completes_identically(uninterrupted, tmp_path):
    out = tmp_path / "res"
    proc = condense([*ODE[:1], "--out", str(out), *ODE[1:]])
    wait_for(out / "manifest.json", proc)
    time.sleep(0.5)  # the first chunk is compiling (seconds)
    proc.send_signal(signal.SIGTERM)  # Slurm's timeout and scancel
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert "stopped after chunk" in err and "--resume" in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    done = sorted(p.name for p in (out / "runs").glob("part-*.parquet"))
    assert manifest["complete"] is False and len(done) == 1 and len(manifest["plan"]) == 24  # the running chunk, written
    for p in done:  # every part on disk is whole
        pd.read_parquet(out / "runs" / p), pd.read_parquet(out / "series" / p)
    proc = condense([*ODE[:1], "--out", str(out), *ODE[1:], "--resume"])
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["chunks_computed"] == 24 - len(done)
    pd.testing.assert_frame_equal(table(out, "runs", "run_id"), table(uninterrupted, "runs", "run_id"))
    pd.testing.assert_frame_equal(table(out, "series", ["run_id", "tau"]), table(uninterrupted, "series", ["run_id", "tau"]))


def test_second_sigint_aborts_at_once_without_a_partial_file(tmp_path):
    out = tmp_path / "res"
    proc = condense([*ODE[:1], "--out", str(out), *ODE[1:]])
    wait_for(out / "manifest.json", proc)
    time.sleep(0.5)  # the first chunk is compiling (seconds)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "stopped after chunk" not in err  # it did not wait for the running chunk
    assert not (out / "runs").exists() or not list((out / "runs").glob("*"))
    assert not list(out.rglob(".*tmp*"))  # no temporary file left behind
    for p in (out / "runs").glob("part-*.parquet"):
        pd.read_parquet(p)
    assert json.loads((out / "manifest.json").read_text())["complete"] is False


def test_resume_of_a_complete_sweep_computes_nothing(uninterrupted, capsys):
    before = table(uninterrupted, "runs", "run_id")
    assert cli.main([*ODE[:1], "--out", str(uninterrupted), *ODE[1:], "--resume"]) == 0
    assert json.loads((uninterrupted / "manifest.json").read_text())["chunks_computed"] == 0
    pd.testing.assert_frame_equal(table(uninterrupted, "runs", "run_id"), before)


@pytest.mark.parametrize("extra, words", [
    (["--seeds", "47"], "different configuration"),
    (["--chunk-size", "8"], "chunked differently"),
])
def test_resume_refuses_another_sweep(uninterrupted, extra, words, capsys):
    args = [*ODE[:1], "--out", str(uninterrupted), *ODE[1:], *extra, "--resume"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_resume_needs_a_sweep(tmp_path, capsys):
    assert cli.main([*ODE[:1], "--out", str(tmp_path / "none"), *ODE[1:], "--resume"]) == 2
    assert "no sweep to resume" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["train", "four-phases"])
def test_resume_recomputes_exactly_the_missing_chunks(kind, tmp_path, capsys):
    """Parts removed from a finished sweep (as an interruption leaves it) are recomputed, and the
    tables equal the original ones: run ids and numbers."""
    if kind == "train":
        args = ["train", "--widths", "5", "--seeds", "6", "--init-scales", "1e-2", "1e-3", "--steps", "40",
                "--chunk-size", "2", "--no-predict", "--quiet", "--no-figure"]
        series_keys = ["run_id", "step"]
    else:
        args = ["four-phases", "--widths", "6", "--seeds", "6", "--init-scales", "1e-2", "1e-4", "--n", "20",
                "--delta", "60", "120", "--t-max", "100", "--n-records", "20", "--chunk-size", "3", "--quiet", "--no-figure"]
        series_keys = ["run_id", "t"]
    out = tmp_path / "res"
    assert cli.main([args[0], "--out", str(out), *args[1:]]) == 0
    runs, series = table(out, "runs", "run_id"), table(out, "series", series_keys)
    for sub in out.iterdir():
        if sub.is_dir() and (sub / store.part_name(1)).exists():
            (sub / store.part_name(1)).unlink()
    assert cli.main([args[0], "--out", str(out), *args[1:], "--resume"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunks_computed"] == 1 and manifest["complete"]
    pd.testing.assert_frame_equal(table(out, "runs", "run_id"), runs)
    pd.testing.assert_frame_equal(table(out, "series", series_keys), series)
    capsys.readouterr()


@pytest.mark.parametrize("args", [
    ["ode", "--widths", "6", "--seeds", "8"],
    ["ode", "--widths", "6", "--seeds", "8", "--stepping", "shared"],
    ["train", "--widths", "5", "--seeds", "4", "--steps", "10"],
    ["four-phases", "--widths", "6", "--seeds", "4", "--n", "20", "--t-max", "50"],
    ["run", "quickstart"],
])
def test_dry_run_plans_compiles_and_writes_nothing(args, tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main([*args, "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "runs in" in text and "chunks" in text and "MiB" in text
    assert "compiled the first chunk's call" in text
    assert not out.exists()
