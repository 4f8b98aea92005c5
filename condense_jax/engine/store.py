"""Result directories: Parquet tables, chunk receipts, a manifest, and a lock.

    DIR/manifest.json              config, its hash, the plan, versions, git revision, devices,
                                   and once complete every part with its row count and SHA-256
    DIR/runs/part-00000.parquet    one row per run (one part per chunk of the plan)
    DIR/series/part-00000.parquet  long format: run_id, tau or t or step, quantities
    DIR/chunks/part-00000.json     receipt of chunk 0: its plan key, the config hash, and each of
                                   its table parts with rows and SHA-256 (written last)
    DIR/.lock                      flock'ed by the process that writes the directory

Every file is written to a temporary name in its folder, flushed, fsynced and renamed, so a
reader never sees a partial file. A chunk is done only when its receipt is there, names the same
plan key and configuration, and every part it lists has the recorded checksum: a part from another
sweep, a deleted, truncated or bit-flipped part, or a part left by another chunking is not done
(`--resume` recomputes it), and the readers (`read_table`, `condense_jax.load`) refuse it with
one line naming the file. The config and provenance are also stored in each Parquet file's
key-value metadata under b"condense_jax".
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import ConfigError

MANIFEST = "manifest.json"
FORMAT = "condense_jax/1"


def provenance() -> dict:
    """Package versions, git revision, host and devices: what a reader needs to trust a table."""
    from importlib import metadata

    versions = {}
    for pkg in ("condense_jax", "jax", "jaxlib", "diffrax", "equinox", "optimistix", "optax", "numpy", "scipy", "pandas",
                "pyarrow", "matplotlib", "scikit-learn"):  # every package that can change a number or a figure
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        import jax

        devices = [str(d) for d in jax.devices()]
    except Exception:
        devices = []
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "git_revision": git_revision(),
        "host": platform.node(),
        "platform": platform.platform(),
        "devices": devices,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else None,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def git_revision(here: Path | None = None) -> str | None:
    """The commit the package (`here`, default: this package) was loaded from, `-dirty` if it differs."""
    here = Path(here) if here is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    if out.returncode != 0 or not rev:
        return None
    # dirty: a tracked file changed anywhere, or an untracked file inside the package (code that
    # ran); untracked files elsewhere (result directories in the checkout) do not count
    status = lambda *args: subprocess.run(["git", "-C", str(here), "status", "--porcelain", *args], capture_output=True,
                                          text=True, timeout=5, check=False).stdout.strip()
    try:
        dirty = status("--untracked-files=no") or status("--untracked-files=all", "--", str(here))
    except (OSError, subprocess.SubprocessError):
        return rev + "-unknown"
    return rev + ("-dirty" if dirty else "")


WRITE_LOCK = threading.Lock()  # held while a file is written; an abort (interrupts.py) waits for it
_TMP_DIRS: set[Path] = set()  # folders this process has written temporaries in


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name in path's folder, fsync, rename: readers never see a
    partial file. An OSError names `path`, the user's file, never the temporary one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with WRITE_LOCK:
        _TMP_DIRS.add(path.parent)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        finally:
            if tmp.exists():
                tmp.unlink()


def remove_own_temporaries() -> None:
    """Remove this process's temporary files (the abort on a second signal calls it)."""
    for folder in list(_TMP_DIRS):
        for p in folder.glob(f".*.tmp-{os.getpid()}"):
            try:
                p.unlink()
            except OSError:
                pass


