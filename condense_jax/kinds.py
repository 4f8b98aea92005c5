"""The registry of sweep kinds: one entry per kind says everything the rest of the package asks
about it (its spec class, how it is planned, the figures and summary drawn after it, its
`condense plot` figures). The CLI, `condense plot`, the report, the job array and `run` read it;
adding a kind is one entry here. The references are "module:function" strings, imported when
used, so that reading a spec or `condense --help` never imports JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
from pathlib import Path

from .errors import ConfigError
from .four_phases.spec import FourPhaseSweep
from .gd.spec import TrainSweep
from .ode.spec import OdeSweep


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of sweep. Functions are "module:function" references (see `call`):

    plan(spec) -> engine.plan.Plan                the chunks, nothing computed
    figures(out, fig_dir) -> list[Path]           every figure that applies to a finished sweep
    summary(out) -> list[str]                     lines printed after the sweep (and derived tables written)
    captions: {file stem prefix: what to look for}  the report's figure captions (a module attribute)
    columns: {table: {column: Column}}           the data dictionary (a module attribute; engine/columns.py)
    """

    name: str
    spec: type
    label: str  # "an ODE", for messages: "DIR holds an ODE sweep"
    plan: str
    figures: str
    summary: str | None
    plots: tuple[str, ...]  # the `condense plot NAME` figures that read this kind
    captions: str = ""
    columns: str = ""


KINDS = {
    "ode": Kind("ode", OdeSweep, "an ODE", "condense_jax.ode.sweep:plan_ode_sweep", "condense_jax.ode.plots:sweep_figures",
                "condense_jax.ode.plots:summary_lines", ("tstar", "theory"), "condense_jax.ode.plots:CAPTIONS",
                "condense_jax.ode.columns:COLUMNS"),
    "train": Kind("train", TrainSweep, "a training", "condense_jax.gd.sweep:plan_train_sweep",
                  "condense_jax.gd.plots:sweep_figures", "condense_jax.gd.phase_diagram.plots:sweep_summary", ("train",),
                  "condense_jax.gd.plots:CAPTIONS", "condense_jax.gd.columns:ALL"),
    "four_phases": Kind("four_phases", FourPhaseSweep, "a four-phase", "condense_jax.four_phases.sweep:plan_four_phases",
                        "condense_jax.four_phases.plots:figures_from_dir", "condense_jax.four_phases.plots:summary_lines",
                        ("phases",), "condense_jax.four_phases.plots:CAPTIONS", "condense_jax.four_phases.columns:COLUMNS"),
}
SPEC_KINDS = {k: v.spec for k, v in KINDS.items()}
PLOTS = {plot: kind.name for kind in KINDS.values() for plot in kind.plots}  # condense plot NAME -> kind


def resolve(ref: str):
    """The object a "module:name" reference of the registry names (imported now)."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def call(ref: str, *args, **kwargs):
    """Call a "module:function" reference of the registry."""
    return resolve(ref)(*args, **kwargs)


def kind_of(spec) -> Kind:
    for kind in KINDS.values():
        if isinstance(spec, kind.spec):
            return kind
    raise ConfigError(f"not a sweep spec: {type(spec).__name__}")


def plan(spec):
    """The Plan of any sweep spec."""
    return call(kind_of(spec).plan, spec)


def spec_from_config(doc: dict):
    """A spec from its to_dict() (a manifest's config): kind plus its fields."""
    doc = dict(doc)
    kind = doc.pop("kind", None)
    if kind not in KINDS:
        raise ConfigError(f"unknown sweep kind {kind!r} in the configuration")
    return KINDS[kind].spec.from_mapping(doc, "the submitted configuration")


def plan_from_config(doc: dict):
    """The Plan of a spec given as its to_dict(): what a job-array task calls (picklable by reference)."""
    return plan(spec_from_config(doc))


def dictionary(kind: str) -> dict:
    """The data dictionary of a kind: {table: {column: Column}} (derived tables such as phase/
    included)."""
    return resolve(KINDS[kind].columns)


def result_kind(out: Path) -> Kind:
    """The kind of sweep a result directory holds, from its manifest (read only)."""
    from .engine import store

    manifest = store.read_manifest(out)
    if manifest is None:
        raise ConfigError(f"{str(out)!r} is not a condense_jax result directory (no manifest.json)")
    kind = (manifest.get("config") or {}).get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{str(out)!r}: its manifest names no known kind of sweep ({kind!r})")
    return KINDS[kind]


def figures(out: Path, fig_dir: Path | None = None) -> list[Path]:
    """Every figure that applies to the finished sweep in `out` (default fig_dir: out/figures)."""
    out = Path(out)
    return call(result_kind(out).figures, out, Path(fig_dir) if fig_dir is not None else out / "figures")


def summary(out: Path) -> list[str]:
    """The lines printed after a sweep of this kind (derived tables, such as a phase table, are written)."""
    kind = result_kind(out)
    return call(kind.summary, Path(out)) if kind.summary else []




PACKAGED_SWEEPS = Path(__file__).resolve().parent / "sweeps"


def resolve_spec(name: str | Path | None) -> Path:
    """A spec path, or a name found in ./sweeps/ or among the packaged sweeps (None: the quickstart)."""
    if name is None:
        return PACKAGED_SWEEPS / "quickstart.toml"
    p = Path(name)
    if p.exists():
        return p
    name = str(name)
    for base in (Path("sweeps"), PACKAGED_SWEEPS):
        q = base / (name if name.endswith(".toml") else f"{name}.toml")
        if q.exists():
            return q
    known = sorted(f.stem for f in PACKAGED_SWEEPS.glob("*.toml"))
    raise ConfigError(f"spec {name!r} not found (not a file; packaged sweeps: {known})")


def parse_overrides(items, kind: str, where: str = "override") -> dict:
    """Hydra-style overrides `TABLE.KEY=VALUE` (or `KEY=VALUE`) of a spec's [kind] table, e.g.
    `ode.widths=[5,10] ode.seeds=8 train.data=digits`: VALUE is a TOML value (a bare word is a
    string). Known keys only; the merged table is then validated exactly as the file's."""
    out = {}
    known = {f.name for f in dataclasses.fields(KINDS[kind].spec)}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where} {item!r} is not KEY=VALUE (e.g. {kind}.seeds=8)")
        table, _, field = key.strip().rpartition(".")
        if table and table != kind:
            raise ConfigError(f"{where} {item!r}: this spec's table is [{kind}], not [{table}]")
        if field not in known:
            raise ConfigError(f"{where} {item!r}: unknown key {field!r} of [{kind}]; known keys are {sorted(known)}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            if not text.strip() or any(c in text for c in "[]{}\"'="):
                raise ConfigError(f"{where} {item!r}: {text!r} is not a TOML value") from None
            value = text.strip()  # a bare word: a string (data=digits, model=cnn)
        out[field] = value
    return out


