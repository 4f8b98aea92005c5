"""Four-phase sweeps (issue #8): expand a FourPhaseSweep into compiled calls, detect, write Parquet.

For each (width, n) one compiled function runs jit(vmap(vmap(run))) over seeds × init scales
(dynamics.py), with the data an argument so every Δ of that shape reuses it. Each chunk's records
go through the detector (detect.py) and are written at once:

    runs/     one row per run: grid values, status, phase boundary times and flags, final state
    series/   long format on the record times: loss, accuracy, margin, live/dead, pattern changes, …
    neurons/  per neuron (the first `neuron_seeds` seeds of each point): norm, a_k, cos with x₊, x₋,
              and coordinates in the plane of (x₊, x₋) — the arrows of the condensation figure
"""

from __future__ import annotations

import numpy as np

from .columns import COLUMNS
from .spec import FourPhaseSweep

SERIES = ("loss", "accuracy", "margin", "param_norm", "live", "active", "pattern_changes", "in_s_plus", "in_s_minus",
          "stable_rank", "align_pos", "align_neg", "cond_pos", "cond_neg", "max_neuron_norm")
NEURON = {"neuron_norm": "norm", "neuron_a": "a", "neuron_cos_pos": "cos_pos", "neuron_cos_neg": "cos_neg",
          "neuron_u": "u", "neuron_v": "v"}


def load_data(spec: FourPhaseSweep, n: int, delta: float):
    """(x, y) of one grid point, checked separable through the origin (unless allowed)."""
    from . import data as datasets

    if spec.data == "angled":
        x, y = datasets.angled_classes(n, spec.d, delta, spec.spread, spec.data_seed, spec.positive_fraction, spec.negative_norm)
    elif spec.data == "orthogonal":
        x, y = datasets.orthogonal_classes(n, max(spec.d, n), spec.data_seed)
    elif spec.data == "digits":
        x, y = datasets.digit_pair(*spec.digits, n=n, seed=spec.data_seed)
    else:
        from ..engine.datafiles import load_xy

        x, y = load_xy(spec.data)
        x = x.reshape(len(x), -1)
    datasets.check_separable(x, y, f"data {spec.data!r}", allow=spec.allow_nonseparable)
    return np.asarray(x, float), np.asarray(y, float)


def points(spec: FourPhaseSweep):
    """The (n, Δ) data points of the grid: Δ only for the angled data, n not for a user file."""
    deltas = spec.delta if spec.data == "angled" else (float("nan"),)
    ns = (None,) if spec.data.endswith(".npz") else spec.n
    return [(n, dl) for n in ns for dl in deltas]


def flow_spec(spec: FourPhaseSweep, width: int):
    from .dynamics import FlowSpec

    return FlowSpec(width=width, loss=spec.loss, init=spec.init, method=spec.method,
                    times=tuple(np.geomspace(spec.t_min, spec.t_max, spec.n_records)), lr=spec.lr,
                    lr_rel=spec.lr_rel, lr_max=spec.lr_max, rtol=spec.rtol, atol=spec.atol, dtype=spec.dtype,
                    diverge_factor=spec.diverge_factor, loss_threshold=spec.loss_threshold)


CHUNK_RUNS = 512  # default runs per chunk (seeds × init scales): ~20 s of the default setting on 2 cores


def batched(fspec, dirs, x_shape: tuple[int, int]):
    """`run(keys (S, 2), eps (E,), x, y)` → RunResult with leading axes (S, E): the seeds × ε runs
    in groups of `group_size` (devices.in_groups: each group vmapped, the groups a loop, split over
    the local devices), so a run's numbers do not depend on the device count."""
    from ..engine.devices import in_groups
    from . import dynamics

    one = (dynamics.make_flow if fspec.method == "gf" else dynamics.make_descent)(fspec, dirs)
    return in_groups(one, group_size(fspec, x_shape), n_shared=2)


