"""Fault injection at scale (issue #17): what survives, counted. Not part of the test suite (which
injects a few of each kind of fault); this runs many and prints the counts.

* SIGKILL at random moments of a sweep of each kind, resumed after each kill, then resumed to the
  end: the tables must equal an uninterrupted run's, bit for bit;
* single-bit flips at random bytes of random parts of a finished sweep: every flip must be refused
  by the reader (`store.read_table`) with one line naming the part, never read back as numbers;
* damaged parts (copied from another sweep, deleted, truncated, garbled): refused by the readers,
  recomputed by --resume to the uninterrupted tables;
* two processes with different configurations started together into one --out: exactly one
  writes, the other is refused, and the directory holds the winner's sweep, whole.

    python benchmarks/fault_campaign.py --kills 20 --flips 800 --races 10
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from compare_revisions import tables  # noqa: E402  (the reader every comparison shares; this script's folder)

from condense_jax import load  # noqa: E402
from condense_jax.engine import store  # noqa: E402

KINDS = {
    "ode": ["ode", "--widths", "6", "--seeds", "24", "--chunk-size", "6"],
    "train": ["train", "--widths", "5", "--seeds", "6", "--init-scales", "1e-2", "1e-3", "--steps", "40", "--no-predict",
              "--chunk-size", "2"],
    "four": ["four-phases", "--widths", "6", "--seeds", "8", "--init-scales", "1e-2", "1e-4", "--n", "20", "--t-max", "60",
             "--n-records", "15", "--chunk-size", "2"],
}


def condense(args, out, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "condense_jax.cli", args[0], "--out", str(out), *args[1:], *extra,
                             "--quiet", "--no-figure"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def same(a, b) -> bool:
    try:
        assert set(a) == set(b)
        for t in a:
            pd.testing.assert_frame_equal(a[t], b[t])
        return True
    except AssertionError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs per kind of sweep")
    ap.add_argument("--flips", type=int, default=800)
    ap.add_argument("--races", type=int, default=10)
    args = ap.parse_args()
    rng = random.Random(0)
    base = Path(tempfile.mkdtemp())
    refs = {}
    for name, cmd in KINDS.items():
        p = condense(cmd, base / f"ref-{name}")
        assert p.wait() == 0, p.stderr.read()
        refs[name] = tables(base / f"ref-{name}")
    # kills
    for name, cmd in KINDS.items():
        out, kills, resumes = base / f"kill-{name}", 0, 0
        while kills < args.kills:
            proc = condense(cmd, out, *(["--resume"] if (out / "manifest.json").exists() else []))
            time.sleep(rng.uniform(0.3, 4.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            resumes += 1
            if (out / "manifest.json").exists() and store.read_manifest(out).get("complete"):
                shutil.rmtree(out)  # finished before the kill: start the next round afresh
        proc = condense(cmd, out, *(["--resume"] if (out / "manifest.json").exists() else []))
        ok = proc.wait() == 0 and same(tables(out), refs[name])
        print(f"{name}: {kills} SIGKILLs over {resumes} starts, then resumed to the end: tables equal the "
              f"uninterrupted run's: {ok}; temporaries left: {len(list(out.rglob('.*.tmp-*')))}", flush=True)
    # bit flips
    src = base / "ref-ode"
    files = sorted(src.glob("*/part-*.parquet"))
    refused = silent = 0
    for _ in range(args.flips):
        target = rng.choice(files)
        original = target.read_bytes()
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        try:
            store.read_table(src, target.parent.name)
            silent += 1
        except store.ConfigError as e:
            refused += target.name in str(e)
        target.write_bytes(original)
    print(f"bit flips: {args.flips} injected, {refused} refused naming the part, {silent} read back silently", flush=True)
    # races
    won = mixed = 0
    for i in range(args.races):
        out = base / f"race-{i}"
        a = condense(KINDS["ode"], out)
        b = condense(KINDS["ode"], out, "--scale-c", "0.5")
        codes = sorted([a.wait(), b.wait()])
        frames = load(out)
        whole = len(frames["runs"]) == 24 and frames["runs"]["run_id"].is_unique and frames["runs"]["scale_c"].nunique() == 1
        won += codes == [0, 2] and whole
        mixed += not whole
    print(f"two writers with different configs, started together: {args.races} races, {won} with exactly one "
          f"writer and a whole directory, {mixed} mixed", flush=True)
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
