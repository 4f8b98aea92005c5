"""The `condense` command line: argparse over the registry of sweep kinds (kinds.py).

    condense run [SPEC]               any sweep from a TOML spec (default: the built-in quickstart)
    condense ode | train | four-phases [flags] --out DIR
                                      one kind's sweep from flags (defaults: its spec dataclass)
    condense phase DIR                the phase diagram of a training sweep over ≥ 2 widths
    condense plot tstar|theory|train|phases DIR   a kind's figures, redrawn
    condense report DIR               one self-contained HTML page of a sweep

Bad input ends with one line `condense …: error: …` and exit code 2; nothing is written.
Heavy imports (JAX, pandas) happen only once a command runs, so `--help` is instant.
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m condense_jax.cli`: as the `condense` executable (_entry.py), signals first
    import sys

    from condense_jax.engine import interrupts

    interrupts.install()
    from condense_jax.cli import main as _main  # this file, imported as the module it is

    sys.exit(_main())

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from . import kinds
from .errors import ConfigError
from .four_phases.spec import FourPhaseSweep
from .gd.spec import TrainSweep
from .kinds import load_spec
from .ode.spec import OdeSweep


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Help(argparse.HelpFormatter):
    """Show a flag's default only when it has a meaningful one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _enable_compilation_cache() -> None:
    """JAX's persistent compilation cache: a repeated sweep starts warm. CONDENSE_JAX_NO_CACHE=1 disables."""
    if os.environ.get("CONDENSE_JAX_NO_CACHE"):
        return
    import jax

    base = _cache_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(base))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    except (OSError, AttributeError):
        pass


def _finish(out: Path, manifest: dict, figure: bool) -> None:
    """What a finished sweep prints: the tables, the kind's summary (kinds.py: e.g. the phase table
    of a phase grid, written with or without figures) and its figures. The tables are complete by
    now: a figure that cannot be drawn is one warning line, never a failed command."""
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(manifest["status_counts"].items()))
    tables = " and ".join(f"{out}/{t}" for t in manifest.get("tables", ["runs", "series"]))
    print(f"wrote {manifest['n_runs']} runs to {tables} ({counts})")
    _after_sweep()
    _draw("summary", None, lambda: kinds.summary(out))
    if figure:
        _draw("figures", "figure", lambda: kinds.figures(out))


def _draw(what: str, label: str | None, draw) -> None:
    """Run `draw()` (returns the paths written, or lines) and print them, each after `label: `; a
    figure that does not apply is a `no …` line, one that fails is a warning line: the sweep's
    result stands either way."""
    try:
        items = draw()
    except ConfigError as e:
        print(f"no {what}: {e}")
        return
    except Exception as e:
        print(f"condense: warning: could not draw the {what} ({type(e).__name__}: {e}); the tables are complete",
              file=sys.stderr)
        return
    for item in items:
        print(f"{label}: {item}" if label else item)


def _run_spec(spec, out: Path, quiet: bool, figure: bool, resume: bool = False, dry_run: bool = False,
              max_memory: float | None = None) -> int:
    from .engine import execute

    _enable_compilation_cache()
    plan = kinds.plan(spec)
    execute.check_memory(plan, max_memory)  # before anything is written, and in a dry run too
    if dry_run:
        print("dry run (nothing is written):")
        for line in execute.dry_run(plan):
            print(line)
        return 0
    manifest = execute.execute(plan, out, progress=not quiet, resume=resume)
    _finish(out, manifest, figure)
    return 0


def _after_sweep() -> None:
    """A signal that arrived while the last chunk ran: the sweep is complete, its figures are skipped."""
    from .engine import interrupts

    interrupts.check("the sweep had completed (its tables and manifest are written); figures skipped")


def _spec_and_overrides(args):
    """SPEC and its KEY=VALUE overrides from `condense run|show SPEC [overrides]` (an override in the
    SPEC position means the default spec)."""
    name, overrides = args.spec, list(args.overrides)
    if name is not None and "=" in name:
        name, overrides = None, [name, *overrides]
    spec_path = kinds.resolve_spec(name)
    spec, extra = load_spec(spec_path, args.variant, overrides)
    return spec_path, spec, extra


def cmd_run(args) -> int:
    spec_path, spec, extra = _spec_and_overrides(args)
    out = Path(args.out or extra.get("out") or Path("condense_results") / spec.name)
    print(f"sweep {spec.name!r} from {spec_path}: {spec.n_runs} runs -> {out}")
    if args.executor and not args.dry_run:
        return _submit(spec, out, args)
    return _run_spec(spec, out, args.quiet, not args.no_figure, args.resume, args.dry_run, args.max_memory)