def group_size(fspec, x_shape: tuple[int, int]) -> int:
    """Runs per group: what fits a quarter of a core's L2 on a CPU (devices.cache_group_size) —
    per run the parameters, their gradient and the previous step (3 (m d + m)) and the hidden
    pre-activations, activations and pattern (3 n m), in the run's dtype."""
    from ..engine.devices import cache_group_size

    (n, d), m = x_shape, fspec.width
    return cache_group_size(np.dtype(fspec.dtype).itemsize * (3 * (m * d + m) + 3 * n * m))


def run_tables(spec: FourPhaseSweep, width: int, point: int, n: int, delta: float, seeds, res, class_angle: float = np.nan) -> dict:
    """runs, series and neurons frames of one chunk; res has leading axes (seeds, init scales)."""
    import pandas as pd

    from .detect import detect
    from .dynamics import STATUS_CODES

    eps = np.asarray(spec.init_scales, float)
    S, E = len(seeds), len(eps)
    rec = res.records
    flat = lambda v: np.asarray(v).reshape((S * E,) + np.shape(v)[2:])  # run order: seed-major
    t = np.asarray(res.times).reshape(-1, np.shape(res.times)[-1])[0]
    seed_col, eps_col = np.repeat(np.asarray(seeds), E), np.tile(eps, S)
    ids = run_ids(spec, width, point, seeds)
    series = {k: flat(getattr(rec, k)) for k in SERIES}
    cond = np.minimum(series["cond_pos"], series["cond_neg"])
    # a frozen run (diverged or converged) is judged on its records up to the time it stopped: its
    # frozen loss afterwards is flat and must not read as a plateau
    stop = flat(res.stop_time).astype(float)
    stop_step = flat(res.stop_step)
    det = spec.detector()
    found = pd.DataFrame([
        detect(t[keep], series["loss"][i][keep], cond[i][keep], series["pattern_changes"][i][keep], series["accuracy"][i][keep], det)
        for i, keep in enumerate(t[None, :] <= stop[:, None] * (1 + 1e-9))
    ])
    m = width
    runs = pd.DataFrame({
        "run_id": ids, "width": width, "n": n, "delta": delta, "init_scale": eps_col, "seed": seed_col,
        "log_inv_eps": np.log(1 / eps_col),
        "class_angle": class_angle,  # degrees between the class-mean directions x₊, x₋ of the data
        "status": [STATUS_CODES[int(c)] for c in flat(res.status)],
        "stop_time": stop,
        "stop_step": pd.array(np.where(stop_step >= 0, stop_step, 0), dtype="Int64"),
        "final_loss": series["loss"][:, -1].astype(float),
        "final_accuracy": series["accuracy"][:, -1].astype(float),
        "final_margin": series["margin"][:, -1].astype(float),
        "final_stable_rank": series["stable_rank"][:, -1].astype(float),
        "frac_s_plus": series["in_s_plus"][:, -1] / m,
        "frac_s_minus": series["in_s_minus"][:, -1] / m,
        "frac_dead": 1.0 - series["live"][:, -1] / m,
    })
    runs.loc[stop_step < 0, "stop_step"] = pd.NA  # gradient flow takes no steps (−1)
    runs = pd.concat([runs, found], axis=1)
    R = len(t)
    long = pd.DataFrame({"run_id": np.repeat(ids, R), "t": np.tile(t, S * E)})
    for k, v in series.items():
        long[k] = v.reshape(-1).astype(float if v.dtype.kind == "f" else np.int64)
    long["dead"] = m - long["live"]
    keep = np.isin(seed_col, spec.seeds[: spec.neuron_seeds])
    neurons = pd.DataFrame()
    if keep.any():
        K = int(keep.sum())
        neurons = pd.DataFrame({"run_id": np.repeat(ids[keep], R * m), "t": np.tile(np.repeat(t, m), K),
                                "neuron": np.tile(np.arange(m), K * R)})
        for k, col in NEURON.items():
            neurons[col] = flat(getattr(rec, k))[keep].reshape(-1).astype(float)
    return {"runs": runs, "series": long, "neurons": neurons}


