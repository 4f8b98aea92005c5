"""Benchmark: condense_jax blow-up solves against the SciPy loops a user would otherwise write.

What is compared, on the same Gaussian starts a (B,m), b (B,m,m), c (B,m) ~ N(0,1) (numpy seed 0)
of the three-layer effective ODE  da/dt = b c,  db/dt = a cᵀ,  dc/dt = bᵀ a  (blow-up at T*):

* condense_jax: ``solve_three_layer`` (reduced form, projective time, diffrax; both stepping
  modes, ``per_start`` = vmapped solves and ``shared`` = one step size per chunk) through
  ``condense_jax.solve_blowup``; timed cold (first call, JIT compilation included) and warm (second call),
  warm = best of 3, each configuration in a fresh child process; the host linear algebra (``reduce_start``: two
  ``eigh`` per start) is also timed on its own;
* SciPy, full system: a per-seed ``solve_ivp(method="DOP853")`` loop on θ = (a, b, c)
  (size 2m + m²), stopped by a terminal event at ‖θ‖ = 1e6‖θ0‖, then
  T* = t_ev + E(t_ev)^(−1/3), E = aᵀ b c (Theorem 1 applied from the event time; the tail is
  exact for the balanced rank-one state the flow approaches);
* SciPy, reduced system (the strongest CPU peer): per seed, eigh of D1 = a aᵀ − b bᵀ and
  D2 = bᵀ b − c cᵀ, then DOP853 on the 4m oscillators ã' = x̃, x̃' = (s − λ) ã, c̃' = ỹ,
  ỹ' = (s + μ) c̃ (s = ‖ã‖² + ‖c̃‖²) in t, with the same event and the same T* tail.

Host BLAS/LAPACK runs on one thread by default (``--blas-threads``), in the SciPy loops and in
condense_jax's host linear algebra alike: per-seed problems are too small to gain from a second
thread, and on a shared 2-core machine OpenBLAS threads spin-wait for a busy core and slow the
SciPy loops (and condense_jax's batched ``b @ bᵀ`` / ``eigh``) down by 10-100x.

The three T* must agree to 1e-6 relative and every condense_jax status must be "blowup"
(exit status 1 otherwise). The full SciPy loop at m = 200 is the slow part (O(m²) per step), so
by default it runs on the first 32 seeds only and its total is extrapolated linearly (labelled
as such; ``--scipy-seeds`` changes that).

Targets (2-core CPU): condense_jax warm ≥ 30× faster than the SciPy full loop at m = 200 with
256 seeds, and ≥ 100× at m = 20 with 1024 seeds.

Peak memory (``--memory``, on by default): condense_jax runs in child processes with different
chunk sizes; the peak RSS of the warm call (Linux VmHWM after resetting it) shows that the
working memory is bounded by the chunk size, not by the number of seeds.

    /tmp/venv/bin/python benchmarks/ode_vs_scipy.py            # full run (~10 minutes)
    /tmp/venv/bin/python benchmarks/ode_vs_scipy.py --quick    # smoke run (< 1 minute)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.integrate import solve_ivp  # imported up front so that no SciPy loop times the import

TSTAR_RTOL = 1e-6  # required agreement of T* between condense_jax and both SciPy loops
GROWTH = 1e6  # terminal event of the SciPy loops: ‖θ‖ = GROWTH ‖θ0‖
T_SPAN = (0.0, 1e3)
TARGETS = {(200, 256): 30.0, (20, 1024): 100.0}  # (m, seeds) -> required scipy_full / condense (warm)


# ---------------------------------------------------------------------------
# Starts


def make_starts(m: int, seeds: int):
    """a (B,m), b (B,m,m), c (B,m) ~ N(0,1), numpy seed 0 (drawn in that order)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((seeds, m))
    b = rng.standard_normal((seeds, m, m))
    c = rng.standard_normal((seeds, m))
    return a, b, c


def parse_config(text: str) -> tuple[int, int]:
    m, seeds = text.split(":")
    return int(m), int(seeds)


# ---------------------------------------------------------------------------
# condense_jax (run in a child process: clean cold timing and a per-run peak RSS)


