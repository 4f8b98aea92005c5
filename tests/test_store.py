"""Result directories that cannot lie (issue #17): receipts and checksums, a lock, exact resume
under every rerun, temporaries cleaned. Each test is a case that was silently wrong before."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import tables

from condense_jax import cli, kinds, load
from condense_jax.engine import execute, store

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
ODE = ["ode", "--widths", "6", "--seeds", "24", "--quiet", "--no-figure"]
FOUR = ["four-phases", "--widths", "6", "--seeds", "8", "--init-scales", "1e-2", "1e-4", "--n", "20", "--t-max", "60",
        "--n-records", "15", "--quiet", "--no-figure"]
TRAIN = ["train", "--widths", "5", "--seeds", "6", "--init-scales", "1e-2", "1e-3", "--steps", "40", "--no-predict",
         "--quiet", "--no-figure"]
# fast-forward (issue #20): ε = 0.1 starts above the handover norm (GD from step 0), ε = 1e-2 hands over at 150-330
TRAIN_FF = ["train", "--widths", "5", "--seeds", "6", "--init-scales", "1e-1", "1e-2", "--steps", "600", "--lr", "0.1",
            "--fast-forward", "--no-predict", "--quiet", "--no-figure"]


def run(args, out, *extra) -> int:
    return cli.main([args[0], "--out", str(out), *args[1:], *extra])


def same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted sweeps of each kind, and a four-phase sweep of another configuration (donor)."""
    base = tmp_path_factory.mktemp("ref")
    for name, args, chunk in (("ode", ODE, "6"), ("four", FOUR, "2"), ("train", TRAIN, "2"), ("train_ff", TRAIN_FF, "2")):
        assert run(args, base / name, "--chunk-size", chunk) == 0
    assert run(FOUR, base / "donor", "--chunk-size", "2", "--lr", "0.04") == 0
    return base


class Stop(KeyboardInterrupt):
    pass


def interrupted_after(n_chunks: int, monkeypatch):
    """Make the next sweep stop (as a kill would) after writing `n_chunks` chunks."""
    real = execute.write_chunk
    count = {"n": 0}

    def write(*args, **kwargs):
        if count["n"] == n_chunks:
            raise Stop("killed")
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(execute, "write_chunk", write)
    return lambda: monkeypatch.setattr(execute, "write_chunk", real)


@pytest.mark.parametrize("name, args, first, second", [("ode", ODE, "6", "3"), ("four", FOUR, "4", "2")])
def test_rerun_with_another_chunking_interrupted_then_resumed(name, args, first, second, reference, tmp_path, monkeypatch):
    """Complete with one chunk size, rerun in place with another, stopped after 3 parts, then
    --resume: the old parts numbered past the interruption counted as done (126 rows for 96 runs,
    duplicated and missing run ids). Now a plain rerun starts clean and resume verifies receipts."""
    out = tmp_path / "d"
    assert run(args, out, "--chunk-size", first) == 0
    restore = interrupted_after(3, monkeypatch)
    assert run(args, out, "--chunk-size", second) == 130  # stopped after 3 new parts (the CLI's exit on an interrupt)
    restore()
    assert run(args, out, "--chunk-size", second, "--resume") == 0
    got = tables(out)
    assert got["runs"]["run_id"].is_unique
    same(got, tables(reference / name))
    assert json.loads((out / "manifest.json").read_text())["complete"]


def test_resume_checks_the_receipt_key_not_just_the_file(reference, tmp_path):
    """A chunk's parts from another chunking (same part number, other runs) are not done."""
    out = tmp_path / "d"
    assert run(ODE, out, "--chunk-size", "6") == 0
    other = tmp_path / "other"
    assert run(ODE, other, "--chunk-size", "3") == 0
    for sub in ("runs", "series"):  # part 1 of the 3-chunking holds runs 3-5, not 6-11
        shutil.copy(other / sub / store.part_name(1), out / sub / store.part_name(1))
    assert not execute.chunk_done(out, 1, kinds.plan(cli.OdeSweep(widths=(6,), seeds=tuple(range(24)), chunk_size=6)).chunks[1],
                                json.loads((out / "manifest.json").read_text())["config_hash"])
    assert run(ODE, out, "--chunk-size", "6", "--resume") == 0
    same(tables(out), tables(reference / "ode"))


FAULTS = ["foreign", "delete_series", "delete_neurons", "truncate", "garble", "bitflip"]


