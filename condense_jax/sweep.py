"""Sweeps: expand a spec into runs, draw the starts, solve in fixed-size chunks, write each chunk.

Host code only: the numerics live in blowup.py, the files in store.py.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import interrupts, store
from .config import OdeSweep
from .interrupts import SweepInterrupted  # noqa: F401 (re-exported: the CLI and callers catch it)

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


def check(plan: Plan, out: Path, resume: bool = False) -> None:
    """Refuse `out` if it holds another sweep (or, with `resume`, another chunking): read only."""
    store.check_out_dir(out, plan.config_hash, resume=resume, plan=[c.key for c in plan.chunks])


def begin(plan: Plan, out: Path, resume: bool = False, **extra) -> dict:
    """Start (or, with `resume`, continue) the sweep in `out`, which the caller holds
    (store.writing): a plain run starts clean (the parts and receipts of an earlier run of the same
    configuration are removed, so no other chunking can mix in); the provisional manifest records
    the plan. Returns the metadata every table part carries."""
    if not resume:
        store.clear_parts(out)
    meta = {"config": plan.config, "config_hash": plan.config_hash, **store.provenance()}
    store.write_manifest(out, {**meta, "complete": False, "n_runs": plan.n_runs, "plan": [c.key for c in plan.chunks], **extra})
    return meta


def finish(plan: Plan, out: Path, meta: dict, computed: int, **extra) -> dict:
    """The final manifest, from the verified receipts of every chunk (all must be done): each part
    with its row count and checksum; returned."""
    manifest = {**meta, "complete": True, "n_runs": plan.n_runs, "plan": [c.key for c in plan.chunks], **extra,
                **summarise_parts(out, plan), "chunks_computed": computed}
    store.write_manifest(out, manifest)
    return manifest


def execute(plan: Plan, out: Path, progress: bool = True, resume: bool = False) -> dict:
    """Run a planned sweep into `out` (only the missing chunks with `resume`), holding the
    directory's lock throughout; returns the manifest."""
    out = Path(out)
    with interrupts.guard():
        interrupts.check("stopped before the sweep started; nothing was written")
        with store.writing(out, lambda: check(plan, out, resume)):
            return _execute(plan, out, progress, resume)


def _execute(plan: Plan, out: Path, progress: bool, resume: bool) -> dict:
    meta = begin(plan, out, resume)
    bar = Progress(plan.n_runs, plan.name, progress, len(plan.chunks))
    try:
        computed = _write_chunks(out, plan.chunks, meta, bar, resume)
    finally:
        bar.close()
    return finish(plan, out, meta, computed)


def memory_limit() -> float:
    """80% of this machine's physical memory, in bytes (inf where it cannot be read)."""
    import os

    try:
        return 0.8 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return float("inf")


def check_memory(plan: Plan, max_memory_gib: float | None = None) -> None:
    """Refuse a plan whose largest chunk's estimated working set exceeds the limit (`max_memory_gib`,
    else 80% of this machine's memory), with the estimate in the message."""
    limit = max_memory_gib * 2**30 if max_memory_gib is not None else memory_limit()
    sizes = [c.nbytes for c in plan.chunks if np.isfinite(c.nbytes)]
    if sizes and max(sizes) > limit:
        i = int(np.argmax([c.nbytes if np.isfinite(c.nbytes) else -1 for c in plan.chunks]))
        where = "--max-memory" if max_memory_gib is not None else "80% of this machine's memory"
        raise store.ConfigError(f"chunk {i} ({_brief(plan.chunks[i].key)}) needs an estimated {max(sizes) / 2**30:.3g} GiB, "
                                f"more than the {limit / 2**30:.3g} GiB allowed ({where}); lower the width or --chunk-size")


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


def _part_counts(path: Path) -> dict[str, int]:
    import pandas as pd

    return pd.read_parquet(path, columns=["status"])["status"].value_counts().to_dict()


def write_chunk(out: Path, part: int, chunk: Chunk, meta: dict) -> None:
    """Compute one chunk and write its tables as part `part`, then its receipt (store.py): the
    old receipt goes first, so an interruption anywhere leaves the chunk not done."""
    name = store.part_name(part)
    frames = chunk.compute()
    frames = dict(zip(("runs", "series"), frames)) if isinstance(frames, tuple) else frames
    store.receipt_path(out, part).unlink(missing_ok=True)
    written = {}
    for table in sorted(frames, key=lambda t: t == "runs"):
        frame = frames[table]
        if len(frame) or table in ("runs", "series"):
            written[table] = store.write_table(frame, out / table / name, meta)
        elif (out / table / name).exists():  # an empty table part replaces a stale one
            (out / table / name).unlink()
    store.write_receipt(out, part, chunk.key, meta["config_hash"], written)


def chunk_done(out: Path, part: int, chunk: Chunk, config_hash: str) -> bool:
    """Its receipt matches this chunk and configuration, and every part it lists verifies."""
    return store.chunk_verified(out, part, chunk.key, config_hash)


def _write_chunks(out: Path, chunks: list[Chunk], meta: dict, progress: Progress, resume: bool) -> int:
    """Write each chunk's tables (runs, series, and any others) as numbered Parquet parts; return
    how many were computed. With `resume`, a chunk that is done (verified receipt) is kept."""
    computed = 0
    for part, chunk in enumerate(chunks):
        skipped = resume and chunk_done(out, part, chunk, meta["config_hash"])
        if not skipped:
            write_chunk(out, part, chunk, meta)
            computed += 1
        progress.update(chunk.n_runs, skipped)
        if part + 1 < len(chunks):
            interrupts.check(f"stopped after chunk {part + 1} of {len(chunks)}; the finished chunks are kept, "
                             "rerun with --resume to complete the sweep")
    return computed


def summarise_parts(out: Path, plan: Plan) -> dict:
    """Parts (with rows and checksums, from the verified receipts), tables and status counts of a
    sweep whose chunks are all done; a part file no receipt records (another chunking, another
    sweep) is removed."""
    out = Path(out)
    parts: dict[str, dict] = {}
    for i, chunk in enumerate(plan.chunks):
        if not chunk_done(out, i, chunk, plan.config_hash):
            raise store.ConfigError(f"chunk {i} of {str(out)!r} is missing or does not verify; rerun with --resume")
        for table, entry in store.read_receipt(out, i)["tables"].items():
            parts.setdefault(table, {})[store.part_name(i)] = entry
    counts: dict[str, int] = {}
    for name in parts.get("runs", {}):
        for k, v in _part_counts(out / "runs" / name).items():
            counts[k] = counts.get(k, 0) + int(v)
    for sub in (p for p in out.iterdir() if p.is_dir()):
        for p in sub.glob("part-*.parquet"):
            if p.name not in parts.get(sub.name, {}):
                p.unlink()
    return {"parts": parts, "tables": sorted(parts), "status_counts": counts}


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