def _rss_kb(field: str) -> int:
    """VmRSS / VmHWM of this process in kB (Linux), or -1 where /proc is unavailable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _reset_peak_rss() -> bool:
    """Return freed heap to the OS, then reset VmHWM to the current RSS (Linux ≥ 4.0), so that a
    later VmHWM is the peak since now and its excess over the current RSS is the call's working set."""
    try:
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed arenas resident otherwise
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child_main(spec: dict) -> None:
    """Child process: time condense_jax cold and warm on one configuration, save T* and RSS."""
    import resource

    from condense_jax.engine.devices import use_all_cpu_cores

    use_all_cpu_cores()  # as the `condense` CLI does: one XLA host device per core (before JAX starts)
    from condense_jax.ode.blowup import SolverOptions, reduce_start
    from condense_jax.ode.sweep import solve_blowup

    m, seeds, chunk, rtol = spec["m"], spec["seeds"], spec["chunk"], spec["rtol"]
    a, b, c = make_starts(m, seeds)
    opts = SolverOptions(rtol=rtol, atol=rtol, stepping=spec["stepping"])

    def run():
        return solve_blowup(a, b, c, opts, chunk)

    with blas_threads(spec["blas_threads"]):  # same host BLAS setting as the SciPy loops
        rss_base = _rss_kb("VmRSS")  # imports done, starts allocated
        t0 = time.perf_counter()
        runs, _ = run()  # cold: includes JIT compilation of every shape
        cold = time.perf_counter() - t0
        peak_cold = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux; process-wide
        del runs
        reset = _reset_peak_rss()
        rss_before_warm = _rss_kb("VmRSS")  # compiled code, XLA caches and the starts stay resident
        warm = np.inf
        for _ in range(spec.get("repeats", 3)):  # warm: compiled functions are cached; best of n
            t0 = time.perf_counter()
            runs, _ = run()
            warm = min(warm, time.perf_counter() - t0)
        peak_warm = _rss_kb("VmHWM") if reset else -1

        t0 = time.perf_counter()
        reduce_start(a, b, c)  # the host linear algebra alone, same arrays (two eigh per start)
        t_eigh = time.perf_counter() - t0

    np.savez(
        spec["out"],
        t_star=runs["t_star"].to_numpy(dtype=float),
        status=runs["status"].to_numpy(dtype=str),
        run_index=runs["run_id"].to_numpy(),
        num_steps=runs["num_steps"].to_numpy(),
        times=np.array([cold, warm, t_eigh]),
        rss_kb=np.array([rss_base, peak_cold, rss_before_warm, peak_warm]),
    )