def _fault(kind: str, out: Path, donor: Path, rng: random.Random) -> Path:
    name = store.part_name(1)
    if kind == "foreign":  # a part of another sweep (its own metadata, another config hash)
        target = out / "runs" / name
        shutil.copy(donor / "runs" / name, target)
    elif kind == "delete_series":
        target = out / "series" / name
        target.unlink()
    elif kind == "delete_neurons":  # only the first seeds have neuron records: chunk 0
        target = out / "neurons" / store.part_name(0)
        target.unlink()
    else:
        target = out / "series" / name
        data = bytearray(target.read_bytes())
        if kind == "truncate":
            data = data[: len(data) // 2]
        elif kind == "garble":
            data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
        else:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_part_is_refused_by_readers_and_recomputed_by_resume(fault, reference, tmp_path, capsys):
    out = tmp_path / "d"
    shutil.copytree(reference / "four", out)
    target = _fault(fault, out, reference / "donor", random.Random(fault))
    # readers: one line naming the part, exit 2, never other numbers
    with pytest.raises(store.ConfigError, match=target.name):
        load(out)
    capsys.readouterr()
    assert cli.main(["plot", "phases", str(out), "--output", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert target.name in err and len(err.strip().splitlines()) == 1
    assert cli.main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 2
    assert target.name in capsys.readouterr().err
    # resume recomputes exactly that chunk, and the tables equal the uninterrupted ones
    assert run(FOUR, out, "--chunk-size", "2", "--resume") == 0
    assert json.loads((out / "manifest.json").read_text())["chunks_computed"] == 1
    same(tables(out), tables(reference / "four"))
    load(out)


def test_many_single_bit_flips_never_give_other_numbers(reference, tmp_path):
    """196 of 800 flips used to read back as different values (t_star 0.16 → 0.33, run_id 20 →
    72340172838076692); every flip of a recorded byte is now refused, by the checksum."""
    out = tmp_path / "d"
    shutil.copytree(reference / "ode", out)
    files = sorted(out.glob("*/part-*.parquet"))
    rng = random.Random(0)
    for _ in range(200):
        target = rng.choice(files)
        original = target.read_bytes()
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        with pytest.raises(store.ConfigError, match=target.name):
            store.read_table(out, target.parent.name)
        target.write_bytes(original)
    same(tables(out), tables(reference / "ode"))
    load(out)


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(reference, tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    with store.DirectoryLock(out):
        assert run(ODE, out) == 2
        err = capsys.readouterr().err
        assert "is being written by condense pid" in err and len(err.strip().splitlines()) == 1
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    assert run(ODE, out, "--chunk-size", "6") == 0  # released: the next writer proceeds
    same(tables(out), tables(reference / "ode"))


def _condense(args, out, *extra, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "condense_jax.cli", args[0], "--out", str(out), *args[1:], *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_two_processes_with_different_configs_never_mix(reference, tmp_path):
    """Started together into one --out, both passed the check and in 3 of 5 tries both exited 0.
    Now exactly one writes; the other is refused (lock, or the other configuration) with exit 2,
    and the directory holds the winner's sweep, whole."""
    for attempt in range(2):
        out = tmp_path / f"d{attempt}"
        a = _condense(ODE, out, "--chunk-size", "6")
        b = _condense(ODE, out, "--chunk-size", "6", "--scale-c", "0.5")
        ra, rb = a.wait(timeout=300), b.wait(timeout=300)
        errs = a.stderr.read() + b.stderr.read()
        assert sorted([ra, rb]) == [0, 2], errs
        winner = json.loads((out / "manifest.json").read_text())
        assert winner["complete"]
        frames = load(out)
        assert len(frames["runs"]) == 24 and frames["runs"]["run_id"].is_unique
        assert set(frames["runs"]["scale_c"]) == {winner["config"]["scale_c"][0]}


def test_sigkill_leaves_no_stale_lock_and_the_next_writer_removes_temporaries(reference, tmp_path):
    out = tmp_path / "d"
    proc = _condense(ODE, out, "--chunk-size", "3")
    t0 = time.monotonic()
    while not (out / "manifest.json").exists():
        assert proc.poll() is None and time.monotonic() - t0 < 120
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    stale = out / "series" / f".{store.part_name(5)}.tmp-999999"  # as a kill between write and rename leaves it
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half a file")
    assert run(ODE, out, "--chunk-size", "3", "--resume") == 0  # the lock died with its holder
    assert not list(out.rglob(".*.tmp-*"))
    frames = load(out)
    assert sorted(frames["runs"]["run_id"]) == list(range(24))


def test_load_verifies_and_returns_every_table(reference):
    frames = load(reference / "four")
    assert set(frames) == {"runs", "series", "neurons"}
    manifest = json.loads((reference / "four" / "manifest.json").read_text())
    for table, parts in manifest["parts"].items():
        assert sum(e["rows"] for e in parts.values()) == len(frames[table])


@pytest.mark.parametrize("name, args, chunk", [("ode", ODE, "6"), ("train", TRAIN, "2"), ("four", FOUR, "2"),
                                               ("train_ff", TRAIN_FF, "2")])
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_tables(name, args, chunk, reference, tmp_path):
    """Fault injection: each kind is killed (SIGKILL: no handler, no cleanup) at random moments,
    resumed after each kill, and finally resumed to the end; the tables equal an uninterrupted
    run's, table for table."""
    rng = random.Random(name)
    out = tmp_path / "d"
    kills = 0
    for _ in range(3):
        resume = ["--resume"] if (out / "manifest.json").exists() else []
        proc = _condense(args, out, "--chunk-size", chunk, *resume)
        if rng.random() < 0.3:  # during start-up, before or just after the manifest
            time.sleep(rng.uniform(0.5, 3.0))
        else:  # while chunks are being written
            t0 = time.monotonic()
            while not list(out.glob("chunks/part-*.json")) and proc.poll() is None and time.monotonic() - t0 < 120:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=120)
    final = _condense(args, out, "--chunk-size", chunk, *(["--resume"] if (out / "manifest.json").exists() else []))
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    same(tables(out), tables(reference / name))
    load(out)
    assert kills >= 1
    if name == "train_ff":  # runs handed over from the effective dynamics and runs on GD from step 0, both resumed
        k_h = load(out)["runs"]["fast_forward_step"]
        assert (k_h > 0).any() and (k_h == 0).any()
