"""Sweep specifications: frozen dataclasses, validated on construction, loaded from flags or TOML.

Every bad value raises `ConfigError` with one line that names it; the CLI turns that into exit 2.
No JAX here: validating a spec must be instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from pathlib import Path


class ConfigError(ValueError):
    """A bad user-supplied value. Its message is one line naming the value."""


def _positive_finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    return v


def _finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


def _finite_nonnegative(name: str, value) -> float:
    v = _finite(name, value)
    if v < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return v


def _int_at_least(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value!r}")
    return int(value)


def _nonempty_unique(name: str, values, item) -> tuple:
    values = tuple(values)
    if not values:
        raise ConfigError(f"{name} is empty; give at least one value")
    out = tuple(item(f"{name} entry", v) for v in values)
    dup = sorted({v for v in out if out.count(v) > 1})
    if dup:
        raise ConfigError(f"{name} has duplicate values {dup}")
    return out


def _seeds(value) -> tuple[int, ...]:
    """`seeds` is either a count N (seeds 0…N−1) or an explicit list of non-negative integers."""
    if isinstance(value, (list, tuple)):
        return _nonempty_unique("seeds", value, lambda n, v: _int_at_least(n, v, 0))
    n = _int_at_least("seeds", value, 1)
    return tuple(range(n))


@dataclasses.dataclass(frozen=True)
class OdeSweep:
    """A sweep of the effective ODE (3.10) to blow-up: widths × per-layer scales × seeds.

    Each start has a_i ~ N(0, σ_a²), b_ij ~ N(0, σ_b²) (every hidden matrix for depth > 3),
    c_i ~ N(0, σ_c²), drawn from a generator seeded by (seed, width): the same seed gives the same
    directions at every scale. Unequal σ_a, σ_c is the ‖a(0)‖ ≠ ‖c(0)‖ axis of Assumption 1.
    """

    widths: tuple[int, ...] = (10, 20, 50)
    seeds: tuple[int, ...] = tuple(range(16))
    scale_a: tuple[float, ...] = (1.0,)
    scale_b: tuple[float, ...] = (1.0,)
    scale_c: tuple[float, ...] = (1.0,)
    depth: int = 3
    rtol: float = 1e-9
    atol: float = 1e-9
    tau_max: float = 200.0
    series_dtau: float = 1.0
    chunk_size: int | None = None  # None: sized per width to a memory budget (blowup.auto_chunk_size)
    pair_counts: bool = False
    stepping: str = "per_start"
    series_t: tuple[float, ...] | None = None
    series_E: tuple[float, ...] | None = None
    name: str = "ode"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("widths", _nonempty_unique("widths", self.widths, lambda n, v: _int_at_least(n, v, 1)))
        set_("seeds", _seeds(self.seeds))
        for k in ("scale_a", "scale_b", "scale_c"):
            set_(k, _nonempty_unique(k, getattr(self, k), _positive_finite))
        set_("depth", _int_at_least("depth", self.depth, 2))
        for k in ("rtol", "atol", "tau_max", "series_dtau"):
            set_(k, _positive_finite(k, getattr(self, k)))
        if self.rtol >= 1 or self.atol >= 1:
            raise ConfigError(f"tolerances must be below 1, got rtol={self.rtol!r} atol={self.atol!r}")
        if self.tau_max < 20.0:
            raise ConfigError(f"tau_max must be at least 20 (the first τ segment), got {self.tau_max!r}")
        if self.chunk_size is not None:
            set_("chunk_size", _int_at_least("chunk_size", self.chunk_size, 1))
        if not isinstance(self.pair_counts, bool):
            raise ConfigError(f"pair_counts must be true or false, got {self.pair_counts!r}")
        if self.stepping not in ("per_start", "shared"):
            raise ConfigError(f"stepping must be 'per_start' or 'shared', got {self.stepping!r}")
        if (self.series_t is not None or self.series_E is not None) and self.depth != 3:
            raise ConfigError(f"series_t / series_E grids are available for depth 3 only, got depth {self.depth}")
        if self.series_t is not None and self.series_E is not None:
            raise ConfigError("give series_t or series_E, not both")
        if self.series_t is not None:
            set_("series_t", _nonempty_unique("series_t", self.series_t, _finite_nonnegative))
        if self.series_E is not None:
            set_("series_E", _nonempty_unique("series_E", self.series_E, _finite))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")

    def to_dict(self) -> dict:
        return {"kind": "ode", **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    def config_hash(self, extra: dict | None = None) -> str:
        """Hash of everything that changes the numbers (not the name or the chunking)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("chunk_size")
        d.update(extra or {})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def n_runs(self) -> int:
        return len(self.widths) * len(self.seeds) * len(self.scale_a) * len(self.scale_b) * len(self.scale_c)


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


ODE_KEYS = {f.name for f in dataclasses.fields(OdeSweep)}


def ode_from_mapping(d: dict, where: str) -> OdeSweep:
    """Build an OdeSweep from a TOML table, rejecting unknown keys with a clear message."""
    unknown = sorted(set(d) - ODE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(ODE_KEYS)}")
    d = dict(d)
    for k in ("widths", "scale_a", "scale_b", "scale_c", "series_t", "series_E"):
        if k in d and not isinstance(d[k], list):
            d[k] = [d[k]]
    return OdeSweep(**d)


def load_spec(path: str | Path) -> tuple[OdeSweep, dict]:
    """Read a sweep spec TOML file: top-level `kind = "ode"`, optional `out`, and an `[ode]` table."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read spec file {str(path)!r}: {e.strerror}") from None
    return parse_spec(text, str(path))


def parse_spec(text: str, where: str) -> tuple[OdeSweep, dict]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None
    unknown = sorted(set(doc) - {"kind", "name", "out", "ode"})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; expected kind, name, out, [ode]")
    kind = doc.get("kind", "ode")
    if kind != "ode":
        raise ConfigError(f"{where}: kind {kind!r} is not supported yet (supported: 'ode')")
    table = doc.get("ode", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [ode] must be a table")
    if "name" in doc:
        table = {**table, "name": doc["name"]}
    spec = ode_from_mapping(table, where)
    extra = {"out": doc.get("out")}
    if extra["out"] is not None and not isinstance(extra["out"], str):
        raise ConfigError(f"{where}: out must be a path string, got {extra['out']!r}")
    return spec, extra
