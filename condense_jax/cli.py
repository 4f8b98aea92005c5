"""The `condense` command line.

    condense run [SPEC]            a sweep from a TOML spec (default: the built-in quickstart)
    condense ode [flags] --out DIR an effective-ODE sweep from flags, or from explicit starts (--init)
    condense plot tstar DIR        T* against Theorem 1, and E(t) between its envelopes

Bad input ends with one line `condense: error: …` and exit code 2; nothing is written.
Heavy imports (JAX, pandas) happen only once a command runs, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import ConfigError, OdeSweep, load_spec

PACKAGED_SWEEPS = Path(__file__).resolve().parent / "sweeps"


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

    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "condense_jax" / "xla"
    try:
        base.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(base))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    except (OSError, AttributeError):
        pass


def _resolve_spec(name: str | None) -> Path:
    """A spec path, or a name found in ./sweeps/ or among the packaged sweeps."""
    if name is None:
        return PACKAGED_SWEEPS / "quickstart.toml"
    p = Path(name)
    if p.exists():
        return p
    for base in (Path("sweeps"), PACKAGED_SWEEPS):
        q = base / (name if name.endswith(".toml") else f"{name}.toml")
        if q.exists():
            return q
    known = sorted(f.stem for f in PACKAGED_SWEEPS.glob("*.toml"))
    raise ConfigError(f"spec {name!r} not found (not a file; packaged sweeps: {known})")


def _finish(out: Path, manifest: dict, figure: bool) -> None:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(manifest["status_counts"].items()))
    print(f"wrote {manifest['n_runs']} runs to {out}/runs and {out}/series ({counts})")
    if figure:
        from . import plots

        try:
            path = plots.tstar_figure_from_dir(out)
            print(f"figure: {path}")
        except ConfigError as e:
            print(f"no figure: {e}")


def cmd_run(args) -> int:
    spec_path = _resolve_spec(args.spec)
    spec, extra = load_spec(spec_path)
    out = Path(args.out or extra.get("out") or Path("condense_results") / spec.name)
    print(f"sweep {spec.name!r} from {spec_path}: {spec.n_runs} runs -> {out}")
    from . import sweep

    _enable_compilation_cache()
    manifest = sweep.run_ode_sweep(spec, out, progress=not args.quiet)
    _finish(out, manifest, not args.no_figure)
    return 0


def cmd_ode(args) -> int:
    seeds = args.seed_list if args.seed_list is not None else args.seeds
    if args.init and args.depth != 3:
        raise ConfigError(f"--init gives three-layer starts (a, b, c); --depth {args.depth} cannot be used with it")
    spec = OdeSweep(
        widths=tuple(args.widths),
        seeds=seeds,
        scale_a=tuple(args.scale_a),
        scale_b=tuple(args.scale_b),
        scale_c=tuple(args.scale_c),
        depth=args.depth,
        rtol=args.rtol,
        atol=args.atol if args.atol is not None else args.rtol,
        tau_max=args.tau_max,
        series_dtau=args.series_dtau,
        chunk_size=args.chunk_size,
        pair_counts=args.pair_counts,
        stepping=args.stepping,
        series_t=tuple(args.series_t) if args.series_t is not None else None,
        series_E=tuple(args.series_E) if args.series_E is not None else None,
        name=args.name,
    )
    out = Path(args.out)
    from . import sweep

    if args.init:
        from .data import load_effective_init

        a, b, c = load_effective_init(args.init)
        _enable_compilation_cache()
        manifest = sweep.run_ode_init(a, b, c, out, spec, str(args.init), progress=not args.quiet)
    else:
        _enable_compilation_cache()
        manifest = sweep.run_ode_sweep(spec, out, progress=not args.quiet)
    _finish(out, manifest, not args.no_figure)
    return 0


def cmd_plot(args) -> int:
    from . import plots, store

    out = Path(args.result)
    if store.read_manifest(out) is None:
        raise ConfigError(f"{str(out)!r} is not a condense_jax result directory (no manifest.json)")
    path = plots.tstar_figure_from_dir(out, Path(args.output) if args.output else None)
    print(f"figure: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="condense",
        description="Sweep the training dynamics of small-initialised networks. Start with `condense run`.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a sweep from a TOML spec (default: the built-in quickstart)",
                       description="Run a sweep from a TOML spec file, or by name from sweeps/. "
                       "Without a spec, runs the built-in quickstart (about a minute on a laptop).")
    r.add_argument("spec", nargs="?", help="path to a .toml spec, or a name in sweeps/ (default: quickstart)")
    r.add_argument("--out", help="result directory (default: the spec's `out`, else condense_results/NAME)")
    r.add_argument("--no-figure", action="store_true", help="do not draw figures")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=cmd_run)

    o = sub.add_parser(
        "ode",
        help="effective ODE (3.10) to blow-up: T*, bounds, final stage, condensation",
        description="Integrate the effective ODE da/dt = bc, db/dt = acᵀ, dc/dt = bᵀa (depth 3; "
        "any depth with --depth) to its blow-up time T*, over widths × per-layer scales × seeds, "
        "or from explicit starts with --init. Writes DIR/runs, DIR/series (Parquet) and a figure.",
        formatter_class=_Help,
    )
    o.add_argument("--out", required=True, help="result directory")
    o.add_argument("--widths", type=int, nargs="+", default=[20], metavar="M", help="hidden widths m")
    o.add_argument("--seeds", type=int, default=16, metavar="N", help="number of seeds (0..N-1)")
    o.add_argument("--seed-list", type=int, nargs="*", metavar="S", help="explicit seeds instead of --seeds")
    o.add_argument("--scale-a", type=float, nargs="+", default=[1.0], metavar="σ", help="std of a(0) entries")
    o.add_argument("--scale-b", type=float, nargs="+", default=[1.0], metavar="σ", help="std of b(0) entries")
    o.add_argument("--scale-c", type=float, nargs="+", default=[1.0], metavar="σ", help="std of c(0) entries")
    o.add_argument("--depth", type=int, default=3, metavar="L", help="depth L ≥ 2 (3 is the paper's model)")
    o.add_argument("--init", metavar="FILE.npz", help="explicit starts: arrays a (B,m), b (B,m,m), c (B,m)")
    o.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of the adaptive solver")
    o.add_argument("--atol", type=float, default=None, help="absolute tolerance, relative to the start's scale (default: rtol)")
    o.add_argument("--tau-max", type=float, default=200.0, help="give up (status max_steps) past this projective time")
    o.add_argument("--series-dtau", type=float, default=1.0, help="spacing of the recorded series in projective time τ")
    o.add_argument("--chunk-size", type=int, help="starts solved together; bounds peak memory (default: sized per width to ~256 MB)")
    grid = o.add_mutually_exclusive_group()
    grid.add_argument("--series-t", type=float, nargs="+", metavar="T", help="record the series at these times t (default: the τ grid)")
    grid.add_argument("--series-E", type=float, nargs="+", metavar="E", help="record the series where E(t) reaches these energies")
    o.add_argument("--pair-counts", action="store_true", help="record Assumption 2 (2) pair counts in the series (O(m²) per record)")
    o.add_argument("--stepping", choices=["per_start", "shared"], default="per_start",
                   help="per_start: every start its own adaptive steps (its numbers do not depend on its chunk-mates); "
                   "shared: one step size per chunk, often 10-40%% faster, every start still within the tolerance")
    o.add_argument("--name", default="ode", help="name of the sweep (in the manifest)")
    o.add_argument("--no-figure", action="store_true", help="do not draw figures")
    o.add_argument("--quiet", action="store_true", help="no progress output")
    o.set_defaults(func=cmd_ode)

    pl = sub.add_parser("plot", help="figures from a result directory")
    plsub = pl.add_subparsers(dest="figure", required=True, parser_class=_Parser)
    t = plsub.add_parser("tstar", help="T* against Theorem 1's bound, E(t) between its envelopes")
    t.add_argument("result", help="result directory written by `condense ode` or `condense run`")
    t.add_argument("--output", help="PNG path (default: RESULT/figures/tstar_bounds.png)")
    t.set_defaults(func=cmd_plot)
    return p


def main(argv=None) -> int:
    from .devices import use_all_cpu_cores

    use_all_cpu_cores()  # before JAX starts: one XLA host device per core
    # Equinox's runtime checks inside diffrax become NaNs (reported as status `nonfinite`) instead of
    # host callbacks, which JAX's persistent compilation cache refuses to store
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"condense {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an output path that cannot be created or written, a full disk, …
        where = f" ({e.filename})" if e.filename else ""
        print(f"condense {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("condense: interrupted; finished chunks are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