def _submit(spec, out: Path, args) -> int:
    """The sweep's chunks as a submitit job array (Slurm, or local / debug on this machine)."""
    try:
        import submitit  # noqa: F401  (an optional extra)
    except ImportError:
        raise ConfigError(f"--executor {args.executor} needs submitit: pip install 'condense_jax[slurm]'") from None
    from .engine import cluster

    for name in ("tasks", "array_parallelism", "slurm_time", "cpus_per_task", "gpus_per_node"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.mem_gb is not None and not args.mem_gb > 0:
        raise ConfigError(f"--mem-gb must be positive, got {args.mem_gb}")
    options = {"partition": args.slurm_partition, "array_parallelism": args.array_parallelism,
               "time_min": args.slurm_time or 60, "cpus_per_task": args.cpus_per_task, "mem_gb": args.mem_gb,
               "gpus_per_node": args.gpus_per_node}
    manifest = cluster.submit(kinds.plan(spec), spec.to_dict(), kinds.plan_from_config, out, args.executor,
                              args.tasks or 16, options, wait=not args.no_wait)
    if manifest is not None:
        _finish(out, manifest, not args.no_figure)
    return 0


def _lr_drop(text: str) -> tuple[int, float]:
    try:
        step, lr = text.split(":")
        return int(step), float(lr)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr-drop takes STEP:LR (e.g. 205000:5e-4), got {text!r}") from None


def _spec_from_flags(spec, args, renames: dict | None = None, **fixed):
    """The spec dataclass from a sweep command's flags: every field whose flag (its name, or
    `renames[field]`) was given; the dataclass's default otherwise (the one source of defaults).
    Lists become tuples; `fixed` gives fields computed from several flags."""
    renames = renames or {}
    values = {}
    for field in dataclasses.fields(spec):
        value = getattr(args, renames.get(field.name, field.name), None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return spec(**{**values, **fixed})


def cmd_train(args) -> int:
    spec = _spec_from_flags(
        TrainSweep, args, {"n_records": "records", "lr_drops": "lr_drop"}, seeds=_seeds(args),
        data=args.data or ("digits" if args.model == "cnn" else "tanh"), predict_escape=not args.no_predict,
    )
    from .gd.models import activations

    activations.get(spec.activation)
    out = _out_of(args, spec)
    print(f"training {spec.model} ({spec.activation}): {spec.n_runs} runs × {spec.steps} steps -> {out}")
    return _run_spec(spec, out, args.quiet, not args.no_figure, args.resume, args.dry_run, args.max_memory)


def cmd_four_phases(args) -> int:
    spec = _spec_from_flags(FourPhaseSweep, args, seeds=_seeds(args))
    out = _out_of(args, spec)
    print(f"four-phase sweep: {spec.n_runs} runs -> {out}")
    return _run_spec(spec, out, args.quiet, not args.no_figure, args.resume, args.dry_run, args.max_memory)


def cmd_ode(args) -> int:
    if args.init and args.depth != 3:
        raise ConfigError(f"--init gives three-layer starts (a, b, c); --depth {args.depth} cannot be used with it")
    spec = _spec_from_flags(OdeSweep, args, seeds=_seeds(args), atol=args.atol if args.atol is not None else args.rtol)
    out = _out_of(args, spec, Path(args.init).stem if args.init else "")
    print(f"ODE sweep: {f'the starts of {args.init}' if args.init else f'{spec.n_runs} runs'} -> {out}")
    if not args.init:
        return _run_spec(spec, out, args.quiet, not args.no_figure, args.resume, args.dry_run, args.max_memory)
    from .ode.starts import load_effective_init

    a, b, c = load_effective_init(args.init)
    if args.dry_run:
        print(f"dry run (nothing is written): {len(a)} starts of width {a.shape[1]} from {args.init}")
        return 0
    from .ode import sweep

    _enable_compilation_cache()
    manifest = sweep.run_ode_init(a, b, c, out, spec, str(args.init), progress=not args.quiet, resume=args.resume)
    _finish(out, manifest, not args.no_figure)
    return 0


def _require_kind(out: Path, wanted: str, command: str) -> None:
    """`out` holds a finished sweep of kind `wanted`, every part verified; else one line saying which
    command draws what it holds."""
    from .engine import store

    kind = kinds.result_kind(out)
    if kind.name != wanted:
        raise ConfigError(f"{str(out)!r} holds {kind.label} sweep, not {kinds.KINDS[wanted].label} sweep, which "
                          f"`{command}` draws (for this one: condense plot {' or '.join(kind.plots)})")
    store.verify(out)  # every part of every table, before a figure shows a number of it


def cmd_plot(args) -> int:
    from .engine import figures

    with figures.output_format(args.format):
        return _plot(args)


def _plot(args) -> int:
    out = Path(args.result)
    _require_kind(out, kinds.PLOTS[args.figure], f"condense plot {args.figure}")
    output = Path(args.output) if args.output else None
    if args.figure == "theory":
        from .ode import plots

        paths, nums = plots.theory_figures_from_dir(out, output)
        for line in plots.theory_lines(nums):
            print(line)
    elif args.figure == "tstar":
        from .ode import plots

        paths = [plots.tstar_figure_from_dir(out, output)]
    else:  # the kind's figures and summary, as after its sweep
        paths = kinds.figures(out, output)
        for line in kinds.summary(out):
            print(line)
    for path in paths:
        print(f"figure: {path}")
    if not paths:
        print("no figure applies to this directory")
    return 0


def _report_sweep(result: Path):
    """A result directory as the report reads it: the kind's figures, captions and summary lines."""
    from .engine.report import Sweep

    kind = kinds.result_kind(result)
    try:
        summary = kinds.summary(result)
    except ConfigError as e:
        summary = [f"no summary: {e}"]
    captions = kinds.resolve(kind.captions) if kind.captions else {}
    return Sweep(result, lambda out, fig_dir: kinds.call(kind.figures, out, fig_dir), captions, summary)


def cmd_report(args) -> int:
    from .engine.report import build_comparison, build_report

    results = [Path(r) for r in args.result]
    sweeps = [_report_sweep(r) for r in results]  # every directory checked before anything is drawn
    if len(sweeps) == 1:
        path = build_report(sweeps[0], Path(args.output) if args.output else None)
    else:
        path = build_comparison(sweeps, Path(args.output) if args.output else Path("condense_compare.html"))
    print(f"report: {path}")
    return 0


def cmd_phase(args) -> int:
    from .gd.phase_diagram import plots as phase_plots

    out = Path(args.result)
    if not out.is_dir():
        raise ConfigError(f"result directory {str(out)!r} does not exist")
    if kinds.result_kind(out).name != "train":
        raise ConfigError(f"{str(out)!r} holds {kinds.result_kind(out).label} sweep, not a training sweep; phase "
                          "diagrams are fitted to training sweeps over ≥ 2 widths (condense train / kind = 'train')")
    if args.k < 0 or args.tol < 0:
        raise ConfigError(f"--k and --tol must be non-negative, got --k {args.k} --tol {args.tol}")
    coords = (args.x, args.y) if args.x or args.y else None
    if coords and not (args.x and args.y):
        raise ConfigError("give both --x and --y (the two grid coordinates), or neither")
    table, paths = phase_plots.phase_from_dir(out, Path(args.output) if args.output else None, k=args.k, tol=args.tol, coords=coords)
    layers = [c[len("regime_"):] for c in table.columns if c.startswith("regime_") and c != "regime_theory"]
    for layer in layers:
        counts = {k: n for k, n in table[f"regime_{layer}"].value_counts().items() if n}  # categories: every regime
        line = f"{layer}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
        if "regime_theory" in table:
            determined = table[f"regime_{layer}"] != "undetermined"
            agree = int((table.loc[determined, f"regime_{layer}"] == table.loc[determined, "regime_theory"]).sum())
            line += f"; equal to the theory at {agree}/{int(determined.sum())} determined points"
        print(line)
    for path in paths:
        print(f"wrote: {path}")
    return 0


def _default(spec, field: str):
    """A spec dataclass's default for `field`, as argparse takes it (a list for a tuple): the one
    source of every default the CLI uses or states (tests/test_cli_defaults.py)."""
    value = next(f for f in dataclasses.fields(spec) if f.name == field)
    value = value.default_factory() if value.default is dataclasses.MISSING else value.default
    return list(value) if isinstance(value, tuple) else value


def _shown(spec, field: str) -> str:
    """The default of `field` as a flag's help states it: `(default 0.05)`, `(default 1e-06 … 0.01)`."""
    v = spec().to_dict()[field]  # after validation (e.g. init_scales None -> [1e-3])
    fmt = lambda x: f"{x:g}" if isinstance(x, float) else str(x)
    if isinstance(v, list):
        return "(default " + (" ".join(map(fmt, v)) if len(v) <= 2 else f"{fmt(v[0])} … {fmt(v[-1])}") + ")"
    return f"(default {fmt(v)})"


def _out_of(args, spec, tag: str = "") -> Path:
    """--out, else condense_results/NAME-HASH (the first 8 hex digits of the configuration's hash,
    so the same command finds its own directory again and another configuration gets another)."""
    if args.out:
        return Path(args.out)
    return Path("condense_results") / "-".join(filter(None, (spec.name, spec.config_hash()[:8], tag)))


def _out_and_seed_flags(p, seeds: int) -> None:
    """The result directory and the seeds, for every sweep command; resolved by _seeds."""
    p.add_argument("--out", type=_out_dir, help="result directory (default: condense_results/NAME-HASH, printed at the start)")
    p.add_argument("--seeds", type=int, default=seeds, metavar="N", help="number of seeds (0..N-1)")
    p.add_argument("--seed-list", type=int, nargs="*", metavar="S", help="explicit seeds instead of --seeds")


def _seeds(args):
    """--seed-list if given, else --seeds."""
    return args.seed_list if args.seed_list is not None else args.seeds


def _sweep_flags(p) -> None:
    """The flags every sweep command shares."""
    p.add_argument("--no-figure", action="store_true", help="do not draw figures")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--dry-run", action="store_true",
                   help="print the grid size, the chunks and the memory per chunk, compile one chunk, run nothing")
    p.add_argument("--resume", action="store_true",
                   help="compute only the chunks missing from --out (an interrupted sweep of the same configuration)")
    p.add_argument("--max-memory", type=_gib, metavar="GIB",
                   help="refuse a sweep whose estimated working set per chunk exceeds this many GiB "
                   "(default: 80%% of this machine's memory)")


def _out_dir(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"--out must name a directory, got {text!r}")
    return text


def _gib(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"--max-memory takes a positive number of GiB, got {text!r}")
    return v


FIGURE_FORMATS = ("png", "pdf", "svg")  # engine.figures.FORMATS (not imported: `--help` stays light)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("condense_jax")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def cmd_list(args) -> int:
    """Every packaged spec and variant: description, runs, measured time."""
    rows = kinds.packaged_specs()
    width = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['label']:<{width}}  {r['kind']:<11} {r['n_runs']:>7} runs  {r['time'] or '':<11}  {r['description']}")
    print("\ntimes: 2-core CPU, cold / warm XLA cache (benchmarks/sweep_times.py); run one with: condense run NAME [--variant V]")
    return 0