def run_ids(spec: FourPhaseSweep, width: int, point: int, seeds) -> np.ndarray:
    """Run ids of one chunk (seed-major, then init scale): each run's index in the full grid
    widths × data points × init scales × seeds, so an id does not depend on the chunking."""
    P, E, S = len(points(spec)), len(spec.init_scales), len(spec.seeds)
    w = spec.widths.index(width)
    s = np.array([spec.seeds.index(int(v)) for v in seeds])
    return (((w * P + point) * E + np.arange(E)[None, :]) * S + s[:, None]).reshape(-1).astype(np.int64)


def _chunks(spec: FourPhaseSweep, data: dict) -> list:
    """Per width, per data point, chunks of seeds: the sweep's list of engine.plan.Chunk."""
    from ..engine.plan import Chunk, seed_keys
    from .dynamics import class_directions

    # default: at most CHUNK_RUNS runs a chunk, so a first signal takes effect within seconds
    per = spec.chunk_size or max(1, CHUNK_RUNS // len(spec.init_scales))
    chunks = []
    for width in spec.widths:
        fspec = flow_spec(spec, width)
        cache = {}
        for point, ((_, delta), (x, y)) in enumerate(data.items()):
            dirs = class_directions(x, y)
            angle = float(np.degrees(np.arccos(np.clip(dirs[0] @ dirs[1], -1.0, 1.0))))
            # the class directions are baked into the records; one compile per data shape and Δ
            key = (x.shape, tuple(np.round(np.concatenate(dirs), 12)))
            if key not in cache:
                cache[key] = batched(fspec, dirs, x.shape)
            for lo in range(0, len(spec.seeds), per):
                seeds = spec.seeds[lo:lo + per]

                def compute(run=cache[key], width=width, point=point, x=x, y=y, delta=delta, seeds=seeds, fspec=fspec, angle=angle):
                    import jax

                    res = jax.device_get(run(seed_keys(seeds, width), np.asarray(spec.init_scales, fspec.dtype), x, y))
                    return run_tables(spec, width, point, len(x), delta, seeds, res, angle)

                def lower(run=cache[key], width=width, x=x, y=y, seeds=seeds, fspec=fspec):
                    return run.lower(seed_keys(seeds, width), np.asarray(spec.init_scales, fspec.dtype), x, y)

                plan_key = {"width": int(width), "point": point, "seeds": [int(s) for s in seeds]}
                n = len(seeds) * len(spec.init_scales)
                chunks.append(Chunk(plan_key, n, compute, n * bytes_per_run(fspec, x), lower))
    return chunks


def bytes_per_run(fspec, x) -> float:
    """Estimated per-run state of one compiled call: parameters and gradient (×4), the activations
    and patterns (n × m, ×4), the records (R × (15 + 6m))."""
    from .dynamics import record_times

    m, (n, d) = fspec.width, x.shape
    itemsize = np.dtype(fspec.dtype).itemsize
    return float(itemsize * (4 * m * (d + 1) + 4 * n * m + len(record_times(fspec)) * (15 + 6 * m)))


def plan_four_phases(spec: FourPhaseSweep):
    """The sweep's engine.plan.Plan: every data point generated and checked, chunks ready."""

    from ..engine.plan import Plan, array_digest

    data = {pt: load_data(spec, *pt) for pt in points(spec)}  # every point checked before any run
    digest = array_digest(*(v for xy in data.values() for v in xy))
    extra = {"data_sha256": digest}
    n_runs = len(spec.widths) * len(data) * len(spec.init_scales) * len(spec.seeds)
    return Plan({**spec.to_dict(), **extra}, spec.config_hash(extra), n_runs, spec.name, _chunks(spec, data), COLUMNS)
