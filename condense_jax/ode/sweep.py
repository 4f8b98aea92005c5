"""The ODE sweep: expand an OdeSweep into runs, draw the starts, solve in fixed-size chunks."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..engine.execute import execute
from ..engine.plan import Chunk, Plan, array_digest, pad_rows
from .columns import COLUMNS
from .spec import OdeSweep

RUN_COLUMNS = (
    "run_id", "init_index", "seed", "width", "depth", "scale_a", "scale_b", "scale_c", "E0", "t_star",
    "t_star_thm1_bound", "t_final_stage", "status", "theory_status", "assumption1", "frac_diverging", "min_cos_xi",
    "adot_over_a2", "b_top_share", "tau_end", "num_steps", "growth_log",
)


def ode_grid(spec: OdeSweep):
    """One row per run, in a fixed order (width, scale_a, scale_b, scale_c, seed): run_id = row."""
    import pandas as pd

    rows = itertools.product(spec.widths, spec.scale_a, spec.scale_b, spec.scale_c, spec.seeds)
    grid = pd.DataFrame(rows, columns=["width", "scale_a", "scale_b", "scale_c", "seed"])
    grid.insert(0, "run_id", np.arange(len(grid), dtype=np.int64))
    grid["depth"] = spec.depth
    return grid


def sample_starts(seed: int, width: int, depth: int, scales: tuple[float, float, float]) -> list[np.ndarray]:
    """One Gaussian start: a ~ N(0, σ_a²), each hidden W ~ N(0, σ_b²), c ~ N(0, σ_c²).

    The generator is seeded by (seed, width) only, so a seed has the same directions at every scale.
    """
    rng = np.random.default_rng([seed, width])
    sa, sb, sc = scales
    a = sa * rng.standard_normal(width)
    middle = [sb * rng.standard_normal((width, width)) for _ in range(depth - 2)]
    c = sc * rng.standard_normal(width)
    return [a, *middle, c]


def solver_options(spec: OdeSweep):
    from .blowup import SolverOptions

    return SolverOptions(
        rtol=spec.rtol, atol=spec.atol, tau_max=spec.tau_max, series_dtau=spec.series_dtau,
        record_pairs=spec.pair_counts, series_t=spec.series_t, series_E=spec.series_E, stepping=spec.stepping,
    )


def _solver(depth: int, options) -> Callable:
    from . import blowup

    if depth == 3:
        return lambda a, b, c: blowup.solve_three_layer(a, b, c, options)
    return lambda *params: blowup.solve_deep(params, options)


def _frames(res, run_ids: np.ndarray, extra):
    """Runs and series frames of one solved chunk; `extra` holds the grid columns of those runs."""
    import pandas as pd

    from .blowup import series_frame

    runs = pd.DataFrame(res.runs)
    for col in extra.columns:
        runs[col] = extra[col].to_numpy()
    runs["run_id"] = run_ids
    for col in RUN_COLUMNS:
        if col not in runs:
            runs[col] = np.nan
    runs = runs[list(RUN_COLUMNS) + [c for c in runs.columns if c not in RUN_COLUMNS]]
    runs["status"] = runs["status"].astype(str)
    for col in ("seed", "init_index"):
        runs[col] = pd.array(runs[col], dtype="Int64")
    series = series_frame(res, run_ids)
    return runs, series


def plan_ode_sweep(spec: OdeSweep) -> Plan:
    return Plan(spec.to_dict(), spec.config_hash(), spec.n_runs, spec.name, ode_chunks(spec), COLUMNS)


def ode_chunks(spec: OdeSweep) -> list[Chunk]:
    """The sweep's chunks: per width, fixed-size ranges of its runs (blowup.chunk_ranges)."""
    from .blowup import auto_chunk_size, bytes_per_start, chunk_ranges, solve_range

    grid = ode_grid(spec)
    solve = _solver(spec.depth, solver_options(spec))
    chunks = []
    for width, group in grid.groupby("width", sort=False):
        run_ids = group["run_id"].to_numpy()
        extra = group.drop(columns=["run_id"]).reset_index(drop=True)
        size = spec.chunk_size or auto_chunk_size(int(width), spec.depth)

        def arrays_of(lo, hi, group=group, width=int(width), size=size):
            """The chunk's starts, padded to the chunk size (one compiled shape per width)."""
            starts = [sample_starts(int(r.seed), width, spec.depth, (r.scale_a, r.scale_b, r.scale_c))
                      for r in group.iloc[lo:hi].itertuples()]
            return [np.stack(v) for v in zip(*starts)], (size if len(group) > size else hi - lo)

        def compute(lo, hi, arrays_of=arrays_of, run_ids=run_ids, extra=extra):
            arrays, padded = arrays_of(lo, hi)
            res = solve_range(solve, arrays, 0, hi - lo, padded)
            return _frames(res, run_ids[lo:hi], extra.iloc[lo:hi])

        def lower(lo, hi, arrays_of=arrays_of):
            from .blowup import lower_first_segment

            arrays, padded = arrays_of(lo, hi)
            arrays = [pad_rows(v, padded) for v in arrays]
            return lower_first_segment(*arrays, solver_options(spec))

        for lo, hi in chunk_ranges(len(group), size):
            chunks.append(Chunk({"width": int(width), "runs": [int(run_ids[lo]), int(run_ids[hi - 1])]}, hi - lo,
                                functools.partial(compute, lo, hi),
                                nbytes=min(size, len(group)) * bytes_per_start(int(width), spec.depth),
                                lower=functools.partial(lower, lo, hi) if spec.depth == 3 else None))
    return chunks