def cmd_show(args) -> int:
    """The resolved configuration and grid size of a spec with its overrides; nothing is compiled or written."""
    spec_path, spec, extra = _spec_and_overrides(args)
    out = Path(extra.get("out") or Path("condense_results") / spec.name)
    print(f"# {spec_path}{f' --variant {args.variant}' if args.variant else ''}: {spec.n_runs} runs -> {out}")
    print(f"# config hash {spec.config_hash()}")
    config = spec.to_dict()
    print(f"kind = {json.dumps(config.pop('kind'))}\n[{spec.KIND}]")
    for key, value in config.items():
        if value is not None:
            print(f"{key} = {json.dumps(value)}")
    return 0


def cmd_describe(args) -> int:
    """The data dictionary: of a result directory's tables (from their Parquet field metadata), of
    a kind, or every kind's as the README's Markdown."""
    from .engine import columns, store

    if args.markdown:
        print(docs_columns())
        return 0
    if args.result is None:
        for table, cols in kinds.dictionary(args.kind).items():
            print("\n".join(columns.lines(table, cols)))
        return 0
    out = Path(args.result)
    kind = kinds.result_kind(out)
    print(f"# {str(out)!r}: {kind.label} sweep; meaning (unit) — source, from each table's Parquet field metadata")
    for table, entries in store.describe(out).items():
        print("\n".join(columns.lines(table, {c: e[0] for c, e in entries.items()}, {c: e[1] for c, e in entries.items()})))
    return 0


