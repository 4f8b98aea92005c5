"""condense_jax: sweeps of the training dynamics of small-initialised networks.

The command line (`condense`) is the main interface; from Python, `load(DIR)` reads a result
directory's tables, every part verified against the manifest. The numerics live in the modules
(blowup, train, relu_flow, …); importing this package changes no global JAX setting.
"""

from .store import load

__all__ = ["load"]
