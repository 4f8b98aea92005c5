"""Sweeps: expand a spec into runs, draw the starts, solve in fixed-size chunks, write each chunk.

Host code only: the numerics live in blowup.py, the files in store.py.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import store
from .config import OdeSweep

RUN_COLUMNS = (
    "run_id", "init_index", "seed", "width", "depth", "scale_a", "scale_b", "scale_c", "E0", "t_star",
    "t_star_thm1_bound", "t_final_stage", "status", "assumption1", "frac_diverging", "min_cos_xi",
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


class Progress:
    """A tqdm bar over runs on a terminal; plain periodic lines otherwise (CI, Slurm logs)."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total, self.done, self.t0, self.last = total, 0, time.monotonic(), 0.0
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled:
            now = time.monotonic() - self.t0
            if now - self.last > 10 or self.done == self.total:
                rate = self.done / max(now, 1e-9)
                print(f"{self.done}/{self.total} runs, {rate:.1f} runs/s, {now:.0f}s", file=sys.stderr, flush=True)
                self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_chunks(out: Path, chunks, meta: dict, progress: Progress) -> dict:
    """Write each chunk's tables (runs, series, and any others) as numbered Parquet parts; return
    status counts. A chunk is a (runs, series) pair or a dict of table name → frame."""
    counts: dict[str, int] = {}
    files = []
    tables = {"runs", "series"}
    for part, chunk in enumerate(chunks):
        chunk = dict(zip(("runs", "series"), chunk)) if isinstance(chunk, tuple) else chunk
        name = store.part_name(part)
        for table, frame in chunk.items():
            if len(frame) or table in ("runs", "series"):
                store.write_table(frame, out / table / name, meta)
            elif (out / table / name).exists():  # an empty table part replaces a stale one
                (out / table / name).unlink()
            tables.add(table)
        files.append(name)
        for k, v in chunk["runs"]["status"].value_counts().items():
            counts[k] = counts.get(k, 0) + int(v)
        progress.update(len(chunk["runs"]))
    # parts left over from an earlier run of the same config with more chunks are stale
    for sub in sorted(tables):
        for p in (out / sub).glob("part-*.parquet"):
            if p.name not in files:
                p.unlink()
    return {"parts": files, "tables": sorted(t for t in tables if (out / t).is_dir()), "status_counts": counts}


def _run_into(out: Path, config: dict, config_hash: str, n_runs: int, name: str, chunks, progress: bool) -> dict:
    """Check `out`, write a provisional manifest, write every chunk, then the final manifest."""
    out = Path(out)
    store.check_out_dir(out, config_hash)
    meta = {"config": config, "config_hash": config_hash, **store.provenance()}
    store.write_manifest(out, {**meta, "complete": False, "n_runs": n_runs})
    bar = Progress(n_runs, name, progress)
    try:
        written = _write_chunks(out, chunks, meta, bar)
    finally:
        bar.close()
    manifest = {**meta, "complete": True, "n_runs": n_runs, **written}
    store.write_manifest(out, manifest)
    return manifest


def run_ode_sweep(spec: OdeSweep, out: Path, progress: bool = True) -> dict:
    """Run an ODE sweep into `out`; returns the manifest."""
    from .blowup import iter_chunks

    grid = ode_grid(spec)
    solve = _solver(spec.depth, solver_options(spec))

    def chunks():
        for width, group in grid.groupby("width", sort=False):
            starts = [
                sample_starts(int(r.seed), int(width), spec.depth, (r.scale_a, r.scale_b, r.scale_c))
                for r in group.itertuples()
            ]
            arrays = [np.stack(v) for v in zip(*starts)]
            run_ids = group["run_id"].to_numpy()
            extra = group.drop(columns=["run_id"]).reset_index(drop=True)
            for lo, hi, res in iter_chunks(solve, arrays, spec.chunk_size):
                yield _frames(res, run_ids[lo:hi], extra.iloc[lo:hi])

    return _run_into(out, spec.to_dict(), spec.config_hash(), len(grid), spec.name, chunks(), progress)


def run_ode_init(a, b, c, out: Path, spec: OdeSweep, source: str, progress: bool = True) -> dict:
    """Solve explicit starts (from `condense ode --init`), one row per start in file order."""
    import hashlib

    digest = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in (a, b, c))).hexdigest()[:16]
    config = {**spec.to_dict(), "init_file": source, "init_sha256": digest, "widths": [a.shape[1]], "seeds": None}
    chunks = _init_chunks(a, b, c, solver_options(spec), spec.chunk_size)
    return _run_into(out, config, spec.config_hash({"init_sha256": digest}), len(a), spec.name, chunks, progress)


def _init_chunks(a, b, c, options, chunk_size):
    """(runs, series) frames of explicit starts, chunk by chunk, run_id = init_index = row."""
    import pandas as pd

    from .blowup import iter_chunks

    extra = pd.DataFrame({"init_index": np.arange(len(a)), "depth": 3})
    for lo, hi, res in iter_chunks(_solver(3, options), [a, b, c], chunk_size):
        yield _frames(res, np.arange(lo, hi), extra.iloc[lo:hi])


def solve_blowup(a, b, c, options=None, chunk_size: int | None = None):
    """Public API: T* and diagnostics of the three-layer effective ODE from explicit starts.

    a (B, m) or (m,), b (B, m, m) or (m, m), c (B, m) or (m,). Returns (runs, series) pandas
    DataFrames: one row per start in input order, and the long-format series keyed by run_id.
    """
    import pandas as pd

    from . import blowup

    a, b, c = blowup._as_batch(a, b, c)
    frames = list(_init_chunks(a, b, c, options or blowup.SolverOptions(), chunk_size))
    return tuple(pd.concat(part, ignore_index=True) for part in zip(*frames))
