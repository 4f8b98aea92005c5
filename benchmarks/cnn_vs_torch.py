"""Benchmark: a two-layer CNN sweep over seeds, condense_jax against a PyTorch loop over seeds.

What is trained (issue #5): the CNN paper's two-layer CNN f(x) = ⟨a, tanh(W * x + b)⟩ with 32
kernels 5×5 (valid), on n = 500 of scikit-learn's bundled 8×8 digits (pixels / 16), MSE on the
digit value, float32, full-batch GD (lr 0.002), init ε = 1e-4 for W, b and a (the condensing
regime), the same number of steps for every seed, the same initial weights on both sides (drawn by
condense_jax, copied into torch with the output weights permuted from (u, v, β) to torch's
(β, u, v) flattening).

* condense_jax: `train.batched(spec, x, y)` over the 64 seeds (jit(vmap(vmap(train))), seeds
  split over one XLA device per core as the CLI does), records (0, steps); cold (compilation
  included) and warm (best of 3), in a fresh child process;
* PyTorch loop (the peer a user would write): per seed, `nn.functional.conv2d` + tanh + a linear
  read-out, `loss.backward()`, `p -= lr * p.grad` under no_grad, torch's default threads, in a
  fresh child process; best of 2 passes.

Both must agree: final losses to 1e-4 relative (exit status 1 otherwise). Prints times and the
ratio. Target (2-core CPU): condense_jax ≥ 5× faster.

    /tmp/venv/bin/python benchmarks/cnn_vs_torch.py            # ~2 minutes
    /tmp/venv/bin/python benchmarks/cnn_vs_torch.py --seeds 16 --steps 50   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

N, CHANNELS, M, LR, EPS = 500, 32, 5, 0.002, 1e-4


def data():
    from sklearn.datasets import load_digits

    d = load_digits()
    pick = np.sort(np.random.default_rng(0).choice(len(d.images), N, replace=False))
    return (d.images[pick] / 16.0)[..., None].astype(np.float32), d.target[pick].astype(np.float32)


def child_engine(cfg: dict) -> None:
    from condense_jax.engine.devices import use_all_cpu_cores

    use_all_cpu_cores()
    import jax
    import jax.numpy as jnp

    from condense_jax.gd import train

    x, y = data()
    spec = train.TrainSpec(model="cnn", channels=(CHANNELS,), kernel_size=M, activation="tanh", lr=LR,
                           steps=cfg["steps"], record_steps=(0, cfg["steps"]), cosine_steps=(0,))
    run = train.batched(spec, x, y)
    keys = jax.random.split(jax.random.PRNGKey(0), cfg["seeds"])
    scales = jnp.array([EPS], jnp.float32)
    t0 = time.perf_counter()
    res = jax.block_until_ready(run(keys, scales))
    cold = time.perf_counter() - t0
    warm = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        res = jax.block_until_ready(run(keys, scales))
        warm = min(warm, time.perf_counter() - t0)
    p0 = jax.tree_util.tree_map(lambda v: np.asarray(v[:, 0]), res.params0)
    np.savez(cfg["out"], cold=cold, warm=warm, loss=np.asarray(res.loss[:, 0, -1]), share=np.asarray(res.series["share_v1"][:, 0, -1]),
             w=p0["conv"][0]["w"], b=p0["conv"][0]["b"], a=p0["a"])


def child_torch(cfg: dict) -> None:
    import torch

    x, y = data()
    xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous()  # NCHW
    yt = torch.tensor(y)
    init = np.load(cfg["init"])
    h1 = 8 - M + 1

    def train_one(w0, b0, a0):
        w = torch.tensor(np.transpose(w0, (3, 2, 0, 1)).copy(), requires_grad=True)  # (out, in, m, m)
        b = torch.tensor(b0.copy(), requires_grad=True)
        # ours flattens σ(x^[1]) as (u, v, β); torch's NCHW flatten is (β, u, v)
        a = torch.tensor(a0[:, 0].reshape(h1, h1, CHANNELS).transpose(2, 0, 1).reshape(-1).copy(), requires_grad=True)
        for _ in range(cfg["steps"] + 1):
            out = torch.tanh(torch.nn.functional.conv2d(xt, w, b)).reshape(N, -1) @ a
            loss = 0.5 * torch.mean((out - yt) ** 2)
            if _ == cfg["steps"]:
                return float(loss.detach())
            for p in (w, b, a):
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in (w, b, a):
                    p -= LR * p.grad

    best, losses = np.inf, None
    for _ in range(2):
        t0 = time.perf_counter()
        losses = [train_one(init["w"][s], init["b"][s], init["a"][s]) for s in range(cfg["seeds"])]
        best = min(best, time.perf_counter() - t0)
    np.savez(cfg["out"], time=best, loss=np.array(losses), threads=torch.get_num_threads(), version=torch.__version__)


def child(kind: str, cfg: dict) -> None:
    subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(cfg)], check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, cfg = args.child[0], json.loads(args.child[1])
        (child_engine if kind == "engine" else child_torch)(cfg)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        eng, tor = os.path.join(tmp, "engine.npz"), os.path.join(tmp, "torch.npz")
        child("engine", dict(seeds=args.seeds, steps=args.steps, out=eng))
        child("torch", dict(seeds=args.seeds, steps=args.steps, out=tor, init=eng))
        e, t = np.load(eng), np.load(tor)
        rel = np.max(np.abs(e["loss"] - t["loss"]) / np.abs(t["loss"]))
        ok = rel <= 1e-4
        ratio = float(t["time"]) / float(e["warm"])
        print(f"two-layer CNN, {CHANNELS} kernels {M}x{M}, n = {N} digits, {args.seeds} seeds x {args.steps} GD steps, "
              f"float32, eps = {EPS:g}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        print(f"  condense_jax: cold {float(e['cold']):.2f} s, warm {float(e['warm']):.2f} s (best of 3); "
              f"kernels along v1 at the end: {float(np.mean(e['share'])):.2f}")
        print(f"  PyTorch loop (torch {t['version']}, {int(t['threads'])} threads, best of 2): {float(t['time']):.2f} s")
        print(f"  agreement: max rel diff of final losses {rel:.1e} (tol 1e-4) -> {'OK' if ok else 'MISMATCH'}")
        print(f"  ratio (PyTorch loop / condense_jax warm): {ratio:.1f}x; target 5x -> {'ok' if ratio >= 5 else 'MISS'}; "
              f"cold: {float(t['time']) / float(e['cold']):.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