def docs_columns() -> str:
    """Every kind's data dictionary as Markdown: the README's column lists (tests/test_columns.py)."""
    from .engine import columns

    labels = {"ode": "condense ode", "train": "condense train", "four_phases": "condense four-phases"}
    return "\n".join(columns.markdown(labels[k], kinds.dictionary(k)) for k in kinds.KINDS)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "condense_jax" / "xla"


def cmd_cache(args) -> int:
    """The persistent XLA compilation cache: where, how big; --clear empties it."""
    import shutil

    path = _cache_dir()
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    size = sum(p.stat().st_size for p in files)
    state = "disabled (CONDENSE_JAX_NO_CACHE is set)" if os.environ.get("CONDENSE_JAX_NO_CACHE") else "enabled"
    print(f"XLA compilation cache: {path} ({len(files)} files, {size / 2**20:.1f} MiB; {state})")
    if args.clear and path.exists():
        shutil.rmtree(path)
        print(f"cleared {path}")
    return 0


def _spec_arguments(p) -> None:
    """SPEC, its KEY=VALUE overrides and --variant: what `run` and `show` resolve (_spec_and_overrides)."""
    p.add_argument("spec", nargs="?", help="path to a .toml spec, or a name in sweeps/ (default: quickstart)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="override the spec's values, e.g. ode.widths=[5,10] ode.seeds=8 (TOML values, checked as the file's)")
    p.add_argument("--variant", help="a [variants.NAME] of the spec, e.g. quick")


def _list_command(sub) -> None:
    """`condense list`."""
    ls = sub.add_parser("list", help="the packaged specs and variants: description, runs, measured time",
                        description="Every packaged spec (condense_jax/sweeps) and variant with a one-line description, "
                        "its run count and its measured time (cold / warm XLA cache, 2-core CPU).")
    ls.set_defaults(func=cmd_list)


def _show_command(sub) -> None:
    """`condense show SPEC [overrides]`."""
    sh = sub.add_parser("show", help="the resolved configuration and grid size of a spec (nothing compiled)",
                        description="Print the configuration `condense run SPEC [overrides]` would run, as TOML, with "
                        "its run count and config hash; nothing is compiled or written.")
    _spec_arguments(sh)
    sh.set_defaults(func=cmd_show)


def _describe_command(sub) -> None:
    """`condense describe [DIR] [--kind K] [--markdown]`."""
    de = sub.add_parser("describe", help="the data dictionary: what every column means, its unit and source",
                        description="Print what every column of a result directory's tables means, its unit and the "
                        "equation or module it comes from (read from the tables' Parquet field metadata); without "
                        "DIR, the dictionary of a kind of sweep.")
    de.add_argument("result", nargs="?", help="result directory (default: describe --kind)")
    de.add_argument("--kind", choices=sorted(kinds.KINDS), default="ode", help="the kind to describe without DIR (default: ode)")
    de.add_argument("--markdown", action="store_true", help="every kind's dictionary as Markdown (the README's column lists)")
    de.set_defaults(func=cmd_describe)


def _cache_command(sub) -> None:
    """`condense cache [--clear]`."""
    ca = sub.add_parser("cache", help="the persistent XLA compilation cache: location and size; --clear empties it",
                        description="condense keeps compiled programs in $XDG_CACHE_HOME/condense_jax/xla "
                        "(default ~/.cache/condense_jax/xla), so a repeated sweep starts warm; CONDENSE_JAX_NO_CACHE=1 "
                        "disables it.")
    ca.add_argument("--clear", action="store_true", help="delete the cache")
    ca.set_defaults(func=cmd_cache)


