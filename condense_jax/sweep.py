"""Sweeps: expand a spec into runs, draw the starts, solve in fixed-size chunks, write each chunk.

Host code only: the numerics live in blowup.py, the files in store.py.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import store
from .config import OdeSweep

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


class Progress:
    """A tqdm bar over runs on a terminal (chunks, runs per second, ETA); plain periodic lines
    otherwise (CI, Slurm logs): runs and chunks done, runs per second, elapsed time and ETA."""

    def __init__(self, total: int, desc: str, enabled: bool = True, chunks: int = 0):
        self.total, self.done, self.t0, self.last = total, 0, time.monotonic(), -1e9
        self.chunks, self.chunks_done, self.skipped = chunks, 0, 0
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr)

    def update(self, n: int, skipped: bool = False) -> None:
        """n runs done; `skipped`: a chunk already on disk (--resume), left out of the rate."""
        self.done += n
        self.chunks_done += 1
        self.skipped += n if skipped else 0
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(f"chunk {self.chunks_done}/{self.chunks}")
        elif self.enabled:
            now = time.monotonic() - self.t0
            if now - self.last > 10 or self.done == self.total:
                rate = (self.done - self.skipped) / max(now, 1e-9)
                eta = (self.total - self.done) / rate if rate > 0 else float("nan")
                print(f"{self.done}/{self.total} runs, chunk {self.chunks_done}/{self.chunks}, {rate:.1f} runs/s, "
                      f"{now:.0f} s elapsed, ETA {eta:.0f} s", file=sys.stderr, flush=True)
                self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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


def plan(spec) -> Plan:
    """The Plan of any sweep spec (ODE, training, four phases)."""
    from .config import FourPhaseSweep, TrainSweep

    if isinstance(spec, FourPhaseSweep):
        from .four_phases import plan_four_phases

        return plan_four_phases(spec)
    if isinstance(spec, TrainSweep):
        from .train_sweep import plan_train_sweep

        return plan_train_sweep(spec)
    return plan_ode_sweep(spec)


def begin(plan: Plan, out: Path, resume: bool = False, **extra) -> dict:
    """Check `out` (same configuration; with `resume` also the same chunking) and write the
    provisional manifest with the plan; returns the metadata every table part carries."""
    store.check_out_dir(out, plan.config_hash, resume=resume, plan=[c.key for c in plan.chunks])
    meta = {"config": plan.config, "config_hash": plan.config_hash, **store.provenance()}
    store.write_manifest(out, {**meta, "complete": False, "n_runs": plan.n_runs, "plan": [c.key for c in plan.chunks], **extra})
    return meta


def finish(plan: Plan, out: Path, meta: dict, computed: int, **extra) -> dict:
    """The final manifest, from the parts on disk (every chunk must be there); returned."""
    manifest = {**meta, "complete": True, "n_runs": plan.n_runs, "plan": [c.key for c in plan.chunks], **extra,
                **summarise_parts(out, len(plan.chunks)), "chunks_computed": computed}
    store.write_manifest(out, manifest)
    return manifest


def execute(plan: Plan, out: Path, progress: bool = True, resume: bool = False) -> dict:
    """Run a planned sweep into `out` (only the missing chunks with `resume`); returns the manifest."""
    out = Path(out)
    meta = begin(plan, out, resume)
    bar = Progress(plan.n_runs, plan.name, progress, len(plan.chunks))
    try:
        computed = _write_chunks(out, plan.chunks, meta, bar, resume)
    finally:
        bar.close()
    return finish(plan, out, meta, computed)


def _brief(key: dict) -> str:
    """A chunk's key in one short line: long lists as [first … last] (count)."""
    show = lambda v: f"[{v[0]} … {v[-1]}] ({len(v)})" if isinstance(v, list) and len(v) > 4 else json.dumps(v)
    return ", ".join(f"{k} {show(v)}" for k, v in key.items())


