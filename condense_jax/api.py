"""Launch any sweep from Python: `run(spec, out=...)`, the same work as `condense run`."""

from __future__ import annotations

from pathlib import Path

from . import kinds
from .errors import ConfigError


def _spec(spec, overrides: dict | None):
    """A spec object from a spec, a TOML path or a packaged name, with `overrides` (field -> value)
    applied and checked as a TOML table's would be."""
    if isinstance(spec, (str, Path)) or spec is None:
        spec, _ = kinds.load_spec(kinds.resolve_spec(spec))
    if not isinstance(spec, tuple(k.spec for k in kinds.KINDS.values())):
        raise ConfigError(f"run() takes a sweep spec (OdeSweep, TrainSweep, FourPhaseSweep) or a TOML path, got {spec!r}")
    if overrides:
        doc = {**spec.to_dict(), **overrides}
        doc.pop("kind")
        spec = type(spec).from_mapping(doc, "run(overrides=…)")
    return spec


def run(spec=None, out: str | Path | None = None, overrides: dict | None = None, figures: bool = True,
        resume: bool = False, progress: bool = False) -> dict:
    """Run a sweep into `out` and return its manifest, with "figures" (the PNGs drawn), "figure_note"
    (why none was, if one did not apply) and "summary" (the lines `condense run` prints after the tables).

    spec: an OdeSweep / TrainSweep / FourPhaseSweep, a path to a TOML spec, or the name of a
    packaged one ("quickstart" when None); overrides: fields to replace, e.g. {"seeds": 4}.
    `out` defaults to condense_results/NAME. Refusals raise ConfigError, as the CLI's exit 2.
    """
    from .engine.execute import execute

    spec = _spec(spec, overrides)
    out = Path(out) if out is not None else Path("condense_results") / spec.name
    manifest = execute(kinds.plan(spec), out, progress=progress, resume=resume)
    manifest["summary"] = kinds.summary(out)
    manifest["figures"], manifest["figure_note"] = [], None
    if figures:
        try:
            manifest["figures"] = [str(p) for p in kinds.figures(out)]
        except ConfigError as e:  # a figure that does not apply to these tables: the sweep stands
            manifest["figure_note"] = str(e)
    return manifest