def _run_command(sub) -> None:
    """`condense run [SPEC]`: any sweep from a TOML spec, here or as a job array."""
    r = sub.add_parser("run", help="run a sweep from a TOML spec (default: the built-in quickstart)",
                       description="Run a sweep from a TOML spec file, or by name from sweeps/. "
                       "Without a spec, runs the built-in quickstart (its measured times: the README's table of sweep times).")
    _spec_arguments(r)
    r.add_argument("--out", type=_out_dir, help="result directory (default: the spec's `out`, else condense_results/NAME)")
    _sweep_flags(r)
    cl = r.add_argument_group("cluster (submitit): the chunks as a job array; --out must be on a shared file system")
    cl.add_argument("--executor", choices=["slurm", "local", "debug"],
                    help="slurm: a Slurm job array; local: subprocesses here; debug: in this process")
    cl.add_argument("--tasks", type=int, help="array tasks (default 16; each computes every K-th missing chunk)")
    cl.add_argument("--array-parallelism", type=int, help="Slurm: tasks running at once")
    cl.add_argument("--slurm-partition", help="Slurm partition")
    cl.add_argument("--slurm-time", type=int, metavar="MIN", help="time limit per task in minutes (default 60; "
                    "a task that runs out is requeued and skips the chunks it wrote)")
    cl.add_argument("--cpus-per-task", type=int, help="CPUs per task")
    cl.add_argument("--mem-gb", type=float, help="memory per task (GB)")
    cl.add_argument("--gpus-per-node", type=int, help="GPUs per task's node")
    cl.add_argument("--no-wait", action="store_true", help="return after submitting; finish later with --resume")
    r.set_defaults(func=cmd_run)


def _ode_command(sub) -> None:
    """`condense ode`: the effective-ODE sweep from flags (defaults: OdeSweep)."""
    o = sub.add_parser(
        "ode",
        help="effective ODE (3.10) to blow-up: T*, bounds, final stage, condensation",
        description="Integrate the effective ODE da/dt = bc, db/dt = acᵀ, dc/dt = bᵀa (depth 3; "
        "any depth with --depth) to its blow-up time T*, over widths × per-layer scales × seeds, "
        "or from explicit starts with --init. Writes DIR/runs, DIR/series (Parquet) and a figure.",
        formatter_class=_Help,
    )
    _out_and_seed_flags(o, seeds=len(OdeSweep().seeds))
    o.add_argument("--widths", type=int, nargs="+", default=_default(OdeSweep, "widths"), metavar="M", help="hidden widths m")
    o.add_argument("--scale-a", type=float, nargs="+", default=_default(OdeSweep, "scale_a"), metavar="σ", help="std of a(0) entries")
    o.add_argument("--scale-b", type=float, nargs="+", default=_default(OdeSweep, "scale_b"), metavar="σ", help="std of b(0) entries")
    o.add_argument("--scale-c", type=float, nargs="+", default=_default(OdeSweep, "scale_c"), metavar="σ", help="std of c(0) entries")
    o.add_argument("--depth", type=int, default=_default(OdeSweep, "depth"), metavar="L", help="depth L ≥ 2 (3 is the paper's model)")
    o.add_argument("--init", metavar="FILE.npz", help="explicit starts: arrays a (B,m), b (B,m,m), c (B,m)")
    o.add_argument("--rtol", type=float, default=_default(OdeSweep, "rtol"), help="relative tolerance of the adaptive solver")
    o.add_argument("--atol", type=float, default=None, help="absolute tolerance, relative to the start's scale (default: rtol)")
    o.add_argument("--tau-max", type=float, default=_default(OdeSweep, "tau_max"), help="give up (status max_steps) past this projective time")
    o.add_argument("--series-dtau", type=float, default=_default(OdeSweep, "series_dtau"), help="spacing of the recorded series in projective time τ")
    o.add_argument("--chunk-size", type=int, help="starts solved together; bounds peak memory (default: sized per width to ~256 MB)")
    grid = o.add_mutually_exclusive_group()
    grid.add_argument("--series-t", type=float, nargs="+", metavar="T", help="record the series at these times t (default: the τ grid)")
    grid.add_argument("--series-E", type=float, nargs="+", metavar="E", help="record the series where E(t) reaches these energies")
    o.add_argument("--pair-counts", action="store_true", help="record Assumption 2 (2) pair counts in the series (O(m²) per record)")
    o.add_argument("--stepping", choices=["per_start", "shared"], default=_default(OdeSweep, "stepping"),
                   help="per_start: every start its own adaptive steps (its numbers do not depend on its chunk-mates); "
                   "shared: one step size per chunk, often 10-40%% faster, every start still within the tolerance")
    o.add_argument("--name", default=_default(OdeSweep, "name"), help="name of the sweep (in the manifest)")
    _sweep_flags(o)
    o.set_defaults(func=cmd_ode)


