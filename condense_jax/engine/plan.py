"""A sweep as planned work: its chunks (one numbered part of every table each), the seed keys, and
the shape helpers every family shares (padding a chunk to one compiled shape, data digests)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np


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
    columns: dict | None = None  # the data dictionary {table: {column: Column}} (engine/columns.py)


def seed_keys(seeds, width: int):
    """One PRNG key per seed, folded with the width: a seed has the same directions at every scale."""
    import jax

    return jax.numpy.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), int(width)) for s in seeds])


def array_digest(*arrays) -> str:
    """16 hex digits of the SHA-256 of the arrays' bytes (C order): the digest of a sweep's data or
    explicit starts in its configuration, so a changed file is another sweep."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in arrays)).hexdigest()[:16]


def pad_rows(v, n: int) -> np.ndarray:
    """`v` with its first row repeated up to `n` rows: every chunk of a sweep (or share of a
    device) then has one shape, so one compiled call serves them all; the caller drops the padding."""
    v = np.asarray(v)
    return np.concatenate([v, np.repeat(v[:1], n - len(v), 0)]) if n > len(v) else v
