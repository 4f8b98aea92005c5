"""Behaviour unchanged across a revision (issue #18's restructure): the same tables from the same
commands, column by column, and a sweep written by the old revision resumed by the new one.

    python benchmarks/compare_revisions.py --before 46af76a          # against the working tree
    python benchmarks/compare_revisions.py --before 46af76a --quick  # one command per kind
    python benchmarks/compare_revisions.py --before 46af76a --widened  # allow #19's wider column types

Every command runs in a fresh process of each revision (its own checkout, `git worktree` of
--before), CPU only, no compilation cache. For each, every table of the result directory must hold
the same columns with the same dtypes and the same values, bit for bit (NaN equal to NaN), and the
manifests the same config hash. Then a sweep of every kind written by --before, with one chunk's
part deleted, is completed by the new revision's `--resume` and must equal the uninterrupted one.
tests/test_revisions.py runs the --quick set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from condense_jax.engine import store

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--quiet", "--no-figure"]
COMMANDS = {  # name -> condense arguments (no --out)
    "ode": ["ode", "--widths", "4", "7", "--seeds", "5", "--scale-c", "1", "0.4", "--chunk-size", "4"],
    "ode_depth4": ["ode", "--depth", "4", "--widths", "4", "--seeds", "3"],
    "ode_shared": ["ode", "--widths", "5", "--seeds", "6", "--stepping", "shared", "--series-t", "0.1", "0.5", "1"],
    "train_three_layer": ["train", "--widths", "6", "--seeds", "3", "--init-scales", "1e-2", "1e-3", "--steps", "60",
                          "--chunk-size", "2"],
    "train_two_layer_grid": ["train", "--model", "two-layer", "--activation", "relu", "--widths", "8", "16", "--gammas", "0.5",
                             "2", "--gamma-primes", "0", "1", "--seeds", "2", "--steps", "50", "--no-predict"],
    "train_deep_linear": ["train", "--model", "deep-linear", "--data", "fig3", "--widths", "6", "--seeds", "2", "--steps", "40"],
    "train_cnn": ["train", "--model", "cnn", "--widths", "2", "--seeds", "2", "--n", "40", "--steps", "20", "--no-predict"],
    "four_phases": ["four-phases", "--widths", "6", "--seeds", "4", "--init-scales", "1e-2", "1e-4", "--n", "20", "--t-max", "60",
                    "--n-records", "12", "--chunk-size", "2"],
    "four_phases_gf": ["four-phases", "--method", "gf", "--dtype", "float64", "--widths", "5", "--seeds", "2",
                       "--init-scales", "1e-2", "--n", "16", "--t-max", "20", "--n-records", "8"],
}
QUICK = ("ode", "train_three_layer", "four_phases")
RESUMED = ("ode", "train_three_layer", "four_phases")  # multi-chunk: one part deleted, then --resume


def checkout(rev: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(where), rev], cwd=ROOT, check=True,
                   capture_output=True)
    return where


def condense(tree: Path, args, out: Path, *extra, cache: bool = False) -> None:
    """`condense ARGS --out OUT` with `tree`'s package in a fresh process; cache: use the
    compilation cache of the environment (the tests' own), else none (a compiled program gives
    the same bits either way; the cache only saves compile time)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "JAX_PLATFORMS": "cpu"}
    if not cache:
        env["CONDENSE_JAX_NO_CACHE"] = "1"
    res = subprocess.run([sys.executable, "-m", "condense_jax.cli", *args, "--out", str(out), *QUIET, *extra],
                         capture_output=True, text=True, env=env, cwd=tree)
    if res.returncode != 0:
        raise RuntimeError(f"{tree}: condense {' '.join(args)} exited {res.returncode}: {res.stderr[-1500:]}")


SORT_KEYS = ("run_id", "seed", "tau", "t", "step", "neuron", "record", "layer")


def tables(out: Path) -> dict:
    """Every table of a result directory as its part files hold them (read without the store's
    checks: a comparison must also see a damaged directory), in one fixed row order; the helper
    the tests and benchmarks share (tests/helpers.py re-exports it)."""
    frames = {}
    for sub in sorted(p for p in Path(out).iterdir() if p.is_dir() and list(p.glob("part-*.parquet"))):
        try:
            frame = pd.read_parquet(sub)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # parts of two versions' types
            frame = store._read_parts(sorted(sub.glob("part-*.parquet")))
        keys = [k for k in SORT_KEYS if k in frame]
        frames[sub.name] = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    return frames


