"""Helpers shared by the tests: the CLI in this process and in a fresh one, and `tables` (every table
of a result directory in one row order, the benchmarks' own reader)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from compare_revisions import tables  # noqa: F401  (every table in one row order; benchmarks/, on the path by conftest.py)

from condense_jax import cli

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args, capsys):
    """`condense ARGS` in this process: (exit code, stdout, stderr); argparse's own usage errors
    (SystemExit) are returned as their code."""
    try:
        code = cli.main(args)
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def condense(args, **kw) -> subprocess.Popen:
    """`condense ARGS` in a fresh process (pipes for stdout and stderr, unbuffered, CPU only)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "condense_jax.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)
