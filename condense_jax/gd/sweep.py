"""Gradient-descent sweeps (issue #3): expand a TrainSweep into compiled calls, write Parquet.

For each width (and, for two-layer phase-diagram coordinates, each γ') one `train.batched` call
per chunk of seeds runs jit(vmap(vmap(train))) over seeds × init scales. Each finished chunk is
written at once (runs/, series/, cosines/ parts), so an interrupt keeps every finished chunk.
Host code only: the numerics live in train.py, metrics.py and escape.py.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..engine.datafiles import load_xy
from ..engine.plan import array_digest, seed_keys
from ..errors import ConfigError
from .columns import COLUMNS
from .spec import TrainSweep

MEMORY_BUDGET = 512e6  # bytes of per-run state held by one compiled call


def load_data(spec: TrainSweep):
    """The sweep's data: (x, y) for the networks; (mask, target) or (xs, ys) for deep-linear."""
    from . import data

    if spec.model == "deep-linear":
        if spec.data == "fig3":
            return data.fig3_completion(spec.widths[0])
        if spec.data in ("tanh", "separable"):
            raise ConfigError(f"data {spec.data!r} is for the networks; deep-linear takes 'fig3' or an .npz with x (n, m, m), y (n,)")
        xs, ys = data.load_sensing(spec.data)
        return xs, ys
    if spec.model == "cnn":
        return _image_data(spec)
    if spec.data == "digits":
        raise ConfigError("data 'digits' is an image set; use it with model 'cnn'")
    if spec.data == "tanh":
        x, y = data.tanh_regression(spec.n, grid=spec.grid, seed=spec.data_seed)
    elif spec.data == "separable":
        x, y = data.separable_classes(spec.n, seed=spec.data_seed)
    elif spec.data == "fig3":
        raise ConfigError("data 'fig3' is the matrix-factorisation target; use it with model 'deep-linear'")
    else:
        x, y = load_xy(spec.data)
    return (data.with_bias(x) if spec.bias else x), y


def _image_data(spec: TrainSweep):
    """Images (n, H, W, C) in [0, 1] and labels: the bundled digits, synthetic images, or the user's
    files (images.load_image_data), `n` of them sampled without replacement with data_seed
    (datafiles.subsample); MSE regresses on the label value."""
    from . import images

    if spec.data in ("tanh", "separable", "fig3"):
        raise ConfigError(f"data {spec.data!r} is not an image set; the cnn takes 'digits' or an .npz with x (n, H, W[, C]), y (n,)")
    if spec.data == "synthetic":
        x, labels = images.synthetic_images(spec.n, seed=spec.data_seed, classes=10 if spec.loss == "cross_entropy" else 2)
    else:
        x, labels = images.load_image_data(spec.data)
    if spec.n > len(x):
        raise ConfigError(f"n = {spec.n} images asked for, the data set has {len(x)}")
    side = min(x.shape[1], x.shape[2])
    last = side - spec.conv_layers * (spec.kernel_size - 1)  # valid convolutions shrink by m − 1 each
    if last < 1:
        raise ConfigError(f"{spec.conv_layers} conv layer(s) of {spec.kernel_size}×{spec.kernel_size} kernels do not fit "
                          f"{x.shape[1]}×{x.shape[2]} images (each shrinks the side by {spec.kernel_size - 1}); use a "
                          "smaller kernel_size or fewer conv_layers")
    x, labels = images.subsample(x, labels, spec.n, spec.data_seed)
    return x, (labels.astype(np.int64) if spec.loss == "cross_entropy" else labels.astype(np.float64))


