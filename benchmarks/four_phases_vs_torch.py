"""Benchmark: the quick four-phase sweep, condense_jax against a PyTorch loop over runs.

What is run (issue #8): `sweeps/four_phases.toml --variant quick` — the bias-free two-layer ReLU
classifier f(x) = Σ a_k relu(w_k·x), logistic loss, float32, small-step GD
h_k = min(1, max(0.05, 0.01 t_k)) up to t = 2000 (≈ 2,300 steps), 60 log-spaced records of the full
series (loss, accuracy, margin, ‖θ‖, live/active neurons, activation-pattern changes, S₊/S₋ counts,
stable rank, alignment and condensation, per-neuron norms, cosines and plane coordinates), over
widths {10, 20} × n {50, 100} × Δ {60°, 120°} × 5 init scales × 64 seeds = 2,560 runs.

* condense_jax: the whole `condense_jax.run` (compilation, jit(vmap(vmap)) over seeds × scales with
  the seeds split over one XLA device per core as the CLI does, the detector, the Parquet tables),
  cold, in a fresh child process;
* PyTorch loop (the peer a user would write): per run, the same initial weights (drawn by
  condense_jax), `loss.backward()`, `p -= h_k * p.grad` under no_grad, and the same records
  computed with torch at the same steps; torch's default threads, in a fresh child process. It runs
  a seeded sample of the runs (every point, `--torch-runs` of them) and its time is scaled to all
  2,560 — the per-run cost does not depend on the run.

Both must agree: every recorded loss of the sampled runs to 1e-3 relative, and the activation
counts exactly at ≥ 99 % of the records (float32 rounding may flip a sample sitting on a kink)
(exit status 1 otherwise). Prints times and the ratio. Target (2-core CPU): ≥ 10×.

    /tmp/venv/bin/python benchmarks/four_phases_vs_torch.py                  # ~3 minutes
    /tmp/venv/bin/python benchmarks/four_phases_vs_torch.py --torch-runs 16  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "sweeps" / "four_phases.toml"


def quick_spec():
    from condense_jax.kinds import load_spec

    return load_spec(SPEC, "quick")[0]


def child_engine(cfg: dict) -> None:
    from condense_jax.engine.devices import use_all_cpu_cores

    use_all_cpu_cores()
    from condense_jax import run

    spec = quick_spec()
    t0 = time.perf_counter()
    run(spec, Path(cfg["out"]), figures=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "runs": spec.n_runs}))


def _grid(spec):
    """(run_id, width, point index, (n, Δ), init scale, seed) for every run, in run-id order."""
    from condense_jax.four_phases import sweep as four_phases

    rows = []
    for width in spec.widths:
        for p, pt in enumerate(four_phases.points(spec)):
            for seed in spec.seeds:
                ids = four_phases.run_ids(spec, width, p, [seed])  # one per init scale
                rows += [(int(rid), width, p, pt, eps, seed) for rid, eps in zip(ids, spec.init_scales)]
    return sorted(rows, key=lambda r: r[0])


def torch_run(x, y, w0, a0, dirs, hs, record_at) -> dict:
    """One run the way a PyTorch user writes it: autograd GD with the schedule hs, and the records
    of relu_flow.record computed with torch at the steps in record_at."""
    import torch

    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    xp, xn, e2 = (torch.tensor(v, dtype=torch.float32) for v in dirs)
    w = torch.tensor(w0, requires_grad=True)
    a = torch.tensor(a0, requires_grad=True)
    series = {k: [] for k in ("loss", "accuracy", "margin", "param_norm", "live", "active", "changes", "in_s_plus",
                              "in_s_minus", "stable_rank", "align_pos", "align_neg", "cond_pos", "cond_neg",
                              "max_neuron_norm", "neurons")}

    @torch.no_grad()
    def record(prev):
        z = xt @ w.T
        pattern = z > 0
        margins = yt * (torch.relu(z) @ a)
        theta2 = (w**2).sum() + (a**2).sum()
        norm = w.norm(dim=1)
        unit = w / torch.where(norm > 0, norm, torch.ones_like(norm))[:, None]
        live = pattern.any(0)
        pos, neg = live & (a > 0), live & (a < 0)
        cos_pos, cos_neg = unit @ xp, unit @ xn
        is_pos = (yt > 0)[:, None]
        one = torch.ones_like(cos_pos)
        s = series
        s["loss"].append(float(torch.nn.functional.softplus(-margins).mean()))
        s["accuracy"].append(float((margins > 0).float().mean()))
        s["margin"].append(float(margins.min() / theta2))
        s["param_norm"].append(float(theta2.sqrt()))
        s["live"].append(int(live.sum()))
        s["active"].append(int(pattern.sum()))
        s["changes"].append(int((pattern != prev).sum()))
        s["in_s_plus"].append(int(((pattern == is_pos).all(0) & live).sum()))
        s["in_s_minus"].append(int(((pattern == ~is_pos).all(0) & live).sum()))
        gram = w.T @ w
        s["stable_rank"].append(float(torch.trace(gram) / torch.linalg.eigvalsh(gram)[-1]))
        s["align_pos"].append(float(torch.where(pos, cos_pos, one).min()))
        s["align_neg"].append(float(torch.where(neg, cos_neg, one).min()))
        for mask, key in ((pos, "cond_pos"), (neg, "cond_neg")):
            mean = torch.where(mask[:, None], unit, torch.zeros_like(unit)).sum(0)
            mean = mean / mean.norm().clamp_min(1e-30)
            s[key].append(float(torch.where(mask, unit @ mean, one).min()))
        s["max_neuron_norm"].append(float((norm**2 + a**2).max().sqrt()))
        s["neurons"].append(torch.stack([norm, a, cos_pos, cos_neg, w @ xp, w @ e2]).numpy().copy())
        return pattern

    prev = (xt @ w.detach().T) > 0
    for k, h in enumerate(hs):
        loss = torch.nn.functional.softplus(-yt * (torch.relu(xt @ w.T) @ a)).mean()
        w.grad = a.grad = None
        loss.backward()
        with torch.no_grad():
            w -= float(h) * w.grad
            a -= float(h) * a.grad
        if k + 1 in record_at:
            prev = record(prev)
    return {"loss": series["loss"], "active": series["active"], "changes": series["changes"]}


def child_torch(cfg: dict) -> None:
    import torch  # noqa: F401  (imported before the clock starts)

    from condense_jax.engine.plan import seed_keys
    from condense_jax.four_phases import dynamics as relu_flow
    from condense_jax.four_phases import sweep as four_phases

    spec = quick_spec()
    rows = _grid(spec)
    pick = np.sort(np.random.default_rng(0).choice(len(rows), cfg["runs"], replace=False))
    data = {pt: four_phases.load_data(spec, *pt) for pt in four_phases.points(spec)}
    # setup outside the timing: data, class directions and the initial weights condense_jax draws
    jobs = []
    for i in pick:
        rid, width, _, pt, eps, seed = rows[i]
        x, y = data[pt]
        key = seed_keys([seed], width)[0]
        p0 = relu_flow.init(key, np.float32(eps), width, x.shape[1], spec.init, np.float32)
        dirs = relu_flow.class_directions(x, y)
        jobs.append((rid, x, y, np.asarray(p0.w), np.asarray(p0.a), dirs))
    hs, counts, _ = relu_flow.descent_schedule(four_phases.flow_spec(spec, spec.widths[0]))
    record_at = set(int(c) for c in counts)
    out = {}
    t0 = time.perf_counter()
    for rid, x, y, w0, a0, dirs in jobs:
        out[str(rid)] = torch_run(x, y, w0, a0, dirs, hs, record_at)
    seconds = time.perf_counter() - t0
    Path(cfg["out"]).write_text(json.dumps({"seconds": seconds, "runs": len(jobs), "total_runs": len(rows), "series": out}))


def _child(role: str, cfg: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, "--child", role, json.dumps(cfg)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-runs", type=int, default=128, help="runs of the sample the PyTorch loop trains")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        role, cfg = args.child
        (child_engine if role == "engine" else child_torch)(json.loads(cfg))
        return 0
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        res = _child("engine", {"out": f"{tmp}/res"})
        if res.returncode:
            print(res.stderr[-3000:])
            return 1
        engine = json.loads(res.stdout.strip().splitlines()[-1])
        series = pd.read_parquet(f"{tmp}/res/series")
        res = _child("torch", {"runs": args.torch_runs, "out": f"{tmp}/torch.json"})
        if res.returncode:
            print(res.stderr[-3000:])
            return 1
        peer = json.loads(Path(f"{tmp}/torch.json").read_text())
    worst, same, total = 0.0, 0, 0
    for rid, s in peer["series"].items():
        mine = series[series["run_id"] == int(rid)].sort_values("t")
        worst = max(worst, float(np.max(np.abs(mine["loss"].to_numpy() / np.asarray(s["loss"]) - 1))))
        same += int(np.sum(mine["active"].to_numpy() == np.asarray(s["active"])))
        total += len(s["active"])
    per_run = peer["seconds"] / peer["runs"]
    torch_all = per_run * peer["total_runs"]
    ratio = torch_all / engine["seconds"]
    print(f"quick four-phase sweep: {engine['runs']} runs, {len(series) // engine['runs']} records each")
    print(f"condense_jax (whole condense_jax.run, cold, compile + detect + Parquet): {engine['seconds']:.1f} s")
    print(f"PyTorch loop: {peer['seconds']:.1f} s for {peer['runs']} sampled runs = {per_run * 1e3:.0f} ms/run "
          f"-> {torch_all:.0f} s for all {peer['total_runs']}")
    print(f"ratio (PyTorch / condense_jax): {ratio:.1f}x   (target >= 10x)")
    print(f"agreement on {peer['runs']} runs: max relative loss difference {worst:.2e}; "
          f"active-pair counts equal at {same}/{total} records")
    ok = worst < 1e-3 and same >= 0.99 * total
    print("agree" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