def _train_command(sub) -> None:
    """`condense train`: the gradient-descent sweep from flags (defaults: TrainSweep)."""
    tr = sub.add_parser(
        "train",
        help="gradient-descent training from small init over widths × init scales × seeds",
        description="Full-batch training of three-layer (3.1), two-layer or deep linear (A.1) networks from "
        "small initialisation, vmapped over seeds × init scales (one compiled call per width). Records loss, "
        "relative distances, condensation, the Assumption 2 indicators, the plateau-escape step and the escape "
        "step predicted by the effective ODE. Writes DIR/runs, DIR/series, DIR/cosines (Parquet) and figures.",
        formatter_class=_Help,
    )
    _out_and_seed_flags(tr, seeds=len(TrainSweep().seeds))
    tr.add_argument("--model", choices=["three-layer", "two-layer", "deep-linear", "cnn"], default=_default(TrainSweep, "model"), help="network")
    tr.add_argument("--widths", type=int, nargs="+", default=_default(TrainSweep, "widths"), metavar="M", help="hidden widths m")
    scales = tr.add_mutually_exclusive_group()
    scales.add_argument("--init-scales", type=float, nargs="+", metavar="ε", help=f"init scales ε {_shown(TrainSweep, 'init_scales')}")
    scales.add_argument("--scale-exponents", type=float, nargs="+", metavar="γ", help="init scales ε = m^(−γ)")
    scales.add_argument("--gammas", type=float, nargs="+", metavar="γ", help="two-layer: γ = −log(β₁β₂/α)/log m (with --gamma-primes)")
    tr.add_argument("--gamma-primes", type=float, nargs="+", metavar="γ'", help="two-layer: γ' = −log(β₂/β₁)/log m (β₂: output std; Luo et al.)")
    tr.add_argument("--layer-scales", type=float, nargs="+", metavar="s", help="per-layer multipliers of ε (three-layer: a W² W¹; two-layer: w a)")
    tr.add_argument("--alpha", type=float, default=_default(TrainSweep, "alpha"), help="two-layer output scale α: f = (1/α) Σ a_k σ(w_k·x)")
    tr.add_argument("--activation", default=_default(TrainSweep, "activation"), help="tanh, relu, sigmoid (shifted, σ(0) = 0) or identity")
    tr.add_argument("--bias", action="store_true", help="append a constant 1 to every input (input bias)")
    tr.add_argument("--data", default=None,
                    help="tanh (the paper's regression, default), separable (two classes), fig3 (deep-linear), "
                         "digits (cnn, default for it) or an .npz path")
    tr.add_argument("--conv-layers", type=int, default=_default(TrainSweep, "conv_layers"), help="cnn: conv layers L, each with WIDTH channels")
    tr.add_argument("--kernel-size", type=int, default=_default(TrainSweep, "kernel_size"), help="cnn: m of the m×m filters")
    tr.add_argument("--hidden", type=int, default=None, help="cnn: width of a hidden fully connected layer")
    tr.add_argument("--conv-fan-gamma", type=float, default=None, metavar="γ",
                    help="cnn: the paper's init, conv std ((c_in + c_out)/2 · m²)^(−γ); output std ε·s₂")
    tr.add_argument("--loss", choices=["mse", "cross_entropy"], default=_default(TrainSweep, "loss"),
                    help="cnn: mse on the label value (the theory) or softmax cross-entropy")
    tr.add_argument("--n", type=int, default=_default(TrainSweep, "n"), help="samples of the generated data")
    tr.add_argument("--grid", action="store_true", help="tanh data on an even grid instead of uniform random")
    tr.add_argument("--data-seed", type=int, default=_default(TrainSweep, "data_seed"), help="seed of the generated data")
    tr.add_argument("--lr", type=float, default=_default(TrainSweep, "lr"), help="learning rate")
    tr.add_argument("--lr-ntk", type=float, default=None, metavar="ETA",
                    help="per-run step size min(lr, ETA/K0), K0 = trace of the initial tangent kernel over n")
    tr.add_argument("--lr-drop", type=_lr_drop, action="append", metavar="STEP:LR", help="from STEP on use LR (repeatable)")
    tr.add_argument("--optimizer", choices=["gd", "adam"], default=_default(TrainSweep, "optimizer"), help="full-batch GD (the papers') or Adam")
    tr.add_argument("--steps", type=int, default=_default(TrainSweep, "steps"), help="optimiser steps")
    tr.add_argument("--records", type=int, default=_default(TrainSweep, "n_records"), help="log-spaced record steps (plus 0 and the last)")
    tr.add_argument("--record-steps", type=int, nargs="+", metavar="K", help="explicit record steps instead of --records")
    tr.add_argument("--cosine-steps", type=int, nargs="+", metavar="K", help="steps whose cosine matrices are stored (default: first and last)")
    tr.add_argument("--cosine-seeds", type=int, default=_default(TrainSweep, "cosine_seeds"), help="store cosine matrices for the first this many seeds")
    tr.add_argument("--escape-fraction", type=float, default=_default(TrainSweep, "escape_fraction"), help="escape step: first step with loss ≤ this × initial loss")
    tr.add_argument("--cos-threshold", type=float, default=_default(TrainSweep, "cos_threshold"), help="rows with |cos| ≥ this count as one direction")
    tr.add_argument("--loss-threshold", type=float, default=_default(TrainSweep, "loss_threshold"), help="stop a run once its loss is at most this")
    tr.add_argument("--diverge-factor", type=float, default=_default(TrainSweep, "diverge_factor"), help="a loss above this × the initial loss is divergence")
    tr.add_argument("--dtype", choices=["float32", "float64"], default=_default(TrainSweep, "dtype"), help="training precision")
    tr.add_argument("--top-k", type=int, default=_default(TrainSweep, "top_k"), help="deep-linear: singular values of W recorded")
    tr.add_argument("--no-predict", action="store_true", help="skip the effective-ODE prediction of the escape step")
    tr.add_argument("--fast-forward", action="store_true",
                    help="skip the plateau: the leading-order GD dynamics up to the handover, then GD (three-layer, "
                    "two-layer and one-conv-layer CNN; tanh, sigmoid or identity; plain GD)")
    tr.add_argument("--fast-forward-norm", type=float, default=_default(TrainSweep, "fast_forward_norm"), metavar="δ",
                    help="hand over to GD when, to leading order, the largest pre-activation or output (three-layer) "
                    "or the norm of the moving weights (two-layer, CNN) reaches δ, in (0, 1]")
    tr.add_argument("--chunk-size", type=int, help="seeds per compiled call (default: sized to ~512 MB)")
    tr.add_argument("--name", default=_default(TrainSweep, "name"), help="name of the sweep (in the manifest)")
    _sweep_flags(tr)
    tr.set_defaults(func=cmd_train)