def arrow_table(df, metadata: dict, dictionary: dict | None = None):
    """A DataFrame as the Arrow table the store writes: one float width (float64) and one int
    width (int64) per table, text columns dictionary-encoded (pandas reads them as categoricals),
    lists of rows (a cosine matrix) as list<list<double>>; each field carries its data-dictionary
    entry (meaning, unit, source: engine/columns.py) and the file `metadata` (provenance)."""
    import pyarrow as pa

    from . import columns

    table = pa.Table.from_pandas(df, preserve_index=False)
    fields, arrays = [], []
    for field, array in zip(table.schema, table.columns):
        array = _uniform(array)
        col = columns.entry(dictionary, field.name) if dictionary else None
        if col is not None and col.values and pa.types.is_dictionary(array.type):
            array = _enumerated(array, col.values)
        fields.append(pa.field(field.name, array.type, metadata=columns.field_metadata(col) if col else None))
        arrays.append(array)
    meta = dict(table.schema.metadata or {})
    meta[b"condense_jax"] = json.dumps(metadata, default=str).encode()
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


def _enumerated(array, values):
    """A text column dictionary-encoded with `values` (then any other value, sorted) as its
    dictionary, in that order, whichever of them occur: every table's categories are the same."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = array.cast(pa.string())
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    extra = sorted(set(text.to_pylist()) - set(values) - {None})
    dictionary = pa.array([*values, *extra], pa.string())
    return pa.DictionaryArray.from_arrays(pc.index_in(text, value_set=dictionary), dictionary)


def _uniform(array):
    """One column in the store's types: float64, int64, dictionary-encoded text, matrices as
    list<list<double>>; anything else (bool, …) as it is."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_floating(kind):
        return array.cast(pa.float64())
    if pa.types.is_integer(kind):
        return array.cast(pa.int64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.dictionary_encode()
    if pa.types.is_list(kind) and pa.types.is_list(kind.value_type):
        return array.cast(pa.list_(pa.list_(pa.float64())))
    return array


def _read_parts(files, columns=None, filters=None):
    """The parts as one pandas DataFrame. Parts written by an older version (float32 columns, plain
    text) are brought to the store's types first, so a sweep resumed across versions reads as one."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(f, columns=columns, filters=filters) for f in files]
    def uniform(t):
        arrays = [_uniform(c) for c in t.columns]
        fields = [pa.field(f.name, a.type, metadata=f.metadata) for f, a in zip(t.schema, arrays)]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=t.schema.metadata))

    parts = [uniform(t) for t in parts]
    try:
        return pa.concat_tables(parts, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pd.concat([t.to_pandas() for t in parts], ignore_index=True)


def write_table(df, path: Path, metadata: dict, dictionary: dict | None = None) -> dict:
    """Write a DataFrame as one Parquet file (`arrow_table`), atomically; returns its receipt
    entry {"rows", "sha256"} (the digest of the bytes written)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = arrow_table(df, metadata, dictionary)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = sink.getvalue().to_pybytes()
    _atomic_write_bytes(path, data)
    return {"rows": int(table.num_rows), "sha256": hashlib.sha256(data).hexdigest()}


def read_manifest(out: Path) -> dict | None:
    p = Path(out) / MANIFEST
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        raise ConfigError(f"{str(p)!r} is not a readable condense_jax manifest") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ConfigError(f"{str(p)!r} is not a condense_jax manifest (format {m.get('format') if isinstance(m, dict) else None!r})")
    return m


def check_out_dir(out: Path, config_hash: str, resume: bool = False, plan: list | None = None) -> None:
    """Refuse an output directory that holds a different sweep, or something that is not a sweep.

    A directory with the same configuration is recomputed in place (its files are replaced
    atomically); an empty or missing directory is created. With `resume` the directory must hold
    this configuration with the same chunking (`plan`), whose missing chunks are then computed.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a directory")
    manifest = read_manifest(out)
    if manifest is None:
        if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise ConfigError(f"--out {str(out)!r} is a non-empty directory that is not a condense_jax result")
        if resume:
            raise ConfigError(f"--resume: {str(out)!r} holds no sweep to resume (no manifest.json); run without --resume")
        return
    if manifest.get("config_hash") != config_hash:
        raise ConfigError(
            f"--out {str(out)!r} holds a sweep with a different configuration "
            f"(hash {manifest.get('config_hash')} != {config_hash}); choose another --out"
        )
    if resume and plan is not None and manifest.get("plan") != json.loads(json.dumps(plan)):
        raise ConfigError(
            f"--resume: {str(out)!r} was chunked differently ({len(manifest.get('plan') or [])} chunks, now "
            f"{len(plan)}); give the same --chunk-size (and device count) as the interrupted sweep"
        )


def write_manifest(out: Path, manifest: dict) -> None:
    manifest = {"format": FORMAT, **manifest}
    Path(out).mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(Path(out) / MANIFEST, json.dumps(manifest, indent=2, default=str).encode())


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


# ---------------------------------------------------------------- receipts, verification, lock

RECEIPTS = "chunks"
LOCK = ".lock"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict = {}  # (path, size, mtime_ns) -> sha256: a file is hashed once per process and version


def _digest(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        try:
            _VERIFIED[key] = file_sha256(path)
        except OSError:
            return None
    return _VERIFIED[key]


def receipt_path(out: Path, part: int) -> Path:
    return Path(out) / RECEIPTS / f"part-{part:05d}.json"


def write_receipt(out: Path, part: int, key: dict, config_hash: str, tables: dict, seconds: float | None = None) -> None:
    """The chunk's receipt, written after all its parts: what it covers, what it wrote, how long
    its computation and writing took (wall seconds)."""
    doc = {"format": FORMAT, "chunk": part, "key": key, "config_hash": config_hash, "tables": tables, "seconds": seconds}
    path = receipt_path(out, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path, json.dumps(doc, default=str).encode())


def read_receipt(out: Path, part: int) -> dict | None:
    """A chunk's receipt, or None when it is missing or unreadable (the chunk then counts as not done)."""
    try:
        doc = json.loads(receipt_path(out, part).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("tables"), dict)
    return doc if ok else None


def part_problem(path: Path, entry) -> str | None:
    """Why the part file at `path` does not match its receipt entry {"rows", "sha256"} (None if it does)."""
    if not isinstance(entry, dict) or "sha256" not in entry:
        return "has no valid record"
    if not path.exists():
        return "is missing"
    if _digest(path) != entry["sha256"]:
        return "does not match its recorded checksum (changed, truncated or from another sweep)"
    return None


def chunk_verified(out: Path, part: int, key: dict, config_hash: str) -> bool:
    """Chunk `part` is done: its receipt names this plan key and configuration, and every part it
    lists is on disk with the recorded checksum."""
    doc = read_receipt(out, part)
    if doc is None or doc.get("config_hash") != config_hash:
        return False
    if json.loads(json.dumps(doc.get("key"))) != json.loads(json.dumps(key)):
        return False
    name = part_name(part)
    return all(part_problem(Path(out) / table / name, entry) is None for table, entry in doc["tables"].items())


def recorded_parts(out: Path) -> dict[str, dict[str, dict]]:
    """{table: {part file name: {"rows", "sha256"}}}: from the manifest of a complete sweep, else
    from the receipts of the chunks written so far."""
    manifest = read_manifest(out) or {}
    if manifest.get("complete") and isinstance(manifest.get("parts"), dict):
        return manifest["parts"]
    parts: dict[str, dict[str, dict]] = {}
    folder = Path(out) / RECEIPTS
    for p in sorted(folder.glob("part-*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(p.read_text())
            index = int(doc["chunk"])
            for table, entry in doc["tables"].items():
                parts.setdefault(table, {})[part_name(index)] = entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return parts


def verified_files(out: Path, name: str) -> list[Path]:
    """The part files of table `name`, each checked against its record; ConfigError naming the
    first file that is missing, unrecorded or altered."""
    folder = Path(out) / name
    recorded = recorded_parts(out).get(name, {})
    on_disk = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    for f in on_disk:
        if f.name not in recorded:
            raise ConfigError(f"{str(f)!r} is not recorded by this sweep's manifest or receipts (a stale or foreign "
                              "part); remove it, or rerun the sweep")
    for fname, entry in sorted(recorded.items()):
        problem = part_problem(folder / fname, entry)
        if problem:
            raise ConfigError(f"{str(folder / fname)!r} {problem}; rerun the sweep with --resume to recompute it")
    return [folder / fname for fname in sorted(recorded)]


def verify(out: Path) -> None:
    """Check every part of every table of a result directory against its record (verified_files):
    ConfigError naming the first part that is missing, unrecorded or altered."""
    out = Path(out)
    tables = set(recorded_parts(out)) | {p.parent.name for p in out.glob("*/part-*.parquet")}
    for name in sorted(tables):
        verified_files(out, name)


def clean_temporaries(out: Path) -> int:
    """Remove the temporary files an interrupted writer (SIGKILL between write and rename) left in
    the directory and its table folders; returns how many. Call only while holding the lock."""
    out = Path(out)
    n = 0
    for folder in [out, *(p for p in out.iterdir() if p.is_dir())] if out.is_dir() else []:
        for p in folder.glob(".*.tmp-*"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n


def clear_parts(out: Path) -> None:
    """Remove every table part and receipt (a fresh start of the same sweep). Only under the lock."""
    out = Path(out)
    for folder in (p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []:
        for p in [*folder.glob("part-*.parquet"), *folder.glob("part-*.json")]:
            p.unlink()


class DirectoryLock:
    """An exclusive (writer) or shared (job-array task) flock on DIR/.lock, held for the life of
    the writer; the kernel releases it when the process dies, SIGKILL included, so no lock is ever
    stale. A second writer gets a ConfigError naming the directory and the holder's pid."""

    def __init__(self, out: Path, shared: bool = False):
        self.out, self.shared, self.fd = Path(out), shared, None

    def __enter__(self):
        import fcntl

        path = self.out / LOCK
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "another process"
            except OSError:
                holder = "another process"
            os.close(self.fd)
            self.fd = None
            raise ConfigError(f"--out {str(self.out)!r} is being written by {holder}; wait for it to finish, "
                              "or choose another --out") from None
        if not self.shared:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"condense pid {os.getpid()} on {platform.node()}".encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
        return False


@contextlib.contextmanager
def writing(out: Path, check, shared: bool = False):
    """Hold `out` for writing: `check()` (which raises ConfigError to refuse) runs before anything
    is created, then the directory is created and locked (exclusively, or `shared` for the tasks of
    a job array), `check()` runs again under the lock (another writer may have changed the
    directory meanwhile), and the temporaries a killed writer left are removed. A refusal leaves
    no directory behind that this call created."""
    out = Path(out)
    check()
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {str(out)!r} cannot be created ({e.strerror or e})") from None
    try:
        with DirectoryLock(out, shared=shared):
            check()
            if not shared:
                clean_temporaries(out)
            yield out
    except ConfigError:
        if created and all(p.name == LOCK for p in out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise


def read_table(out: Path, name: str, columns=None, filters=None):
    """Table `name` (runs, series, …) of a result directory as a pandas DataFrame.

    Anything that is not a condense_jax table — missing, unreadable, not Parquet, a Parquet file
    without condense_jax's metadata (a foreign file), lacking a requested column — is a ConfigError
    with one line naming the path, never a traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(out) / name
    if path.is_dir() and read_manifest(out) is not None:
        files = verified_files(out, name)  # every part checked against the manifest or its receipt
    else:
        files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise ConfigError(f"{str(path)!r} does not exist or holds no table parts (not a condense_jax result?)")
    try:
        for f in files:
            if b"condense_jax" not in (pq.read_schema(f).metadata or {}):
                raise ConfigError(f"{str(f)!r} is a Parquet file but not a condense_jax table (no condense_jax metadata)")
        return _matrices(_read_parts(files, columns, filters))
    except ConfigError:
        raise
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ConfigError(f"{str(path)!r} is not a readable condense_jax table ({type(e).__name__}: {first})") from None


def _matrices(df):
    """Each value of a list<list<double>> column (a cosine matrix, stored as a list of rows) as one
    2-D array, as it was computed."""
    import numpy as np

    for name in df.columns:
        if df[name].dtype == object and len(df) and isinstance(df[name].iloc[0], np.ndarray) \
                and df[name].iloc[0].dtype == object:
            df[name] = [np.stack(v) if len(v) else np.zeros((0, 0)) for v in df[name]]
    return df


def load(out: Path, join: bool = False) -> dict:
    """Every table of a result directory as pandas DataFrames, {name: frame}, each part verified
    against the manifest (or, for an unfinished sweep, against its chunks' receipts): a missing,
    unrecorded, truncated or altered part is a ConfigError naming the file. An unfinished sweep
    loads with a warning that says how many chunks it has.

    join: every table with a run_id (series, cosines, neurons, …) also carries its run's columns
    from the runs table (width, seed, scale, status, …), so a series is plotted by parameter
    without a join of one's own."""
    import warnings

    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise ConfigError(f"{str(out)!r} is not a condense_jax result directory (no manifest.json)")
    names = sorted(recorded_parts(out))
    if not manifest.get("complete"):
        plan = manifest.get("plan") or []
        done = sum(1 for i in range(len(plan)) if read_receipt(out, i) is not None)
        warnings.warn(f"{str(out)!r} is an unfinished sweep: {done} of {len(plan)} chunks are written "
                      "(finish it with --resume)", stacklevel=2)
    tables = {name: read_table(out, name) for name in names}
    if join and "runs" in tables:
        runs = tables["runs"]
        for name, frame in tables.items():
            if name != "runs" and "run_id" in frame:
                extra = ["run_id"] + [c for c in runs.columns if c not in frame.columns]
                tables[name] = frame.merge(runs[extra], on="run_id", how="left", validate="many_to_one")
    return tables


def read_runs(out: Path):
    """The runs table of a result directory, as a pandas DataFrame sorted by run_id."""
    return read_table(out, "runs").sort_values("run_id", ignore_index=True)


def read_rows(out: Path, name: str, run_ids=None, order=("run_id",), empty_columns=None):
    """Table `name` (only the runs `run_ids` when given) sorted by the `order` columns present; with
    `empty_columns`, a missing table is an empty frame of those columns instead of an error."""
    import pandas as pd

    if empty_columns is not None and not (Path(out) / name).exists():
        return pd.DataFrame(columns=list(empty_columns))
    filters = [("run_id", "in", [int(r) for r in run_ids])] if run_ids is not None else None
    df = read_table(out, name, filters=filters)
    return df.sort_values([c for c in order if c in df.columns], ignore_index=True)


def read_series(out: Path, run_ids=None, empty_columns=None):
    """The long-format series table (optionally only some runs), sorted by run_id then time
    (`tau` for ODE sweeps, `step` for training sweeps)."""
    return read_rows(out, "series", run_ids, ("run_id", "tau", "step"), empty_columns)


def describe(out: Path) -> dict:
    """The data dictionary a result directory carries: {table: {column: (Column, Arrow type)}},
    read from the Parquet field metadata of every verified part (engine/columns.py), the derived
    tables (phase/) included."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from . import columns

    out = Path(out)
    found = {}
    tables = {name: verified_files(out, name) for name in sorted(recorded_parts(out))}
    tables.update({f"{p.parent.name}/{p.stem}": [p] for p in sorted(out.glob("*/*.parquet"))
                   if not p.name.startswith("part-")})
    for name, files in tables.items():
        entries = {}
        for f in files:
            try:
                schema = pq.read_schema(f)
            except (OSError, pa.ArrowException) as e:
                raise ConfigError(f"{str(f)!r} is not a readable Parquet file ({type(e).__name__})") from None
            for col_name, col in columns.from_schema(schema).items():
                entries.setdefault(col_name, (col, columns.short_type(schema.field(col_name).type)))
        found[name] = entries
    return found


def read_metadata(path: Path) -> dict:
    """The condense_jax key-value metadata of one Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"condense_jax"]) if b"condense_jax" in meta else {}
