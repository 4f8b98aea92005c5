"""The freeze rule every stepped integrator of the package shares (gd/train.py, four_phases/dynamics.py):
a run whose loss is non-finite or exceeds `diverge_factor` × its initial loss is diverged and frozen
at its last finite parameters; one whose loss reaches `loss_threshold` (> 0) is converged and frozen
there. Its batch-mates run on: one run never takes its batch down."""

from __future__ import annotations

import jax
import jax.numpy as jnp

RUNNING, DIVERGED, CONVERGED = 0, 1, 2  # status codes (the families add their own after these)


def select(flag, new, old):
    """`new` where flag, else `old`, leaf by leaf (a pytree of parameters)."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(flag, n, o), new, old)


def judge(status, loss, loss0, diverge_factor: float, loss_threshold: float):
    """(bad, done, status): whether the loss at this step diverges or converges a running run, and
    the updated status (a frozen run keeps its status)."""
    running = status == RUNNING
    bad = running & (~jnp.isfinite(loss) | (loss > diverge_factor * loss0))
    done = running & ~bad & (loss_threshold > 0) & (loss <= loss_threshold)
    return bad, done, jnp.where(bad, DIVERGED, jnp.where(done, CONVERGED, status))