def grid(spec: TrainSweep):
    """One row per run, in a fixed order (width, outer axis, scale axis, seed): run_id = row.

    Columns: width, seed, the scale-axis value, and the concrete init scale `scale` (ε; for the
    two-layer model β₁ = ε·layer_scales[0] and β₂ = ε·layer_scales[1], or from (γ, γ')). The
    outer axis is γ' (two-layer phase diagram) or the index `layer_offset` into layer_exponents
    (three-layer), whose per-layer exponents go in exp_a, exp_w2, exp_w1 (std_l = m^(−exp_l)).
    """
    import pandas as pd

    axis, values = spec.scale_axis()
    outer_name, outer = spec.outer_axis()
    rows = []
    for m in spec.widths:
        for j, o in enumerate(outer):
            gp = o if outer_name == "gamma_prime" else np.nan
            off = j if outer_name == "layer_exponents" else np.nan
            for v in values:
                for seed in spec.seeds:
                    rows.append((m, gp, off, v, seed))
    g = pd.DataFrame(rows, columns=["width", "gamma_prime", "layer_offset", axis, "seed"])
    g.insert(0, "run_id", np.arange(len(g), dtype=np.int64))
    g["scale_exponent"] = g[axis] if axis == "scale_exponent" else np.nan
    g["gamma"] = g[axis] if axis == "gamma" else np.nan
    g["scale"] = [_epsilon(spec, r.width, r.gamma_prime, getattr(r, axis)) for r in g.itertuples()]
    s = spec.layer_scales
    if spec.model == "two-layer":
        g["alpha"] = spec.alpha
        if spec.gammas is not None:
            g["beta1"] = g["scale"]
            g["beta2"] = g["scale"] * g["width"].astype(float) ** -g["gamma_prime"]  # β₂/β₁ = m^(−γ')
        else:
            g["beta1"], g["beta2"] = g["scale"] * s[0], g["scale"] * s[1]
            g["gamma"], g["gamma_prime"] = _two_layer_coordinates(g["beta1"], g["beta2"], spec.alpha, g["width"])
    if spec.model == "three-layer":
        log_m = np.log(g["width"].astype(float).where(g["width"] >= 2))
        for i, name in enumerate(("exp_a", "exp_w2", "exp_w1")):
            offset = [spec.layer_exponents[int(o)][i] if np.isfinite(o) else 0.0 for o in g["layer_offset"]]
            g[name] = offset - np.log(g["scale"] * s[i]) / log_m  # std_l = m^(−exp_l); NaN for m = 1
    return g


def _layer_factor(spec: TrainSweep, width: int, offset, layer: int) -> float:
    """m^(−δ_l) for the layer_exponents entry `offset` (1 without layer_exponents)."""
    if spec.layer_exponents is None or not np.isfinite(offset):
        return 1.0
    return float(width) ** -spec.layer_exponents[int(offset)][layer]


def _epsilon(spec: TrainSweep, width: int, gamma_prime: float, value: float) -> float:
    from . import scales

    axis = spec.scale_axis()[0]
    if axis == "scale":
        return float(value)
    if axis == "scale_exponent":
        return float(scales.eps_from_exponent(width, value))  # ε = m^(−γ)
    return float(scales.two_layer_scales(value, gamma_prime, width, spec.alpha)[0])  # β₁ from (γ, γ')


def _two_layer_coordinates(beta1, beta2, alpha, width):
    """γ = −log(β₁β₂/α)/log m, γ' = −log(β₂/β₁)/log m (Luo et al. 2021, scales.py); NaN for m = 1."""
    from . import scales

    width = np.asarray(width, dtype=float)
    beta1, beta2 = np.broadcast_to(np.asarray(beta1, float), width.shape), np.broadcast_to(np.asarray(beta2, float), width.shape)
    ok = width >= 2
    out = np.full((2, len(width)), np.nan)
    if not ok.any():
        return out[0], out[1]
    gamma, gamma_prime = scales.two_layer_coordinates(beta1[ok], beta2[ok], alpha, width[ok])
    out[0, ok], out[1, ok] = gamma, gamma_prime
    return out[0], out[1]


def layer_multipliers(spec: TrainSweep, width: int, gamma_prime: float = np.nan, layer_offset: float = np.nan) -> tuple:
    """Per-layer multipliers s_l of ε at one grid point: layer l is initialised at ε·s_l."""
    if spec.gammas is not None:  # ε = β₁ and β₂/β₁ = m^(−γ')
        return (1.0, float(width) ** -gamma_prime)
    # std_l = ε · layer_scales[l] · m^(−δ_l) with layer_exponents, else ε · layer_scales[l]
    return tuple(s * _layer_factor(spec, width, layer_offset, i) for i, s in enumerate(spec.layer_scales))


