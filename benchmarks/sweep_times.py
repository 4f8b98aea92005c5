"""Measured wall time of every packaged sweep that fits a laptop, with a cold and a warm cache.

For each (spec, variant) below: `condense run SPEC [--variant V] --out DIR --quiet` in a fresh
process, figures included (what the user runs), first with an empty XLA compilation cache (a fresh
XDG_CACHE_HOME: cold), then once more into a new directory with the cache the first run filled
(warm). Times are wall-clock seconds of the whole command, Python start-up included.

The numbers go to benchmarks/results_sweep_times.txt; the README's table of sweep times and the
`# Time:` line of each spec file quote them, and tests/test_docs.py checks that all three agree.
The full (non-quick) variants of the paper's figures are GPU-sized and not timed here.

    python benchmarks/sweep_times.py              # every sweep below (about 5 minutes on 2 cores)
    python benchmarks/sweep_times.py quickstart   # some of them
    python benchmarks/sweep_times.py --update-docs   # then write the results into the README and specs
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results_sweep_times.txt"
SWEEPS = [
    ("quickstart", None), ("imbalance", None), ("depth", None),
    ("fig1_three_layer", "quick"), ("fig2b_init_scales", "quick"), ("fig3_matrix_factorisation", "quick"),
    ("phase_two_layer", "quick"), ("phase_three_layer", "quick"), ("cnn_fig2_digits", "quick"),
    ("cnn_fig3_digits", "quick"), ("four_phases", "quick"),
]


def label(spec: str, variant: str | None) -> str:
    return spec + (f" --variant {variant}" if variant else "")


def timed(spec: str, variant: str | None, out: Path, cache: Path) -> float:
    cmd = [sys.executable, "-m", "condense_jax.cli", "run", spec, "--out", str(out), "--quiet"]
    cmd += ["--variant", variant] if variant else []
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("CONDENSE_JAX_NO_CACHE", None)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{label(spec, variant)} failed:\n{res.stderr[-3000:]}")
    return took


def read_results(path: Path = RESULTS) -> dict[str, tuple[int, int]]:
    """{label: (cold s, warm s)} from a results file."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("| `condense run "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].strip("`")[len("condense run "):]] = (int(cells[1].rstrip(" s")), int(cells[2].rstrip(" s")))
    return out


TIME_HEAD = "# Time on a 2-core CPU (cold / warm XLA cache, benchmarks/sweep_times.py)"


def update_docs(results: dict[str, tuple[int, int]]) -> None:
    """Quote the measurements in each spec's `# Time` line, the README's table and its first command."""
    for spec, variant in SWEEPS:
        path = ROOT / "sweeps" / f"{spec}.toml"
        cold, warm = results[label(spec, variant)]
        line = TIME_HEAD + (f", --variant {variant}" if variant else "") + f": {cold} s / {warm} s."
        lines = [x for x in path.read_text().splitlines() if not x.startswith(TIME_HEAD)]
        i = next((k for k, x in enumerate(lines) if not x.startswith("#")), len(lines))
        path.write_text("\n".join([*lines[:i], line, *lines[i:]]) + "\n")
    readme = (ROOT / "README.md").read_text()
    table = "| sweep | cold cache | warm cache |\n|---|---|---|\n" + "".join(
        f"| `condense run {label(s, v)}` | {results[label(s, v)][0]} s | {results[label(s, v)][1]} s |\n" for s, v in SWEEPS)
    start = readme.index("<!-- sweep times -->\n") + len("<!-- sweep times -->\n")
    readme = readme[:start] + table + readme[readme.index("<!-- /sweep times -->"):]
    q = results["quickstart"]
    readme = re.sub(r"the run: \d+ s with a cold XLA cache, \d+ s warm", f"the run: {q[0]} s with a cold XLA cache, {q[1]} s warm",
                    readme)
    (ROOT / "README.md").write_text(readme)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("only", nargs="*", help="spec names to time (default: all)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--update-docs", action="store_true", help="only write the results file's numbers into the docs")
    args = ap.parse_args()
    if args.update_docs:
        update_docs(read_results(args.output))
        print("updated README.md and sweeps/*.toml")
        return 0
    chosen = [(s, v) for s, v in SWEEPS if not args.only or s in args.only]
    load = os.getloadavg()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, variant in chosen:
            cache = Path(tmp) / f"cache-{spec}"
            cold = timed(spec, variant, Path(tmp) / f"{spec}-cold", cache)
            warm = timed(spec, variant, Path(tmp) / f"{spec}-warm", cache)
            shutil.rmtree(cache, ignore_errors=True)
            rows[label(spec, variant)] = (round(cold), round(warm))
            print(f"{label(spec, variant):45s} cold {cold:6.1f} s   warm {warm:6.1f} s", flush=True)
    previous = read_results(args.output) if args.output.exists() else {}
    previous.update(rows)
    header = (f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPU cores, load average at the "
              f"start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; python benchmarks/sweep_times.py\n"
              "# wall time of the whole command (start-up, compilation, the sweep, the figures); cold: empty XLA cache\n\n"
              "| sweep | cold cache | warm cache |\n|---|---|---|\n")
    order = [label(s, v) for s, v in SWEEPS]
    lines = [f"| `condense run {name}` | {c} s | {w} s |" for name in order if name in previous for c, w in [previous[name]]]
    args.output.write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
