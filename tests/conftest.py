"""Shared test set-up (diffrax's style): float64 for the whole session, the compilation cache kept
away from the user's, the `slow` marker; the shared helpers are in helpers.py.

* x64 on for every test, as in diffrax's test/conftest.py: the effective ODE's tests need it, and a
  worker that imports several test modules must not depend on their order. The package itself
  never switches it on at import (tests/test_imports.py checks that in a fresh process); float32
  training is tested through its explicit dtype.
* The user's persistent compilation cache (~/.cache/condense_jax) is never read or written by a
  test: XDG_CACHE_HOME points at a cache of the tests' own (~/.cache/condense_jax_tests, or
  $CONDENSE_JAX_TEST_CACHE), so a stale or foreign entry of the user's can neither break nor
  speed up a test. CONDENSE_JAX_TEST_CACHE=fresh gives every session an empty one (a cold run, as
  on a new machine: the suite then takes about 40 % longer).
* `slow`: fresh processes and end-to-end sweeps; `pytest -m "not slow"` runs the rest in about
  two and a half minutes on 2 cores (warm cache), `.ci/run` runs everything (about 8 minutes).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # helpers shared with the benchmarks

_cache = os.environ.get("CONDENSE_JAX_TEST_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "condense_jax_tests"))
if _cache == "fresh":  # one empty folder per session (the xdist workers inherit the controller's environment)
    _cache = os.environ["CONDENSE_JAX_TEST_CACHE"] = tempfile.mkdtemp(prefix="condense-jax-test-cache-")
    os.environ["CONDENSE_JAX_TEST_CACHE_FRESH"] = _cache
os.environ["XDG_CACHE_HOME"] = _cache
jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: fresh processes or end-to-end sweeps (deselect with -m 'not slow')")


def pytest_unconfigure(config):
    fresh = os.environ.get("CONDENSE_JAX_TEST_CACHE_FRESH")
    if fresh and not hasattr(config, "workerinput"):  # the controller (or a run without xdist) cleans up
        shutil.rmtree(fresh, ignore_errors=True)
