"""condense_jax: sweeps of the training dynamics of small-initialised networks.

The command line (`condense`) is the main interface. From Python:

    import condense_jax as cj
    cj.run("quickstart", out="q")          # any sweep, as `condense run` (spec object, TOML path or name)
    tables = cj.load("q")                  # its tables, every part verified against the manifest
    runs, series = cj.solve_blowup(a, b, c)   # T* of the effective ODE from explicit starts
    train = cj.make_train(cj.TrainSpec(...), x, y)   # one pure, jittable training run

Importing this package changes no global JAX setting: float64 is switched on by the entry points
that need it (the ODE solver, float64 training), never on import.
"""

import importlib

# the public names, imported on first use (PEP 562): `import condense_jax` runs no module of the
# package, so the `condense` command is inside its own code (and its Ctrl-C handling) at once
_LAZY = {
    "run": "api",
    "load": "engine.store",
    "ConfigError": "errors",
    "FourPhaseSweep": "four_phases.spec",
    "TrainSweep": "gd.spec",
    "load_spec": "kinds",
    "OdeSweep": "ode.spec",
    "TrainSpec": "gd.train",  # without importing JAX before it is used
}


def solve_blowup(a, b, c, options=None, chunk_size: int | None = None):
    """T* and diagnostics of the three-layer effective ODE (3.10) from explicit starts: a (B, m),
    b (B, m, m), c (B, m) (or one start). Returns (runs, series) DataFrames (ode.sweep.solve_blowup)."""
    from .ode.sweep import solve_blowup as solve

    return solve(a, b, c, options, chunk_size)


def make_train(spec, x, y):
    """A pure `train(key, scale)` for one training run (gd.train.make_train): jit and vmap it."""
    from .gd.train import make_train as make

    return make(spec, x, y)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups are ordinary attribute reads
        return value
    raise AttributeError(f"module 'condense_jax' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = ["ConfigError", "FourPhaseSweep", "OdeSweep", "TrainSpec", "TrainSweep", "load", "load_spec", "make_train", "run",
           "solve_blowup"]