def _phase_command(sub) -> None:
    """`condense phase DIR`: the phase diagram of a training sweep."""
    ph = sub.add_parser(
        "phase", help="phase diagram of a training sweep: width slopes of RD, regimes, figures",
        description="Fit RD ∝ m^(−S) over the widths at every grid point of a training sweep, classify it "
                    "(linear S > 0, critical |S| ≤ k·stderr + tol, condensed S < 0), write "
                    "RESULT/phase/phase_table.{parquet,csv} and the figures.")
    ph.add_argument("result", help="result directory of a training sweep with ≥ 2 widths (e.g. sweeps/phase_two_layer.toml)")
    ph.add_argument("--k", type=float, default=2.0, help="critical band: |S| ≤ k·stderr + tol (default k = 2)")
    ph.add_argument("--tol", type=float, default=0.05, help="critical band's absolute part (default 0.05)")
    ph.add_argument("--x", help="grid coordinate on the x axis (default: gamma_prime, or exp_w1 for three-layer)")
    ph.add_argument("--y", help="grid coordinate on the y axis (default: gamma, or exp_w2 for three-layer)")
    ph.add_argument("--output", help="figure directory (default: RESULT/figures)")
    ph.set_defaults(func=cmd_phase)


def _four_phases_command(sub) -> None:
    """`condense four-phases`: the four-phase sweep from flags (defaults: FourPhaseSweep)."""
    fp = sub.add_parser(
        "four-phases",
        help="the four phases of a two-layer ReLU classifier from small init, detected per run",
        description="Train f(x) = Σ a_k relu(w_k·x) (bias-free, both layers) on linearly separable two-class data "
        "by small-step GD or gradient flow (Diffrax) over widths × n × Δ × init scales × seeds; detect each run's "
        "phases (I condensation, II saddle-to-plateau, III plateau escape, IV convergence) and write "
        "DIR/runs, DIR/series, DIR/neurons (Parquet) and figures. Defaults: FourPhaseSweep's, shown with each flag "
        "(sweeps/four_phases.toml is the paper-sized setting: condense run four_phases).",
        formatter_class=_Help,
    )
    _out_and_seed_flags(fp, seeds=len(FourPhaseSweep().seeds))
    fp.add_argument("--widths", type=int, nargs="+", metavar="M", help=f"hidden widths m {_shown(FourPhaseSweep, 'widths')}")
    fp.add_argument("--init-scales", type=float, nargs="+", metavar="ε", help=f"init scales ε {_shown(FourPhaseSweep, 'init_scales')}")
    fp.add_argument("--data", help="angled (default), orthogonal, digits or an .npz with x (n, d), y = ±1")
    fp.add_argument("--n", type=int, nargs="+", metavar="N", help=f"samples per data set {_shown(FourPhaseSweep, 'n')}")
    fp.add_argument("--delta", type=float, nargs="+", metavar="Δ", help=f"angle between the class centres, degrees in (0, 180] {_shown(FourPhaseSweep, 'delta')}")
    fp.add_argument("--spread", type=float, help=f"angular spread of each class, ± degrees {_shown(FourPhaseSweep, 'spread')}")
    fp.add_argument("--d", type=int, help=f"input dimension of the angled data {_shown(FourPhaseSweep, 'd')}")
    fp.add_argument("--positive-fraction", type=float, help=f"share of positive samples {_shown(FourPhaseSweep, 'positive_fraction')}")
    fp.add_argument("--negative-norm", type=float, help=f"norm factor of the negative class {_shown(FourPhaseSweep, 'negative_norm')}")
    fp.add_argument("--digits", type=int, nargs=2, metavar=("A", "B"), help=f"digit pair for --data digits {_shown(FourPhaseSweep, 'digits')}")
    fp.add_argument("--data-seed", type=int, help=f"seed of the generated data {_shown(FourPhaseSweep, 'data_seed')}")
    fp.add_argument("--allow-nonseparable", action="store_true", default=None, help="train on data no hyperplane through 0 separates")
    fp.add_argument("--loss", choices=["logistic", "exponential"], help="default logistic")
    fp.add_argument("--init", choices=["gaussian", "balanced"], help="independent Gaussian (default) or |a_k| = ‖w_k‖")
    fp.add_argument("--method", choices=["gd", "gf"], help="small-step GD (default) or gradient flow with Diffrax")
    fp.add_argument("--t-min", type=float, help=f"first record time {_shown(FourPhaseSweep, 't_min')}")
    fp.add_argument("--t-max", type=float, help=f"last record time {_shown(FourPhaseSweep, 't_max')}")
    fp.add_argument("--n-records", type=int, help=f"log-spaced record times {_shown(FourPhaseSweep, 'n_records')}")
    fp.add_argument("--lr", type=float, help=f"GD: smallest step {_shown(FourPhaseSweep, 'lr')}")
    fp.add_argument("--lr-rel", type=float, help=f"GD: the step grows to this × t {_shown(FourPhaseSweep, 'lr_rel')}")
    fp.add_argument("--lr-max", type=float, help=f"GD: largest step {_shown(FourPhaseSweep, 'lr_max')}")
    fp.add_argument("--dtype", choices=["float32", "float64"], help="default float32 (use float64 with --method gf)")
    fp.add_argument("--loss-threshold", type=float, help="freeze a run once its loss is at most this (status converged)")
    fp.add_argument("--diverge-factor", type=float, help=f"a loss above this × the initial loss is divergence {_shown(FourPhaseSweep, 'diverge_factor')}")
    fp.add_argument("--neuron-seeds", type=int, help=f"per-neuron records for the first this many seeds {_shown(FourPhaseSweep, 'neuron_seeds')}")
    fp.add_argument("--cos-tol", type=float, help=f"condensation: every live neuron within this cos of its group {_shown(FourPhaseSweep, 'cos_tol')}")
    fp.add_argument("--chunk-size", type=int, help="seeds per compiled call (default: up to 512 runs, seeds × init scales, a chunk)")
    fp.add_argument("--name", help="name of the sweep (in the manifest)")
    _sweep_flags(fp)
    fp.set_defaults(func=cmd_four_phases)