def differences(a: Path, b: Path, widened: bool = False) -> list[str]:
    """Every way the result directories differ: tables, columns, dtypes, values, config hash.

    widened: `b` may store a column in the store's wider types (issue #19: float32 → float64,
    int32 → int64, text → categorical, a flat cosine list → its matrix of rows) as long as every
    value is the same after that exact conversion."""
    ta, tb = tables(a), tables(b)
    out = []
    if sorted(ta) != sorted(tb):
        out.append(f"tables {sorted(ta)} vs {sorted(tb)}")
    for name in sorted(set(ta) & set(tb)):
        fa, fb = ta[name], tb[name]
        if list(fa.columns) != list(fb.columns):
            out.append(f"{name}: columns differ: {sorted(set(fa.columns) ^ set(fb.columns))} (or their order)")
            continue
        if len(fa) != len(fb):
            out.append(f"{name}: {len(fa)} vs {len(fb)} rows")
            continue
        for col in fa.columns:
            if fa[col].dtype != fb[col].dtype and not (widened and _widening(fa[col], fb[col])):
                out.append(f"{name}.{col}: dtype {fa[col].dtype} vs {fb[col].dtype}")
            elif not _equal(*((_widen(fa[col], fb[col]), fb[col]) if widened else (fa[col], fb[col]))):
                out.append(f"{name}.{col}: values differ")
    ha, hb = (json.loads((d / "manifest.json").read_text())["config_hash"] for d in (a, b))
    if ha != hb:
        out.append(f"config hash {ha} vs {hb}")
    return out


def _widening(x: pd.Series, y: pd.Series) -> bool:
    """y's dtype is one the store widens x's to (an exact conversion)."""
    if x.dtype.kind == "f" and y.dtype == np.float64:
        return True
    if x.dtype.kind in "iu" and y.dtype == np.int64:
        return True
    return isinstance(y.dtype, pd.CategoricalDtype) and (x.dtype == object or pd.api.types.is_string_dtype(x.dtype))


def _widen(x: pd.Series, y: pd.Series) -> pd.Series:
    """x in y's representation, when y holds the widened form (values untouched: exact casts)."""
    if x.dtype == y.dtype:
        if x.dtype == object and len(x) and isinstance(y.iloc[0], np.ndarray) and y.iloc[0].dtype == object:
            return pd.Series([np.asarray(v, np.float64).reshape(len(w), -1) for v, w in zip(x, y)])  # flat list → rows
        return x
    return x.astype(y.dtype)


def _equal(x: pd.Series, y: pd.Series) -> bool:
    if x.dtype.kind in "fc":
        u, v = x.to_numpy(), y.to_numpy()
        return bool(np.array_equal(u.view(np.uint8), v.view(np.uint8)) or np.array_equal(u, v, equal_nan=True))
    if x.dtype == object:
        return all(np.array_equal(_rows(p), _rows(q)) if isinstance(p, (list, np.ndarray)) else p == q or (p != p and q != q)
                   for p, q in zip(x, y))
    return bool(x.equals(y))


def _rows(v) -> np.ndarray:
    """A list value as an array (a list of row arrays, as Parquet gives a matrix back, stacked)."""
    return np.stack(v) if isinstance(v, np.ndarray) and v.dtype == object and len(v) else np.asarray(v)


def compare(before: str, names, resumed=(), log=print, widened: bool = False, cache: bool = False) -> dict[str, list[str]]:
    """{command or resume name: differences} (empty lists: equal)."""
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = checkout(before, tmp / "before")
        try:
            for name in names:
                args = COMMANDS[name]
                condense(old, args, tmp / f"{name}.before", cache=cache)
                condense(ROOT, args, tmp / f"{name}.after", cache=cache)
                found[name] = differences(tmp / f"{name}.before", tmp / f"{name}.after", widened)
                log(f"{name}: {'same tables' if not found[name] else '; '.join(found[name])}")
            for name in resumed:
                args, whole = COMMANDS[name], tmp / f"{name}.before"
                if not whole.exists():
                    condense(old, args, whole, cache=cache)
                part = tmp / f"{name}.resumed"
                shutil.copytree(whole, part)
                manifest = json.loads((part / "manifest.json").read_text())
                manifest["complete"] = False  # as an interrupted sweep's provisional manifest
                (part / "manifest.json").write_text(json.dumps(manifest))
                for t in (p for p in part.iterdir() if p.is_dir()):
                    for f in t.glob("part-00001.parquet"):
                        f.unlink()
                condense(ROOT, args, part, "--resume", cache=cache)
                key = f"{name} (written by {before}, resumed by this tree)"
                found[key] = differences(whole, part, widened)
                log(f"{key}: {'same tables' if not found[key] else '; '.join(found[key])}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the old revision (e.g. 46af76a, the last commit before #18)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--widened", action="store_true",
                    help="accept the wider column types of issue #19 (float64, int64, categoricals, matrices) when every value is equal")
    args = ap.parse_args()
    names = QUICK if args.quick else tuple(COMMANDS)
    found = compare(args.before, names, RESUMED, widened=args.widened)
    bad = {k: v for k, v in found.items() if v}
    print(f"{len(found) - len(bad)} of {len(found)} equal")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