def run_condense(m: int, seeds: int, chunk: int, rtol: float, blas: int, stepping: str = "per_start") -> dict:
    """Run `child_main` in a fresh interpreter and load its results."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.npz")
        spec = json.dumps(dict(m=m, seeds=seeds, chunk=chunk, rtol=rtol, blas_threads=blas, out=out, stepping=stepping))
        subprocess.run([sys.executable, os.path.abspath(__file__), "--child", spec], check=True)
        with np.load(out) as z:
            res = {k: z[k] for k in z.files}
    assert np.array_equal(res["run_index"], np.arange(seeds)), "runs_df not in run_index order"
    cold, warm, t_eigh = res["times"]
    base, peak_cold, before_warm, peak_warm = (float(v) / 1024.0 for v in res["rss_kb"])  # MiB
    return dict(
        t_star=res["t_star"], status=res["status"], num_steps=res["num_steps"], cold=cold, warm=warm,
        eigh=t_eigh, rss_base=base, rss_peak_cold=peak_cold, rss_before_warm=before_warm, rss_peak_warm=peak_warm,
    )


# ---------------------------------------------------------------------------
# SciPy peers (what a user would write without condense_jax)


def scipy_full(a0, b0, c0, rtol: float) -> float:
    """T* of one start from DOP853 on the full θ = (a, b, c), stopped at ‖θ‖ = GROWTH ‖θ0‖."""
    m = len(a0)
    theta0 = np.concatenate([a0, b0.ravel(), c0])
    n0 = np.linalg.norm(theta0)

    def split(th):
        return th[:m], th[m : m + m * m].reshape(m, m), th[m + m * m :]

    def rhs(_t, th):
        a, b, c = split(th)
        return np.concatenate([b @ c, np.outer(a, c).ravel(), b.T @ a])

    def grown(_t, th):
        return np.linalg.norm(th) - GROWTH * n0

    grown.terminal, grown.direction = True, 1.0
    sol = solve_ivp(rhs, T_SPAN, theta0, method="DOP853", rtol=rtol, atol=rtol * n0, events=grown)
    if sol.status != 1:  # no event: no blow-up within T_SPAN, or a solver failure
        return np.nan
    a, b, c = split(sol.y_events[0][0])
    energy = a @ b @ c
    return sol.t_events[0][0] + energy ** (-1.0 / 3.0) if energy > 0 else np.nan


def scipy_reduced(a0, b0, c0, rtol: float) -> tuple[float, float, float]:
    """T* of one start from DOP853 on the reduced 4m system; returns (T*, eigh seconds, solve seconds)."""
    t0 = time.perf_counter()
    m = len(a0)
    d1 = np.outer(a0, a0) - b0 @ b0.T
    d2 = b0.T @ b0 - np.outer(c0, c0)
    lam, q = np.linalg.eigh(d1)
    mu, p = np.linalg.eigh(d2)
    y0 = np.concatenate([q.T @ a0, q.T @ (b0 @ c0), p.T @ c0, p.T @ (b0.T @ a0)])
    t_eigh = time.perf_counter() - t0

    t0 = time.perf_counter()
    tr_d1 = lam.sum()
    n0_sq = 2.0 * (a0 @ a0) - tr_d1 + c0 @ c0  # ‖θ‖² = ‖a‖² + ‖b‖²_F + ‖c‖², ‖b‖²_F = ‖a‖² − tr D1
    n0 = np.sqrt(n0_sq)

    def rhs(_t, y):
        at, xt, ct, yt = y[:m], y[m : 2 * m], y[2 * m : 3 * m], y[3 * m :]
        s = at @ at + ct @ ct
        return np.concatenate([xt, (s - lam) * at, yt, (s + mu) * ct])

    def grown(_t, y):
        at, ct = y[:m], y[2 * m : 3 * m]
        return np.sqrt(2.0 * (at @ at) - tr_d1 + ct @ ct) - GROWTH * n0

    grown.terminal, grown.direction = True, 1.0
    sol = solve_ivp(rhs, T_SPAN, y0, method="DOP853", rtol=rtol, atol=rtol * n0, events=grown)
    t_solve = time.perf_counter() - t0
    if sol.status != 1:
        return np.nan, t_eigh, t_solve
    y = sol.y_events[0][0]
    energy = y[:m] @ y[m : 2 * m]  # E = aᵀ b c = a·x, invariant under the rotation Q
    t_star = sol.t_events[0][0] + energy ** (-1.0 / 3.0) if energy > 0 else np.nan
    return t_star, t_eigh, t_solve


def run_scipy_full(a, b, c, n: int, rtol: float) -> dict:
    t0 = time.perf_counter()
    t_star = np.array([scipy_full(a[i], b[i], c[i], rtol) for i in range(n)])
    return dict(t_star=t_star, seconds=time.perf_counter() - t0, n=n)


def run_scipy_reduced(a, b, c, n: int, rtol: float) -> dict:
    out = [scipy_reduced(a[i], b[i], c[i], rtol) for i in range(n)]
    t_star, t_eigh, t_solve = (np.array(v) for v in zip(*out))
    return dict(t_star=t_star, eigh=t_eigh.sum(), solve=t_solve.sum(), seconds=t_eigh.sum() + t_solve.sum(), n=n)


def blas_threads(limit: int | None):
    """Context capping BLAS/LAPACK threads (no-op for None or 0: the library default)."""
    if not limit:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit)


# ---------------------------------------------------------------------------
# Reporting


def max_rel_diff(x, y) -> float:
    """max |x − y| / |y| over the common seeds (inf if any value is not finite)."""
    n = min(len(x), len(y))
    x, y = np.asarray(x[:n], float), np.asarray(y[:n], float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return np.inf
    return float(np.max(np.abs(x - y) / np.abs(y)))


def total(res: dict, seeds: int) -> tuple[float, str]:
    """Total seconds over all seeds: measured, or extrapolated linearly from the first n."""
    if res["n"] == seeds:
        return res["seconds"], "measured"
    return res["seconds"] / res["n"] * seeds, f"extrap. from {res['n']}"


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def default_chunk(m: int) -> int:
    return 64 if m >= 100 else 512


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", type=parse_config, default=None, metavar="M:SEEDS",
                    help="width:seeds pairs (default: 200:256 20:1024)")
    ap.add_argument("--rtol", type=float, default=1e-8, help="rtol (and atol relative to ‖θ0‖) of every solver")
    ap.add_argument("--scipy-seeds", type=int, default=None,
                    help="time the SciPy full loop on the first N seeds and extrapolate (default: all "
                         "seeds for m < 100, 32 for m >= 100)")
    ap.add_argument("--reduced-seeds", type=int, default=None,
                    help="same for the SciPy reduced loop (default: all seeds)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS/LAPACK threads of the host NumPy/SciPy work, in the SciPy loops and in "
                         "condense_jax's host linear algebra alike (threadpoolctl); 0: the library default. "
                         "Default 1: as fast as the default on an idle 2-core machine, and up to 20x faster "
                         "on a busy one, where OpenBLAS threads spin-wait for a shared core")
    ap.add_argument("--chunk-size", type=int, default=None,
                    help="condense_jax chunk size (default: 64 for m >= 100, 512 otherwise)")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                    help="peak-RSS runs of condense_jax at several chunk sizes (default: on)")
    ap.add_argument("--memory-config", type=parse_config, default=None, metavar="M:SEEDS",
                    help="configuration of the memory runs (default: 200:256)")
    ap.add_argument("--memory-chunks", type=int, nargs="+", default=None,
                    help="chunk sizes of the memory runs (default: 32 128)")
    ap.add_argument("--stepping", nargs="+", default=["per_start", "shared"], choices=["per_start", "shared"],
                    help="condense_jax stepping modes to time: per_start (default of the engine: vmapped solves, "
                         "a start's numbers independent of its chunk-mates) and shared (one step size per chunk)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: m=20/64 seeds and m=50/32 seeds, SciPy on 8 seeds, small memory runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: one condense_jax run, JSON spec
    args = ap.parse_args(argv)

    if args.child:
        child_main(json.loads(args.child))
        return 0

    if args.quick:
        configs = args.configs or [(20, 64), (50, 32)]
        scipy_seeds = args.scipy_seeds or 8
        reduced_seeds = args.reduced_seeds or 8
        mem_config = args.memory_config or (20, 64)
        mem_chunks = args.memory_chunks or [16, 64]
    else:
        configs = args.configs or [(200, 256), (20, 1024)]
        scipy_seeds, reduced_seeds = args.scipy_seeds, args.reduced_seeds
        mem_config = args.memory_config or (200, 256)
        mem_chunks = args.memory_chunks or [32, 128]

    print(f"condense_jax vs SciPy DOP853 loops, rtol = atol = {args.rtol:g} (SciPy atol x ‖θ0‖), "
          f"{os.cpu_count()} CPU cores, host BLAS threads {args.blas_threads or 'default'}, "
          f"load average {_loadavg()}\n", flush=True)
    rows, ok = [], True
    for m, seeds in configs:
        chunk = args.chunk_size or default_chunk(m)
        n_full = min(seeds, scipy_seeds or (32 if m >= 100 else seeds))
        n_red = min(seeds, reduced_seeds or seeds)
        print(f"== m = {m}, {seeds} seeds (chunk {chunk})", flush=True)

        cjs = {}
        for mode in args.stepping:
            cj = cjs[mode] = run_condense(m, seeds, chunk, args.rtol, args.blas_threads, mode)
            print(f"  condense_jax ({mode}): cold {cj['cold']:.2f} s, warm {cj['warm']:.2f} s (best of 3) "
                  f"(reduce_start host eigh alone: {cj['eigh']:.2f} s); "
                  f"steps per start {int(np.median(cj['num_steps']))} (median)", flush=True)

        a, b, c = make_starts(m, seeds)
        with blas_threads(args.blas_threads):
            full = run_scipy_full(a, b, c, n_full, args.rtol)
        full_total, full_how = total(full, seeds)
        print(f"  SciPy full loop: {full['seconds']:.2f} s on {n_full} seeds = {full['seconds'] / n_full:.4f} s/seed"
              f" -> {full_total:.1f} s for {seeds} seeds ({full_how})", flush=True)
        with blas_threads(args.blas_threads):
            red = run_scipy_reduced(a, b, c, n_red, args.rtol)
        red_total, red_how = total(red, seeds)
        print(f"  SciPy reduced loop: {red['seconds']:.2f} s on {n_red} seeds (eigh {red['eigh']:.2f} s, "
              f"solve {red['solve']:.2f} s) -> {red_total:.1f} s for {seeds} seeds ({red_how})", flush=True)

        for mode, cj in cjs.items():  # agreement of T* and statuses
            n_blowup = int(np.sum(cj["status"] == "blowup"))
            d_full = max_rel_diff(full["t_star"], cj["t_star"])
            d_red = max_rel_diff(red["t_star"], cj["t_star"])
            d_peers = max_rel_diff(full["t_star"], red["t_star"])
            passed = n_blowup == seeds and max(d_full, d_red, d_peers) <= TSTAR_RTOL
            ok &= passed
            print(f"  [{mode}] status blowup: {n_blowup}/{seeds}; max rel |ΔT*|: full vs condense {d_full:.2e} "
                  f"({n_full} seeds), reduced vs condense {d_red:.2e} ({n_red} seeds), full vs reduced "
                  f"{d_peers:.2e} -> {'OK' if passed else 'FAIL'} (tol {TSTAR_RTOL:g})", flush=True)
            rows.append(dict(m=m, seeds=seeds, chunk=chunk, mode=mode, cj=cj, full_total=full_total,
                             full_how=full_how, red_total=red_total, red_how=red_how, passed=passed))
        print()

    # Summary table
    print("Summary (seconds; ratios = SciPy time / condense_jax time)")
    head = (f"{'m':>4} {'seeds':>5} {'chunk':>5} {'stepping':>9} | {'cj warm':>7} {'cj cold':>7} {'cj eigh':>7} | "
            f"{'scipy full':>10} {'':<17} | {'scipy red':>9} {'':<17} | "
            f"{'full/warm':>9} {'full/cold':>9} {'red/warm':>8} | {'target':>9} {'T*':>4}")
    print(head)
    print("-" * len(head))
    for r in rows:
        cj = r["cj"]
        target = TARGETS.get((r["m"], r["seeds"]))
        ratio = r["full_total"] / cj["warm"]
        tgt = "-" if target is None else f"{target:.0f}x " + ("ok" if ratio >= target else "MISS")
        print(f"{r['m']:>4} {r['seeds']:>5} {r['chunk']:>5} {r['mode']:>9} | {cj['warm']:>7.2f} {cj['cold']:>7.2f} {cj['eigh']:>7.2f} | "
              f"{r['full_total']:>10.1f} {'(' + r['full_how'] + ')':<17} | {r['red_total']:>9.1f} "
              f"{'(' + r['red_how'] + ')':<17} | {ratio:>8.1f}x {r['full_total'] / cj['cold']:>8.1f}x "
              f"{r['red_total'] / cj['warm']:>7.1f}x | {tgt:>9} {'ok' if r['passed'] else 'FAIL':>4}")

    if args.memory:
        m, seeds = mem_config
        print(f"\nPeak memory of condense_jax, m = {m}, {seeds} seeds (one child process per chunk size; MiB)")
        print(f"{'chunk':>5} | {'starts':>6} {'pre-call':>8} {'peak':>6} {'peak - pre-call':>15} | "
              f"{'peak incl. JIT':>14} | {'warm s':>6}")
        for chunk in mem_chunks:
            cj = run_condense(m, seeds, chunk, args.rtol, args.blas_threads)
            print(f"{chunk:>5} | {cj['rss_base']:>6.0f} {cj['rss_before_warm']:>8.0f} {cj['rss_peak_warm']:>6.0f} "
                  f"{cj['rss_peak_warm'] - cj['rss_before_warm']:>15.0f} | {cj['rss_peak_cold']:>14.0f} | "
                  f"{cj['warm']:>6.2f}", flush=True)
        print("(starts: RSS after imports and drawing the starts; pre-call / peak: RSS before and peak RSS (VmHWM)\n"
              " of the warm call, so peak - pre-call is its working set; peak incl. JIT: ru_maxrss after the cold call)")

    print(f"\nload average at the end: {_loadavg()} (other processes on the machine skew every timing)")
    print(f"T* agreement and statuses: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