def dry_run(plan: Plan, compile_first: bool = True) -> list[str]:
    """What `--dry-run` prints: the grid size, the chunks, the memory per chunk, and the time to
    compile the first chunk's call (compiled, not run)."""
    sizes = sorted({c.n_runs for c in plan.chunks})
    lines = [f"{plan.n_runs} runs in {len(plan.chunks)} chunks of {', '.join(map(str, sizes))} runs"]
    mem = [c.nbytes for c in plan.chunks if np.isfinite(c.nbytes)]
    if mem:
        lines.append(f"estimated working set per chunk: up to {max(mem) / 2**20:.0f} MiB")
    for i, c in enumerate(plan.chunks[:3]):
        lines.append(f"  chunk {i}: {c.n_runs} runs, {_brief(c.key)}")
    if len(plan.chunks) > 3:
        lines.append(f"  … {len(plan.chunks) - 3} more")
    first = plan.chunks[0] if plan.chunks else None
    if compile_first and first is not None and first.lower is not None:
        t0 = time.monotonic()
        first.lower().compile()
        lines.append(f"compiled the first chunk's call in {time.monotonic() - t0:.1f} s (not run)")
    elif compile_first and first is not None:
        lines.append("the first chunk's calls compile when it runs (depth > 3: host-driven full-form segments); nothing compiled ahead")
    return lines


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the running chunk was finished and written. Further SIGINT and
    SIGTERM are ignored from then on, so that the process exits cleanly (exit 130 from the CLI);
    from Python, `restore_signals()` gives them back."""


_SAVED_HANDLERS: dict = {}


def restore_signals() -> None:
    """Reinstall the SIGINT / SIGTERM handlers a stopped sweep left ignored."""
    for sig, old in _SAVED_HANDLERS.items():
        signal.signal(sig, old)
    _SAVED_HANDLERS.clear()


class _StopAfterChunk:
    """SIGINT / SIGTERM (Slurm's timeout and scancel) during a sweep: finish and write the running
    chunk, then stop (SweepInterrupted, exit 130); a second signal aborts at once
    (KeyboardInterrupt; nothing half-written, every file is written atomically)."""

    def __init__(self):
        self.signal = None
        self.saved = {}

    def _handler(self, signum, frame):
        if self.signal is not None:  # the second one
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        print(f"condense: {self.signal}: finishing the running chunk, then stopping "
              "(send it again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self.saved.items():
            if self.signal is None:
                signal.signal(sig, old)
            else:  # stopping: a late second signal must not cut the exit short
                _SAVED_HANDLERS[sig] = old
                signal.signal(sig, signal.SIG_IGN)
        return False


def _part_counts(path: Path) -> dict[str, int]:
    import pandas as pd

    return pd.read_parquet(path, columns=["status"])["status"].value_counts().to_dict()


def write_chunk(out: Path, part: int, chunk: Chunk, meta: dict) -> None:
    """Compute one chunk and write its tables as part `part` (the runs part last: its presence
    marks the chunk done)."""
    name = store.part_name(part)
    frames = chunk.compute()
    frames = dict(zip(("runs", "series"), frames)) if isinstance(frames, tuple) else frames
    for table in sorted(frames, key=lambda t: t == "runs"):
        frame = frames[table]
        if len(frame) or table in ("runs", "series"):
            store.write_table(frame, out / table / name, meta)
        elif (out / table / name).exists():  # an empty table part replaces a stale one
            (out / table / name).unlink()


def chunk_done(out: Path, part: int) -> bool:
    return (Path(out) / "runs" / store.part_name(part)).exists()


def _write_chunks(out: Path, chunks: list[Chunk], meta: dict, progress: Progress, resume: bool) -> int:
    """Write each chunk's tables (runs, series, and any others) as numbered Parquet parts; return
    how many were computed. With `resume`, a chunk whose runs part exists is kept as it is."""
    computed = 0
    with _StopAfterChunk() as stop:
        for part, chunk in enumerate(chunks):
            skipped = resume and chunk_done(out, part)
            if not skipped:
                write_chunk(out, part, chunk, meta)
                computed += 1
            progress.update(chunk.n_runs, skipped)
            if stop.signal is not None and part + 1 < len(chunks):
                raise SweepInterrupted(f"{stop.signal}: stopped after chunk {part + 1} of {len(chunks)}; "
                                       "the finished chunks are kept, rerun with --resume to complete the sweep")
    return computed


def summarise_parts(out: Path, n_chunks: int) -> dict:
    """Parts, tables and status counts of a sweep whose n_chunks chunks are all on disk; parts
    beyond them (an earlier run of the same config with more chunks) are removed as stale."""
    out = Path(out)
    files = [store.part_name(i) for i in range(n_chunks)]
    counts: dict[str, int] = {}
    for name in files:
        for k, v in _part_counts(out / "runs" / name).items():
            counts[k] = counts.get(k, 0) + int(v)
    tables = sorted(p.name for p in out.iterdir() if p.is_dir() and list(p.glob("part-*.parquet")))
    for sub in tables:
        for p in (out / sub).glob("part-*.parquet"):
            if p.name not in files:
                p.unlink()
    tables = sorted(t for t in tables if list((out / t).glob("part-*.parquet")))
    return {"parts": files, "tables": tables, "status_counts": counts}


def plan_ode_sweep(spec: OdeSweep) -> Plan:
    return Plan(spec.to_dict(), spec.config_hash(), spec.n_runs, spec.name, ode_chunks(spec))


def run_ode_sweep(spec: OdeSweep, out: Path, progress: bool = True, resume: bool = False) -> dict:
    """Run an ODE sweep into `out` (only the missing chunks with `resume`); returns the manifest."""
    return execute(plan_ode_sweep(spec), out, progress, resume)


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
            arrays = [np.concatenate([v, np.repeat(v[:1], padded - len(v), 0)]) for v in arrays]
            return lower_first_segment(*arrays, solver_options(spec))

        for lo, hi in chunk_ranges(len(group), size):
            chunks.append(Chunk({"width": int(width), "runs": [int(run_ids[lo]), int(run_ids[hi - 1])]}, hi - lo,
                                functools.partial(compute, lo, hi),
                                nbytes=min(size, len(group)) * bytes_per_start(int(width), spec.depth),
                                lower=functools.partial(lower, lo, hi) if spec.depth == 3 else None))
    return chunks


def run_ode_init(a, b, c, out: Path, spec: OdeSweep, source: str, progress: bool = True, resume: bool = False) -> dict:
    """Solve explicit starts (from `condense ode --init`), one row per start in file order."""
    import hashlib

    digest = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in (a, b, c))).hexdigest()[:16]
    config = {**spec.to_dict(), "init_file": source, "init_sha256": digest, "widths": [a.shape[1]], "seeds": None}
    chunks = _init_chunks(a, b, c, solver_options(spec), spec.chunk_size)
    return execute(Plan(config, spec.config_hash({"init_sha256": digest}), len(a), spec.name, chunks), out, progress, resume)


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
