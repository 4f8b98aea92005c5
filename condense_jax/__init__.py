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

from .api import run as run
from .engine.store import load as load
from .errors import ConfigError as ConfigError
from .four_phases.spec import FourPhaseSweep as FourPhaseSweep
from .gd.spec import TrainSweep as TrainSweep
from .kinds import load_spec as load_spec
from .ode.spec import OdeSweep as OdeSweep


def solve_blowup(a, b, c, options=None, chunk_size: int | None = None):
    """T* and diagnostics of the three-layer effective ODE (3.10) from explicit starts: a (B, m),
    b (B, m, m), c (B, m) (or one start). Returns (runs, series) DataFrames (ode.sweep.solve_blowup)."""
    from .ode.sweep import solve_blowup as solve

    return solve(a, b, c, options, chunk_size)


def make_train(spec, x, y):
    """A pure `train(key, scale)` for one training run (gd.train.make_train): jit and vmap it."""
    from .gd.train import make_train as make

    return make(spec, x, y)


def __getattr__(name):  # TrainSpec without importing JAX at package import
    if name == "TrainSpec":
        from .gd.train import TrainSpec

        return TrainSpec
    raise AttributeError(f"module 'condense_jax' has no attribute {name!r}")


__all__ = ["ConfigError", "FourPhaseSweep", "OdeSweep", "TrainSpec", "TrainSweep", "load", "load_spec", "make_train", "run",
           "solve_blowup"]