def run_ode_init(a, b, c, out: Path, spec: OdeSweep, source: str, progress: bool = True, resume: bool = False) -> dict:
    """Solve explicit starts (from `condense ode --init`), one row per start in file order."""

    digest = array_digest(a, b, c)
    config = {**spec.to_dict(), "init_file": source, "init_sha256": digest, "widths": [a.shape[1]], "seeds": None}
    chunks = _init_chunks(a, b, c, solver_options(spec), spec.chunk_size)
    return execute(Plan(config, spec.config_hash({"init_sha256": digest}), len(a), spec.name, chunks, COLUMNS), out, progress, resume)


def _init_chunks(a, b, c, options, chunk_size) -> list[Chunk]:
    """Chunks of explicit starts, run_id = init_index = row."""
    import pandas as pd

    from .blowup import auto_chunk_size, chunk_ranges, solve_range

    size = chunk_size or auto_chunk_size(a.shape[1], 3)
    solve = _solver(3, options)
    extra = pd.DataFrame({"init_index": np.arange(len(a)), "depth": 3})

    def compute(lo, hi):
        res = solve_range(solve, [a, b, c], lo, hi, size if len(a) > size else len(a))
        return _frames(res, np.arange(lo, hi), extra.iloc[lo:hi])

    return [Chunk({"runs": [lo, hi - 1]}, hi - lo, functools.partial(compute, lo, hi)) for lo, hi in chunk_ranges(len(a), size)]


def solve_blowup(a, b, c, options=None, chunk_size: int | None = None):
    """Public API: T* and diagnostics of the three-layer effective ODE from explicit starts.

    a (B, m) or (m,), b (B, m, m) or (m, m), c (B, m) or (m,). Returns (runs, series) pandas
    DataFrames: one row per start in input order, and the long-format series keyed by run_id.
    """
    import pandas as pd

    from . import blowup

    a, b, c = blowup._as_batch(a, b, c)
    frames = [chunk.compute() for chunk in _init_chunks(a, b, c, options or blowup.SolverOptions(), chunk_size)]
    return tuple(pd.concat(part, ignore_index=True) for part in zip(*frames))