def train_spec(spec: TrainSweep, width: int, gamma_prime: float = np.nan, layer_offset: float = np.nan):
    """The static TrainSpec of one width (its layer_scales those of one γ' or layer_exponents
    entry; a sweep's compiled call overrides them per run, see _chunks)."""
    from .train import TrainSpec

    if spec.outer_axis()[0] and not (np.isfinite(gamma_prime) or np.isfinite(layer_offset)):
        layer_scales = spec.layer_scales if spec.gammas is None else (1.0, 1.0)
    else:
        layer_scales = layer_multipliers(spec, width, gamma_prime, layer_offset)
    if spec.record_steps is not None:
        records = spec.record_steps
    else:
        records = tuple(np.unique(np.concatenate([[0], np.geomspace(1, spec.steps, spec.n_records)]).round().astype(int)).tolist())
    return TrainSpec(
        model=spec.model, width=width, activation=spec.activation, lr=spec.lr, lr_drops=spec.lr_drops,
        optimizer=spec.optimizer, steps=spec.steps, record_steps=records, layer_scales=layer_scales,
        alpha=spec.alpha, dtype=spec.dtype, diverge_factor=spec.diverge_factor, loss_threshold=spec.loss_threshold,
        escape_fraction=spec.escape_fraction, cos_threshold=spec.cos_threshold, cosine_steps=spec.cosine_steps,
        top_k=min(spec.top_k, width), lr_ntk=spec.lr_ntk, fast_forward_norm=spec.fast_forward_norm if spec.fast_forward else None,
        **(dict(channels=(width,) * spec.conv_layers, kernel_size=spec.kernel_size, hidden=spec.hidden,
                loss=spec.loss, conv_fan_gamma=spec.conv_fan_gamma) if spec.model == "cnn" else {}),
    )


CHUNK_SECONDS = 30.0  # default chunks are sized to about this long, so that a first signal acts soon


