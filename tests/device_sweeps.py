"""Every kind of sweep, small, in one process: `python tests/device_sweeps.py OUT [--controls]`.

tests/test_devices.py runs this at 1, 2 and 4 XLA host devices (XLA_FLAGS set by the caller) and
compares the tables. With --controls it also compiles two programs that must be caught by the
test's scan of the dumped HLO: a shard_map with a psum (a collective) and an eigvalsh (a LAPACK
custom call), so that the scan is shown to find what it looks for.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

KINDS = {
    "ode": ["ode", "--widths", "6", "--seeds", "5"],
    "ode_shared": ["ode", "--widths", "6", "--seeds", "5", "--stepping", "shared"],
    "ode_series_t": ["ode", "--widths", "6", "--seeds", "3", "--series-t", "0.1", "0.2"],
    "ode_depth4": ["ode", "--widths", "4", "--seeds", "3", "--depth", "4"],
    "three_layer": ["train", "--widths", "8", "--seeds", "3", "--init-scales", "1e-2", "1e-3", "--steps", "100"],
    # the command that aborted on an all-gather under shard_map (issue #16), scaled down
    "two_layer_relu64": ["train", "--model", "two-layer", "--activation", "relu", "--bias", "--n", "20", "--widths", "16",
                         "--gammas", "0.5", "2.5", "--gamma-primes", "-0.5", "0.5", "--seeds", "3", "--lr", "0.5",
                         "--lr-ntk", "1.0", "--loss-threshold", "1e-2", "--steps", "300", "--dtype", "float64"],
    # fast-forward (issue #20): ε = 0.1 on GD from step 0, ε = 1e-2 handed over from the effective dynamics
    "three_layer_ff": ["train", "--widths", "5", "--seeds", "3", "--init-scales", "1e-1", "1e-2", "--steps", "600",
                       "--lr", "0.1", "--fast-forward"],
    "deep_linear": ["train", "--model", "deep-linear", "--widths", "6", "--seeds", "3", "--steps", "50", "--data", "fig3"],
    "cnn": ["train", "--model", "cnn", "--widths", "3", "--seeds", "3", "--steps", "20", "--n", "20"],
    "four_phases_gd": ["four-phases", "--widths", "8", "--seeds", "3", "--init-scales", "1e-2", "1e-4", "--n", "30",
                       "--t-max", "100", "--n-records", "20"],
    "four_phases_gf": ["four-phases", "--widths", "8", "--seeds", "3", "--init-scales", "1e-2", "--n", "30",
                       "--t-max", "50", "--n-records", "20", "--method", "gf", "--dtype", "float64"],
    # the command that hung in eigvalsh under shard_map (issue #16), scaled down
    "four_phases_digits": ["four-phases", "--data", "digits", "--n", "40", "--widths", "8", "--seeds", "3",
                           "--init-scales", "1e-2", "--t-max", "50", "--n-records", "15"],
}


def controls() -> None:
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(jax.local_devices()), ("i",))

    def collective_control(x):
        return jax.lax.psum(x, "i")

    f = jax.jit(jax.shard_map(collective_control, mesh=mesh, in_specs=PartitionSpec("i"), out_specs=PartitionSpec()))
    f(jnp.ones(len(jax.local_devices()))).block_until_ready()

    def lapack_control(x):
        return jnp.linalg.eigvalsh(x @ jnp.swapaxes(x, 1, 2))

    jax.jit(lapack_control)(jnp.ones((2, 3, 3))).block_until_ready()


def main() -> int:
    from condense_jax import cli

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, args in KINDS.items():
        t0 = time.monotonic()
        rc = cli.main([args[0], "--out", str(out / name), *args[1:], "--quiet", "--no-figure"])
        print(f"{name}: exit {rc}, {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        if rc != 0:
            return rc
    if "--controls" in sys.argv:
        controls()
    return 0


if __name__ == "__main__":
    sys.exit(main())
