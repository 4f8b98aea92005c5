"""Shared test set-up (diffrax's style): float64 for the whole session, no persistent compilation
cache, the `slow` marker, and the helpers in helpers.py.

* x64 on for every test, as in diffrax's test/conftest.py: the effective ODE's tests need it, and a
  worker that imports several test modules must not depend on their order. The package itself
  never switches it on at import (tests/test_imports.py checks that in a fresh process); float32
  training is tested through its explicit dtype.
* CONDENSE_JAX_NO_CACHE=1: no test reads or writes ~/.cache/condense_jax (cold compiles, as a
  first run sees them; tests/test_docs.py measures the cache separately).
* `slow`: fresh processes and end-to-end sweeps; `pytest -m "not slow"` runs the rest in about
  two minutes, `.ci/run` runs everything.
"""

import os

import jax

os.environ["CONDENSE_JAX_NO_CACHE"] = "1"
jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: fresh processes or end-to-end sweeps (deselect with -m 'not slow')")