def seeds_per_chunk(spec: TrainSweep, tspec, x, n_scales: int, n_devices: int) -> int:
    """Seeds per compiled call so that the per-run state stays within MEMORY_BUDGET and the call
    takes about CHUNK_SECONDS at most (seconds_per_run; never below one seed per device)."""
    if spec.chunk_size is not None:
        return spec.chunk_size
    fit = max(1, int(MEMORY_BUDGET // (bytes_per_run(spec, tspec, x) * n_scales)))
    quick = max(1, int(CHUNK_SECONDS * n_devices // (seconds_per_run(spec, tspec, x) * n_scales)))
    fit = min(fit, quick)
    return max(n_devices, fit // n_devices * n_devices)


def seconds_per_run(spec: TrainSweep, tspec, x) -> float:
    """A rough, deliberately high estimate of one run's time on one CPU core: steps × (6 flops per
    weight and sample at 2·10¹⁰ flop/s, at least 5 µs a step)."""
    m, n = tspec.width, len(x)
    if spec.model == "deep-linear":
        weights, samples = 3 * m * m, m
    elif spec.model == "cnn":
        weights, samples = spec.conv_layers * m * m * spec.kernel_size**2 * int(np.prod(x.shape[1:3])), n
    else:
        d = int(np.prod(x.shape[1:]))
        weights, samples = (m * m if spec.model == "three-layer" else 0) + m * (d + 1), n
    return spec.steps * max(5e-6, 6.0 * weights * samples / 2e10)


def bytes_per_run(spec: TrainSweep, tspec, x) -> float:
    """Estimated per-run state of one compiled call: parameters (×6: θ, θ_prev, gradient,
    optimiser, temporaries), activations, cosine matrices and records."""
    m, itemsize = tspec.width, np.dtype(spec.dtype).itemsize
    n = len(x)
    if spec.model == "deep-linear":
        params, work = 3 * m * m, 4 * m * m
    elif spec.model == "cnn":  # windows (n, H₁W₁, C m²) and activations per layer dominate
        n_px = int(np.prod(x.shape[1:3]))
        params = spec.conv_layers * m * m * spec.kernel_size**2 + n_px * m
        work = 4 * len(x) * n_px * m * (spec.kernel_size**2 + 2) * spec.conv_layers
    else:
        d = x.shape[1]
        params = (m * m if spec.model == "three-layer" else 0) + m * (d + 1)
        work = 6 * n * m
    layers = {"three-layer": 2, "two-layer": 1, "deep-linear": 0, "cnn": 1}[spec.model]
    cos = len(tspec.cosine_recorded()) * layers * m * m
    return float(itemsize * (6 * params + work + cos + 30 * len(tspec.recorded())))




def _chunks(spec: TrainSweep, g, x, y) -> list:
    """Every width in chunks of seeds: the sweep's list of engine.plan.Chunk (computed when written).

    One compiled call per width covers the whole grid at that width: the vmapped scale of a run is
    ε, or (ε, s_1, …, s_L) when the per-layer multipliers vary over the grid (γ' of the two-layer
    phase diagram, three-layer layer_exponents), so a 5 × 5 diagram compiles once per width.
    """
    import jax

    from ..engine.plan import Chunk
    from . import train

    chunks = []
    axis = spec.scale_axis()[0]
    per_layer = bool(spec.outer_axis()[0])
    for width, group in g.groupby("width", sort=False):
        tspec = train_spec(spec, int(width))
        run = train.batched(tspec, x, y)
        group = group.copy()
        point_cols = ["gamma_prime", "layer_offset", axis]
        points = group.drop_duplicates(point_cols)
        group["point"] = group.groupby(point_cols, sort=False, dropna=False).ngroup()
        eps = points["scale"].to_numpy()
        if per_layer:
            mult = [layer_multipliers(spec, int(width), p.gamma_prime, p.layer_offset) for p in points.itertuples()]
            args = np.column_stack([eps, np.asarray(mult)])
        else:
            args = eps
        # with a loss threshold a batch runs until its slowest run stops, and the stopping step
        # depends mostly on the grid point: one call per point (the same compiled function) keeps
        # runs that stop in a few hundred steps out of the batches of slow condensed ones
        calls = [[i] for i in range(len(points))] if spec.loss_threshold > 0 else [list(range(len(points)))]
        per = seeds_per_chunk(spec, tspec, x, len(calls[0]), len(jax.local_devices()))
        for lo in range(0, len(spec.seeds), per):
            seeds = spec.seeds[lo:lo + per]
            for idx in calls:
                rows = group[group["seed"].isin(seeds) & group["point"].isin(idx)]

                def compute(run=run, width=width, seeds=seeds, idx=idx, rows=rows, tspec=tspec, eps=eps, args=args):
                    res = jax.device_get(run(seed_keys(seeds, width), np.asarray(args[idx], dtype=tspec.dtype)))
                    return _tables(spec, tspec, rows, seeds, idx, eps[idx], res, x, y)

                key = {"width": int(width), "seeds": [int(s) for s in seeds], "points": [int(i) for i in idx]}

                def lower(run=run, width=width, seeds=seeds, idx=idx, tspec=tspec, args=args):
                    return run.lower(seed_keys(seeds, width), np.asarray(args[idx], dtype=tspec.dtype))

                chunks.append(Chunk(key, len(rows), compute, len(rows) * bytes_per_run(spec, tspec, x), lower))
    return chunks


def _tables(spec, tspec, rows, seeds, points, scales, res, x, y) -> dict:
    """runs, series and cosines frames of one chunk (res has leading axes seeds × points; scales:
    the ε of each point)."""
    import pandas as pd

    from . import metrics
    from .train import STATUS_CODES

    S, E = len(seeds), len(scales)
    # rows are ordered scale-major, seed-minor within the group; results are (seed, scale)
    order = rows.set_index(["seed", "point"])
    run_ids = np.array([[order.loc[(s, p), "run_id"] for p in points] for s in seeds], dtype=np.int64)
    flat = lambda v: np.asarray(v).reshape(S * E, *np.shape(v)[2:])
    recorded = tspec.recorded()
    loss = flat(res.loss)
    series = metrics.host_series({k: flat(v) for k, v in res.series.items()}, spec.top_k)
    # counts are int64 whatever JAX's 64-bit mode was (it changes the traced integers' width)
    series = {k: v.astype(np.int64) if v.dtype.kind in "iu" else v for k, v in series.items()}

    runs = rows.drop(columns="point").set_index("run_id").loc[run_ids.ravel()].reset_index()
    runs["model"], runs["activation"], runs["optimizer"] = spec.model, spec.activation, spec.optimizer
    runs["lr"], runs["steps"], runs["n"], runs["d"] = spec.lr, spec.steps, len(y), (x.shape[1] if x.ndim == 2 and spec.model != "deep-linear" else 0)
    runs["bias"], runs["loss_threshold"] = spec.bias, spec.loss_threshold
    factor = flat(res.lr_factor).astype(np.float64)
    runs["lr_run"] = spec.lr * factor  # the run's own step size (lr_ntk: min(lr, lr_ntk / K₀))
    runs["status"] = [STATUS_CODES[int(s)] for s in flat(res.status)]
    runs["stop_step"] = flat(res.stop_step).astype(np.int64)
    runs["loss_initial"], runs["loss_final"] = loss[:, 0], loss[:, -1]
    runs["escape_fraction"] = spec.escape_fraction
    esc = flat(res.escape_step)
    runs["escape_step"] = pd.array(np.where(esc >= 0, esc, 0), dtype="Int64")
    runs.loc[esc < 0, "escape_step"] = pd.NA
    k_h = flat(res.fast_forward_step).astype(np.int64)
    if spec.fast_forward:
        runs["fast_forward_step"] = k_h
    pos = flat(res.max_pos_sum)
    runs["max_pos_sum"] = pd.array(np.where(pos >= 0, pos, 0), dtype="Int64")
    runs.loc[pos < 0, "max_pos_sum"] = pd.NA
    if "a2_holds" in series:
        holds = series["a2_holds"].astype(bool)
        first = np.where(holds.any(1), recorded[np.argmax(holds, 1)], -1)
        runs["full_hold_step"] = pd.array(np.where(first >= 0, first, 0), dtype="Int64")
        runs.loc[first < 0, "full_hold_step"] = pd.NA
    for k, v in series.items():
        runs[k] = v[:, -1]
    runs = runs.join(pd.DataFrame(_predicted(spec, tspec, res, scales, x, y, S, E)))

    runs = runs.sort_values("run_id", ignore_index=True)
    K = len(recorded)
    ser = pd.DataFrame({"run_id": np.repeat(run_ids.ravel(), K), "step": np.tile(recorded, S * E), "loss": loss.ravel()})
    for k, v in series.items():
        ser[k] = v.ravel()
    if spec.fast_forward:  # records up to the handover come from the leading-order dynamics
        ser["effective"] = (np.tile(recorded, S * E) <= np.repeat(k_h, K)) & (np.repeat(k_h, K) > 0)
    ser = ser.sort_values(["run_id", "step"], ignore_index=True)
    return {"runs": runs, "series": ser, "cosines": _cosine_frame(spec, tspec, res, run_ids, seeds)}


def _predicted(spec, tspec, res, scales, x, y, S, E) -> dict:
    """T* of the effective ODE from each run's normalised start and the predicted escape step."""
    nan = np.full(S * E, np.nan)
    out = {"t_star": nan, "kappa": nan, "predicted_escape_step": nan}
    if spec.model != "three-layer" or not spec.predict_escape:
        return out
    from . import escape

    params0 = {k: np.asarray(v).reshape(S * E, *np.shape(v)[2:]) for k, v in res.params0.items()}
    eps = np.tile(np.asarray(scales, dtype=np.float64), S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CLI says once, up front, when σ does not qualify
        pred = escape.predicted_escape(params0, eps, x, y, spec.activation, 1.0)
    # with lr = 1 the "step" is the gradient-flow time t = T*/(ε κ); GD with rates lr_k covers
    # Σ lr_k of it, so the drops of a piecewise-constant schedule are followed exactly
    # (with lr_ntk every rate of the run is lr_k × its factor, so it covers t / factor of lr_k-time)
    factor = np.asarray(res.lr_factor, dtype=float).reshape(S * E)
    steps = steps_for_time(np.asarray(pred["predicted_step"], dtype=float) / factor, spec.lr, spec.lr_drops)
    if spec.optimizer != "gd":
        steps = np.full(S * E, np.nan)  # Adam does not follow the gradient flow's clock
    return {"t_star": np.asarray(pred["t_star"]), "kappa": np.broadcast_to(pred["kappa"], (S * E,)).astype(float),
            "predicted_escape_step": steps}


def steps_for_time(t, lr: float, drops) -> np.ndarray:
    """GD steps whose learning rates add up to the gradient-flow time t (t = Σ_k lr_k), for the
    piecewise-constant schedule lr, then drops[i][1] from step drops[i][0] on."""
    t = np.asarray(t, dtype=float)
    out = np.full(t.shape, np.nan)
    start, rate, elapsed = 0, lr, 0.0
    todo = np.isfinite(t)
    for step, new in [*drops, (np.inf, None)]:
        span = (step - start) * rate  # time covered before the next drop
        here = todo & (t <= elapsed + span)
        out[here] = start + (t[here] - elapsed) / rate
        todo &= ~here
        if new is None:
            break
        elapsed, start, rate = elapsed + span, step, new
    return out


def _cosine_frame(spec, tspec, res, run_ids, seeds):
    import pandas as pd

    keep = [i for i, s in enumerate(seeds) if spec.seeds.index(s) < spec.cosine_seeds]
    steps = tspec.cosine_recorded()
    rows = []
    for layer, mats in res.cosines.items():
        mats = np.asarray(mats)
        for i in keep:
            for j in range(run_ids.shape[1]):
                for c, step in enumerate(steps):
                    # width: the side of the matrix (C for θ_β, C_{l−1}·C_l for a deeper cnn layer's kernels)
                    rows.append((int(run_ids[i, j]), int(step), layer, mats.shape[-2], list(mats[i, j, c].astype(np.float64))))  # a list of rows: reads back as the matrix
    return pd.DataFrame(rows, columns=["run_id", "step", "layer", "width", "cos"])


def plan_train_sweep(spec: TrainSweep):
    """The sweep's engine.plan.Plan: data loaded and checked, chunks ready (nothing computed)."""
    from ..engine.plan import Plan
    from .models import activations

    act = activations.get(spec.activation)
    x, y = load_data(spec)
    if spec.model == "deep-linear" and x.ndim == 2 and x.shape != (spec.widths[0],) * 2:
        raise ConfigError(f"the fig3 target is {x.shape[0]}×{x.shape[1]}; deep-linear needs one width equal to it")
    if spec.model == "deep-linear" and (len(spec.widths) != 1 or x.shape[-1] != spec.widths[0]):
        raise ConfigError(f"deep-linear widths must be the one matrix size {x.shape[-1]} of the data, got {list(spec.widths)}")
    if spec.model == "three-layer" and spec.predict_escape and not act.effective_ok:
        warnings.warn(
            f"activation {spec.activation!r} is not smooth with σ'(0) ≠ 0 at 0: the effective model (3.6) does not "
            "apply, predicted_escape_step is left NaN", stacklevel=2)
    if spec.model == "three-layer" and spec.predict_escape and act.effective_ok:
        # predicted_escape_step solves the effective ODE in float64, which switches JAX's 64-bit mode
        # on; switched on after the first chunk it made every later chunk retrace and recompile the
        # training program (a float32 run computes the same bits either way: tests/test_store.py)
        from ..engine.devices import enable_dtype

        enable_dtype("float64")
    g = grid(spec)
    extra = {"data_sha256": array_digest(x, y)}
    return Plan({**spec.to_dict(), **extra}, spec.config_hash(extra), len(g), spec.name, _chunks(spec, g, x, y), COLUMNS)