def packaged_specs() -> list[dict]:
    """Every packaged spec and variant: label (`NAME [--variant V]`), kind, run count, measured time
    (the spec's `# Time …` line, written by benchmarks/sweep_times.py) and description (the first
    comment line of the file)."""
    import re

    rows = []
    for path in sorted(PACKAGED_SWEEPS.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
        description = next((c for c in comments if c and not c.startswith("Time")), "")
        timed = re.search(r"^# Time on [^:]*?(?:, --variant (\w+))?: ([\d.]+ s / [\d.]+ s)", text, re.M)
        variants = [None, *sorted(tomllib.loads(text).get("variants", {}))]
        for variant in variants:
            spec, _ = parse_spec(text, str(path), variant)
            time = timed.group(2) if timed and timed.group(1) == variant else ""
            rows.append(dict(label=path.stem + (f" --variant {variant}" if variant else ""), kind=spec.KIND,
                             n_runs=spec.n_runs, time=time, description=description if variant is None else f"  (variant of {path.stem})"))
    return rows


def load_spec(path: str | Path, variant: str | None = None, overrides=()) -> tuple[OdeSweep | TrainSweep, dict]:
    """Read a sweep spec TOML file: top-level `kind` ("ode" or "train"), optional `name`, `out`,
    the `[ode]` or `[train]` table, and optional variants `[variants.NAME]` whose keys override
    the table (e.g. `quick`, a small version that shows the same phenomenon in about a minute)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read spec file {str(path)!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"spec file {str(path)!r} is not UTF-8 text (byte {e.start}): not a TOML spec") from None
    return parse_spec(text, str(path), variant, overrides)


def parse_spec(text: str, where: str, variant: str | None = None, overrides=()) -> tuple[OdeSweep | TrainSweep, dict]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{where} nests arrays or tables too deeply to be a sweep spec") from None
    unknown = sorted(set(doc) - {"kind", "name", "out", "variants", *SPEC_KINDS})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; expected kind, name, out, [ode], [train] or [four_phases], [variants.*]")
    kind = doc.get("kind")
    if kind is None:  # the kind's table says it; an empty or half-written file must not run a default sweep
        tables = [k for k in SPEC_KINDS if k in doc]
        if len(tables) != 1:
            raise ConfigError(f"{where}: no `kind` (one of {', '.join(map(repr, SPEC_KINDS))}) and no single "
                              "[ode], [train] or [four_phases] table: not a sweep spec")
        kind = tables[0]
    if not isinstance(kind, str) or kind not in SPEC_KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r} (supported: {', '.join(map(repr, SPEC_KINDS))})")
    table = doc.get(kind, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{kind}] must be a table")
    variants = doc.get("variants", {})
    if not isinstance(variants, dict):
        raise ConfigError(f"{where}: variants must be tables [variants.NAME], got {type(variants).__name__}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{where}: name must be a string, got {name!r}")
    if variant is not None:
        if variant not in variants or not isinstance(variants[variant], dict):
            raise ConfigError(f"{where}: no variant {variant!r}; variants: {sorted(variants)}")
        table = {**table, **variants[variant]}
        name = f"{name or kind}_{variant}"
    if name is not None:
        table = {**table, "name": name}
    if overrides:
        table = {**table, **parse_overrides(overrides, kind)}
        where = f"{where} with {' '.join(map(str, overrides))}"
    spec = SPEC_KINDS[kind].from_mapping(table, where)
    extra = {"out": doc.get("out")}
    if extra["out"] is not None and (not isinstance(extra["out"], str) or not extra["out"].strip()):
        raise ConfigError(f"{where}: out must be a non-empty path string, got {extra['out']!r}")
    if extra["out"] is not None and variant is not None:
        extra["out"] = f"{extra['out']}_{variant}"
    return spec, extra
