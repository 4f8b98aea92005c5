"""Execute a planned sweep: begin, write each chunk (tables, then its receipt), react to signals,
show progress, finish with the manifest. Knows no family: a chunk's `compute()` is opaque here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import interrupts, store
from .plan import Chunk, Plan


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
    t0 = time.monotonic()
    meta = begin(plan, out, resume)
    bar = Progress(plan.n_runs, plan.name, progress, len(plan.chunks))
    try:
        computed = _write_chunks(out, plan, meta, bar, resume)
    finally:
        bar.close()
    return finish(plan, out, meta, computed, wall_seconds=round(time.monotonic() - t0, 3))


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
        raise ConfigError(f"chunk {i} ({_brief(plan.chunks[i].key)}) needs an estimated {max(sizes) / 2**30:.3g} GiB, "
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

    counts = pd.read_parquet(path, columns=["status"])["status"].value_counts()
    return {str(k): int(n) for k, n in counts.items() if n}  # a status's categories are all its values


def write_chunk(out: Path, part: int, chunk: Chunk, meta: dict, columns: dict | None = None) -> None:
    """Compute one chunk and write its tables as part `part`, then its receipt (store.py): the
    old receipt goes first, so an interruption anywhere leaves the chunk not done. `columns`: the
    plan's data dictionary, written into each table's field metadata."""
    name = store.part_name(part)
    t0 = time.monotonic()
    frames = chunk.compute()
    frames = dict(zip(("runs", "series"), frames)) if isinstance(frames, tuple) else frames
    store.receipt_path(out, part).unlink(missing_ok=True)
    written = {}
    for table in sorted(frames, key=lambda t: t == "runs"):
        frame = frames[table]
        if len(frame) or table in ("runs", "series"):
            written[table] = store.write_table(frame, out / table / name, meta, (columns or {}).get(table))
        elif (out / table / name).exists():  # an empty table part replaces a stale one
            (out / table / name).unlink()
    store.write_receipt(out, part, chunk.key, meta["config_hash"], written, round(time.monotonic() - t0, 3))


def chunk_done(out: Path, part: int, chunk: Chunk, config_hash: str) -> bool:
    """Its receipt matches this chunk and configuration, and every part it lists verifies."""
    return store.chunk_verified(out, part, chunk.key, config_hash)


def _write_chunks(out: Path, plan: Plan, meta: dict, progress: Progress, resume: bool) -> int:
    """Write each chunk's tables (runs, series, and any others) as numbered Parquet parts; return
    how many were computed. With `resume`, a chunk that is done (verified receipt) is kept."""
    computed = 0
    chunks = plan.chunks
    for part, chunk in enumerate(chunks):
        skipped = resume and chunk_done(out, part, chunk, meta["config_hash"])
        if not skipped:
            write_chunk(out, part, chunk, meta, plan.columns)
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
    seconds = []
    for i, chunk in enumerate(plan.chunks):
        if not chunk_done(out, i, chunk, plan.config_hash):
            raise ConfigError(f"chunk {i} of {str(out)!r} is missing or does not verify; rerun with --resume")
        receipt = store.read_receipt(out, i)
        seconds.append(receipt.get("seconds"))
        for table, entry in receipt["tables"].items():
            parts.setdefault(table, {})[store.part_name(i)] = entry
    counts: dict[str, int] = {}
    for name in parts.get("runs", {}):
        for k, v in _part_counts(out / "runs" / name).items():
            counts[k] = counts.get(k, 0) + int(v)
    for sub in (p for p in out.iterdir() if p.is_dir()):
        for p in sub.glob("part-*.parquet"):
            if p.name not in parts.get(sub.name, {}):
                p.unlink()
    return {"parts": parts, "tables": sorted(parts), "status_counts": counts, "chunk_seconds": seconds,
            "compute_seconds": round(sum(x for x in seconds if x is not None), 3)}
