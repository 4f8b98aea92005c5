"""Result directories: Parquet datasets `runs/` and `series/`, plus `manifest.json`.

    DIR/manifest.json            config, its hash, versions, git revision, devices, files, counts
    DIR/runs/part-00000.parquet  one row per run
    DIR/series/part-00000.parquet  long format: run_id, tau, t, quantities

`pandas.read_parquet(DIR / "runs")` reads a table directly. Every file is written to a temporary
name in the same directory, flushed, fsynced and renamed, so a reader never sees a partial file and
an interrupted sweep never leaves a broken one. The config and provenance are also stored in each
Parquet file's key-value metadata under b"condense_jax".
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from .config import ConfigError

MANIFEST = "manifest.json"
FORMAT = "condense_jax/1"


def provenance() -> dict:
    """Package versions, git revision, host and devices: what a reader needs to trust a table."""
    from importlib import metadata

    versions = {}
    for pkg in ("condense_jax", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy", "pandas", "pyarrow"):
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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(df, path: Path, metadata: dict) -> None:
    """Write a DataFrame as one Parquet file, atomically, with `metadata` in the file's key-value store."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"condense_jax"] = json.dumps(metadata, default=str).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path, sink.getvalue().to_pybytes())


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


def read_table(out: Path, name: str, columns=None, filters=None):
    """Table `name` (runs, series, …) of a result directory as a pandas DataFrame.

    Anything that is not a condense_jax table — missing, unreadable, not Parquet, a Parquet file
    without condense_jax's metadata (a foreign file), lacking a requested column — is a ConfigError
    with one line naming the path, never a traceback."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(out) / name
    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise ConfigError(f"{str(path)!r} does not exist or holds no table parts (not a condense_jax result?)")
    try:
        for f in files:
            if b"condense_jax" not in (pq.read_schema(f).metadata or {}):
                raise ConfigError(f"{str(f)!r} is a Parquet file but not a condense_jax table (no condense_jax metadata)")
        return pd.read_parquet(path, columns=columns, filters=filters)
    except ConfigError:
        raise
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise ConfigError(f"{str(path)!r} is not a readable condense_jax table ({type(e).__name__}: {first})") from None


def read_runs(out: Path):
    """The runs table of a result directory, as a pandas DataFrame sorted by run_id."""
    return read_table(out, "runs").sort_values("run_id", ignore_index=True)


def read_series(out: Path, run_ids=None):
    """The long-format series table (optionally only some runs), sorted by run_id then time
    (`tau` for ODE sweeps, `step` for training sweeps)."""
    filters = [("run_id", "in", list(run_ids))] if run_ids is not None else None
    df = read_table(out, "series", filters=filters)
    return df.sort_values(["run_id", "tau" if "tau" in df.columns else "step"], ignore_index=True)


def read_metadata(path: Path) -> dict:
    """The condense_jax key-value metadata of one Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"condense_jax"]) if b"condense_jax" in meta else {}
