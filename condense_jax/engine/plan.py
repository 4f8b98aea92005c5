"""A sweep as planned work: its chunks (one numbered part of every table each) and the seed keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One unit of a sweep's work, written as one numbered part of every table.

    `key` says what it covers (JSON: widths, seeds, grid points); the list of keys is the sweep's
    plan, kept in the manifest, so that `--resume` can tell which parts are missing and refuse a
    different chunking. `compute()` runs it and returns {table name: DataFrame} (or (runs, series)).
    """

    key: dict
    n_runs: int
    compute: Callable[[], dict | tuple]
    nbytes: float = float("nan")  # estimated working set of the compiled call (for --dry-run)
    lower: Callable[[], object] | None = None  # jax.stages.Lowered of the chunk's call, to compile without running


class Plan(NamedTuple):
    """A sweep ready to run: what goes in the manifest, and its chunks (nothing computed yet)."""

    config: dict
    config_hash: str
    n_runs: int
    name: str
    chunks: list[Chunk]


def seed_keys(seeds, width: int):
    """One PRNG key per seed, folded with the width: a seed has the same directions at every scale."""
    import jax

    return jax.numpy.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), int(width)) for s in seeds])