def _report_command(sub) -> None:
    """`condense report DIR`."""
    rp = sub.add_parser("report", help="one self-contained HTML page summarising a sweep, or comparing several",
                        description="Write RESULT/report.html: status counts, the printed fits and phase shares, every "
                        "figure that applies with a caption saying what to look for, a summary of the runs table, the "
                        "configuration and provenance, embedded in one file (open it in a browser). With several "
                        "results: one page comparing them side by side (the same figure of each in one row, a table of "
                        "their configuration differences), condense_compare.html by default.")
    rp.add_argument("result", nargs="+", help="result directory of any sweep (several: a comparison)")
    rp.add_argument("--output", "--out", dest="output",
                    help="HTML path (default: RESULT/report.html; several results: condense_compare.html)")
    rp.set_defaults(func=cmd_report)


def _plot_command(sub) -> None:
    """`condense plot NAME DIR`: a kind's figures, redrawn."""
    pl = sub.add_parser("plot", help="figures from a result directory")
    plsub = pl.add_subparsers(dest="figure", required=True, parser_class=_Parser)
    t = plsub.add_parser("tstar", help="T* against Theorem 1's bound, E(t) between its envelopes")
    t.add_argument("result", help="result directory written by `condense ode` or `condense run`")
    t.add_argument("--output", "--out", dest="output", help="figure path (default: RESULT/figures/tstar_bounds.FORMAT)")
    t.add_argument("--format", choices=FIGURE_FORMATS, default="png", help="png, or pdf / svg for a paper")
    t.set_defaults(func=cmd_plot)
    th = plsub.add_parser("theory", help="theory checks: T* against Theorem 1, ρ = (T* − t)/E^(−1/3), C(t), T* scaling")
    th.add_argument("result", help="result directory written by `condense ode` or `condense run`")
    th.add_argument("--output", "--out", dest="output", help="figure directory (default: RESULT/figures)")
    th.add_argument("--format", choices=FIGURE_FORMATS, default="png", help="png, or pdf / svg for a paper")
    th.set_defaults(func=cmd_plot)
    tp = plsub.add_parser("train", help="training figures: loss, cosine heatmaps, Assumption 2, escape steps")
    tp.add_argument("result", help="result directory written by `condense train` or `condense run`")
    tp.add_argument("--output", "--out", dest="output", help="figure directory (default: RESULT/figures)")
    tp.add_argument("--format", choices=FIGURE_FORMATS, default="png", help="png, or pdf / svg for a paper")
    tp.set_defaults(func=cmd_plot)
    pp = plsub.add_parser("phases", help="four-phase figures: timelines, neuron arrows, boundary times across the sweep")
    pp.add_argument("result", help="result directory written by `condense four-phases` or `condense run`")
    pp.add_argument("--output", "--out", dest="output", help="figure directory (default: RESULT/figures)")
    pp.add_argument("--format", choices=FIGURE_FORMATS, default="png", help="png, or pdf / svg for a paper")
    pp.set_defaults(func=cmd_plot)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="condense",
        description="Sweep the training dynamics of small-initialised networks. Start with `condense run`.",
    )
    p.add_argument("--version", action="version", version=f"condense_jax {_version()}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    _run_command(sub)
    _list_command(sub)
    _show_command(sub)
    _ode_command(sub)
    _train_command(sub)
    _phase_command(sub)
    _four_phases_command(sub)
    _report_command(sub)
    _plot_command(sub)
    _describe_command(sub)
    _cache_command(sub)
    return p


def main(argv=None) -> int:
    from .engine import interrupts

    mine = interrupts.install()  # first thing: a Ctrl-C while JAX imports is not lost
    try:
        return _main(argv)
    finally:
        if mine:
            interrupts.uninstall()


def _main(argv=None) -> int:
    from .engine.devices import use_all_cpu_cores

    use_all_cpu_cores()  # before JAX starts: one XLA host device per core
    # Equinox's runtime checks inside diffrax become NaNs (reported as status `nonfinite`) instead of
    # host callbacks, which JAX's persistent compilation cache refuses to store
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    import warnings

    warnings.formatwarning = lambda message, *args, **kwargs: f"condense: warning: {message}\n"
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE overrides may also follow the options (condense run SPEC --variant quick ode.seeds=4)
        if getattr(args, "overrides", None) is None or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    if args.command is None:  # `condense` alone: the help
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"condense {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an output path that cannot be created or written, a full disk, …
        where = f" ({e.filename})" if e.filename else ""
        print(f"condense {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # SweepInterrupted (a first SIGINT / SIGTERM), or a Ctrl-C outside a sweep
        print(f"condense: {str(e) or 'interrupted; finished chunks are kept, rerun with --resume to complete the sweep'}",
              file=sys.stderr)
        return 130
