"""Four phases of the two-layer ReLU classifier (issue #8): the dynamics, the detector, GF against GD,
the sweep through the CLI, and bad input."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from condense_jax import cli
from condense_jax.errors import ConfigError
from condense_jax.four_phases import data as two_class
from condense_jax.four_phases import detect as phase_detect
from condense_jax.four_phases import dynamics as relu_flow
from condense_jax.four_phases.spec import FourPhaseSweep


def simulate(x, y, eps, width=16, seeds=4, t_max=3000.0, n_records=80, **kw):
    spec = relu_flow.FlowSpec(width=width, times=tuple(np.geomspace(0.1, t_max, n_records)), **kw)
    make = relu_flow.make_flow if spec.method == "gf" else relu_flow.make_descent
    run = jax.jit(jax.vmap(make(spec, relu_flow.class_directions(x, y)), in_axes=(0, None, None, None)))
    res = jax.device_get(run(jax.random.split(jax.random.PRNGKey(0), seeds), eps, x, y))
    t = np.asarray(res.times).reshape(-1, res.records.loss.shape[-1])[0]
    rec = res.records
    found = phase_detect.detect_runs(t, rec.loss, np.minimum(rec.cond_pos, rec.cond_neg), rec.pattern_changes, rec.accuracy)
    return t, res, found


def test_gradient_is_the_autodiff_gradient_and_finite_differences():
    x, y = two_class.angled_classes(30, d=3, delta=100, spread=10, seed=1)
    p = relu_flow.init(jax.random.PRNGKey(3), 0.7, 5, 3, dtype=np.float64)
    for loss in relu_flow.LOSSES:
        value, grad = relu_flow.value_and_grad(p, x, y, loss)
        auto = jax.grad(relu_flow.loss_value)(p, x, y, loss)
        np.testing.assert_allclose(value, relu_flow.loss_value(p, x, y, loss), rtol=1e-13)
        np.testing.assert_allclose(grad.w, auto.w, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grad.a, auto.a, rtol=1e-10, atol=1e-14)
        h = 1e-6  # central differences along a random direction (no sample sits on a kink here)
        dw, da = np.random.default_rng(0).standard_normal(p.w.shape), np.random.default_rng(1).standard_normal(p.a.shape)
        f = [float(relu_flow.loss_value(relu_flow.Params(p.w + s * dw, p.a + s * da), x, y, loss)) for s in (h, -h)]
        np.testing.assert_allclose((f[0] - f[1]) / (2 * h), np.sum(grad.w * dw) + np.sum(grad.a * da), rtol=1e-6)


def test_balanced_init_has_equal_layer_norms():
    p = relu_flow.init(jax.random.PRNGKey(0), 1e-3, 64, 5, "balanced", np.float64)
    np.testing.assert_allclose(np.abs(p.a), np.linalg.norm(p.w, axis=1), rtol=1e-12)
    assert 10 < (p.a > 0).sum() < 54


def test_obtuse_2d_alignment_then_one_over_t_convergence():
    """Min, Mallada & Vidal's setting: Δ = 135° (different labels negatively correlated), ±15° spread,
    ε = 1e-6. Before the loss leaves its initial level (norms still O(ε)) every live neuron with
    a_k > 0 points along the positive class mean x₊ and every one with a_k < 0 along x₋ (cos ≥ 0.98);
    the detector finds phases I, II and IV and no plateau (balanced classes: both groups grow
    together); in phase IV the loss decays like 1/(t log t): over the last decade of time the
    log-log slope lies in [−1.3, −1.02] (1 + 1/log t ≈ 1.15 at t = 10³: steeper than −1)."""
    x, y = two_class.angled_classes(60, d=2, delta=135, spread=15, seed=0)
    t, res, found = simulate(x, y, 1e-6)
    rec = res.records
    for i, f in enumerate(found):
        assert f["phase_I"] and f["phase_II"] and f["phase_IV"], f
        assert not f["phase_III"] and np.isnan(f["t_II_III"])
        # the last record whose neurons are all still within 1000 ε in norm: after phase I
        k = int(np.flatnonzero(rec.max_neuron_norm[i] <= 1e-3)[-1])
        assert f["t_I_II"] <= t[k] < f["t_drop"]
        assert rec.align_pos[i, k] >= 0.98 and rec.align_neg[i, k] >= 0.98
        assert rec.live[i, k] >= 4  # not a vacuous minimum
        last = t >= t[-1] / 10
        slope = np.polyfit(np.log(t[last]), np.log(rec.loss[i][last]), 1)[0]
        assert -1.3 <= slope <= -1.02, slope
        assert f["t_III_IV"] < t[-1] / 10
        assert rec.accuracy[i, -1] == 1.0


def test_final_first_layer_has_stable_rank_at_most_two():
    """Min et al.: after alignment the network is two linear subnetworks, so W is close to rank 2 —
    on d = 20 data, from a random init of stable rank ≈ 5."""
    x, y = two_class.angled_classes(60, d=20, delta=135, spread=15, seed=0)
    t, res, found = simulate(x, y, 1e-6)
    sr = res.records.stable_rank
    assert np.all(sr[:, 0] > 3.5)
    assert np.all(sr[:, -1] <= 2.0 + 0.05)


def test_plateau_and_escape_by_activation_changes():
    """Acute Δ = 60° with three quarters of the samples positive (the four-phase preset): the positive
    neurons fit their class first and the loss stalls on a plateau at about the negative class's
    share of log 2; it leaves it after activation patterns change. All four phases, in order."""
    x, y = two_class.angled_classes(100, d=2, delta=60, spread=15, seed=0, positive_fraction=0.75)
    t, res, found = simulate(x, y, 1e-6, width=20, init="balanced")
    share = np.mean(y < 0) * np.log(2)
    for f in found:
        assert f["phases"] == "I+II+III+IV", f
        assert f["t_I_II"] < f["t_drop"] < f["t_II_III"] < f["t_plateau_end"] < f["t_III_IV"]
        assert 0.6 * share < f["plateau_loss"] < 1.2 * share
        assert f["t_II_III"] < f["t_escape"] <= f["t_plateau_end"]


def test_large_init_does_not_condense():
    x, y = two_class.angled_classes(60, d=2, delta=135, spread=15, seed=0)
    _, _, found = simulate(x, y, 0.3, t_max=300.0, n_records=50)
    assert not any(f["phase_I"] for f in found)
    assert all(np.isnan(f["t_I_II"]) for f in found)


def test_gradient_flow_and_small_step_descent_agree_on_the_phases():
    """Diffrax's gradient flow (float64, rtol 1e-6) and GD with steps ≤ 0.2 % of the time flowed
    (min 0.005): the loss curves agree to 3 % (the worst point is in the steep fall; halving the
    steps halves it: GD's error is O(h)) and every boundary lands on the same record or the
    next one (the record grid's ratio is 1.15)."""
    x, y = two_class.angled_classes(40, d=2, delta=60, spread=15, seed=0, positive_fraction=0.75)
    common = dict(width=10, seeds=3, t_max=1500.0, n_records=60, dtype="float64", lr=0.005, lr_rel=0.001, lr_max=0.5)
    t_gd, gd, found_gd = simulate(x, y, 1e-5, method="gd", **common)
    t_gf, gf, found_gf = simulate(x, y, 1e-5, method="gf", **common)
    np.testing.assert_array_equal(t_gd, t_gf)
    assert np.all(gf.status == 0) and np.all(gd.status == 0)
    np.testing.assert_allclose(gd.records.loss, gf.records.loss, rtol=0.03)
    ratio = t_gd[1:] / t_gd[:-1]
    for a, b in zip(found_gd, found_gf):
        assert a["phases"] == b["phases"]
        for key in ("t_I_II", "t_drop", "t_II_III", "t_plateau_end", "t_III_IV"):
            if np.isnan(a[key]):
                assert np.isnan(b[key])
                continue
            assert abs(np.log(a[key] / b[key])) <= np.log(ratio.max()) * 1.01, (key, a[key], b[key])


@pytest.mark.slow
def test_float64_is_float64_in_a_fresh_process():
    """Asking for float64 switches JAX's 64-bit mode on (it would otherwise compute in float32)."""
    import subprocess
    import sys

    code = ("import jax, numpy as np\n"
            "from condense_jax.four_phases import data as two_class, dynamics as relu_flow\n"
            "assert not jax.config.jax_enable_x64\n"
            "x, y = two_class.angled_classes(20, seed=0)\n"
            "for method in ('gd', 'gf'):\n"
            "    spec = relu_flow.FlowSpec(width=4, method=method, dtype='float64', times=(0.5, 1.0, 2.0))\n"
            "    make = relu_flow.make_flow if method == 'gf' else relu_flow.make_descent\n"
            "    res = jax.jit(make(spec, relu_flow.class_directions(x, y)))(jax.random.PRNGKey(0), 1e-3, x, y)\n"
            "    assert res.records.loss.dtype == np.float64 and res.params.w.dtype == np.float64, method\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]


# --- the detector on synthetic series with known boundaries ------------------------------------


def synthetic(t, t_cond=None, drop=30.0, plateau=(0.25, 60.0, 120.0), conv=True):
    """A loss that sits at log 2, falls at `drop`, optionally rests on a plateau (level, start, end),
    then decays like 1/(t log t); condensation (cos) reaches 1 at t_cond."""
    L0 = np.log(2)
    sig = lambda u: 1 / (1 + np.exp(-u))
    tail = lambda s: 2.0 / ((s + 5) * np.log(s + 5))
    if plateau:
        level, start, end = plateau
        first = L0 - (L0 - level) * sig(8 * np.log(t / drop) - 4)
        loss = np.where(t < end, first, level * np.exp(-((t - end) / (0.05 * end)) ** 1) + tail(np.maximum(t - end, 0)) * (t >= end))
        loss = np.where(t < end, loss, np.minimum(level, loss))
    else:
        loss = L0 * (1 - sig(8 * np.log(t / drop) - 4)) + tail(np.maximum(t - drop, 0)) * sig(8 * np.log(t / drop) - 4)
    if not conv:
        loss = np.where(t > drop, np.maximum(loss, 0.3), loss)
    cond = np.where(t >= t_cond, 1.0, 0.5) if t_cond else np.full_like(t, 0.5)
    changes = np.zeros(len(t), int)
    if plateau:
        changes[np.searchsorted(t, plateau[2]) - 1] = 7  # the pattern change just before the plateau ends
    acc = np.where(t > drop * 2, 1.0, 0.8)
    return loss, cond, changes, acc


T = np.geomspace(0.1, 1e5, 200)


def near(found, truth, tol=1.2):
    return np.isfinite(found) and truth / tol <= found <= truth * tol


def test_detector_recovers_known_boundaries():
    loss, cond, changes, acc = synthetic(T, t_cond=10.0)
    f = phase_detect.detect(T, loss, cond, changes, acc)
    assert f["phases"] == "I+II+III+IV"
    assert near(f["t_I_II"], 10.0, 1.05)
    assert f["t_I_II"] < f["t_drop"] < f["t_II_III"] < 0.8 * f["t_plateau_end"]
    assert near(f["t_plateau_end"], 120.0, 1.15)
    assert near(f["t_escape"], 120.0, 1.1)
    assert near(f["plateau_loss"], 0.25, 1.2)
    assert f["t_plateau_end"] < f["t_III_IV"] < 1e4


def test_detector_says_absent_instead_of_inventing_boundaries():
    # no plateau: phase III absent, phase II runs into IV
    loss, cond, changes, acc = synthetic(T, t_cond=10.0, plateau=None)
    f = phase_detect.detect(T, loss, cond, changes, acc)
    assert f["phases"] == "I+II+IV" and np.isnan(f["t_II_III"]) and np.isnan(f["t_escape"])
    assert np.isfinite(f["t_III_IV"])
    # condensation only after the loss has dropped: phase I absent
    f = phase_detect.detect(T, loss, np.where(T >= 100.0, 1.0, 0.5), changes, acc)
    assert not f["phase_I"] and np.isnan(f["t_I_II"])
    # never reaches the 1/t decay within the records: phase IV absent
    loss, cond, changes, acc = synthetic(T, t_cond=10.0, plateau=None, conv=False)
    f = phase_detect.detect(T, loss, cond, changes, acc)
    assert not f["phase_IV"] and np.isnan(f["t_III_IV"])
    # the loss never leaves the saddle: only phase I
    flat = np.full_like(T, np.log(2))
    f = phase_detect.detect(T, flat, np.where(T >= 10.0, 1.0, 0.5), np.zeros(len(T)), np.full_like(T, 0.5))
    assert f["phases"] == "I"
    assert all(np.isnan(f[k]) for k in ("t_drop", "t_II_III", "t_III_IV"))


def test_fit_against_log_inverse_eps_is_exact_on_a_line():
    eps = np.repeat([1e-2, 1e-4, 1e-6], 3)
    runs = pd.DataFrame({"log_inv_eps": np.log(1 / eps), "t_I_II": 2.0 + 0.5 * np.log(1 / eps)})
    fit = phase_detect.fit_log_eps(runs)
    assert fit["slope"] == pytest.approx(0.5) and fit["intercept"] == pytest.approx(2.0) and fit["stderr"] < 1e-9


# --- the sweep through the CLI, and bad input -------------------------------------------------




@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp") / "res"
    code = cli.main(["four-phases", "--out", str(out), "--widths", "12", "--init-scales", "1e-2", "1e-4", "1e-6",
                     "--seeds", "3", "--n", "40", "--delta", "60", "120", "--t-max", "1000", "--n-records", "50", "--init", "balanced",
                     "--quiet"])
    assert code == 0
    return out


def test_sweep_tables_and_figures(sweep):
    runs = pd.read_parquet(sweep / "runs")
    series = pd.read_parquet(sweep / "series")
    neurons = pd.read_parquet(sweep / "neurons")
    assert len(runs) == 1 * 1 * 2 * 3 * 3 and sorted(runs["run_id"]) == list(range(18))
    assert set(runs["status"]) == {"finished"}
    for col in ("t_I_II", "t_II_III", "t_III_IV", "phases", "frac_s_plus", "frac_s_minus", "frac_dead", "final_stable_rank"):
        assert col in runs
    np.testing.assert_allclose(runs["frac_s_plus"] + runs["frac_s_minus"] + runs["frac_dead"] <= 1 + 1e-12, True)
    assert (abs(runs["class_angle"] - runs["delta"]) < 2 * 15).all()  # each class mean lies within its ±15° arc
    assert series.groupby("run_id").size().nunique() == 1 and len(series) == 18 * series.groupby("run_id").size().iloc[0]
    assert (series["live"] + series["dead"] == 12).all()
    # per-neuron records only for the first two seeds (the default neuron_seeds)
    assert set(runs.loc[runs["run_id"].isin(neurons["run_id"]), "seed"]) == {0, 1}
    # where phase I is found, the neurons are condensed at t_I→II while their norms are still small
    cond = series.merge(runs[["run_id", "init_scale", "t_I_II"]], on="run_id")
    at = cond[cond["t"] == cond["t_I_II"]]
    assert at["run_id"].nunique() == runs["phase_I"].sum() >= 3
    assert (np.minimum(at["cond_pos"], at["cond_neg"]) >= 0.98).all()
    assert (at["max_neuron_norm"] < 0.1).all()  # before the loss moves: the norms have grown from ε but are still small
    figs = sorted(p.name for p in (sweep / "figures").glob("*.png"))
    assert "phase_times.png" in figs and any(f.startswith("timeline_run") for f in figs) and any(f.startswith("neurons_run") for f in figs)


def test_plot_phases_redraws_and_refuses_other_directories(sweep, tmp_path, capsys):
    code, out, _ = run_cli(["plot", "phases", str(sweep), "--output", str(tmp_path / "figs")], capsys)
    assert code == 0 and "runs showing each phase" in out and (tmp_path / "figs" / "phase_times.png").exists()
    ode = tmp_path / "ode"
    assert cli.main(["ode", "--out", str(ode), "--widths", "4", "--seeds", "2", "--quiet", "--no-figure"]) == 0
    capsys.readouterr()
    code, _, err = run_cli(["plot", "phases", str(ode)], capsys)
    assert code == 2 and "not a four-phase sweep" in err and len(err.strip().splitlines()) == 1


def test_run_ids_do_not_depend_on_chunking(sweep, tmp_path):
    out = tmp_path / "chunked"
    code = cli.main(["four-phases", "--out", str(out), "--widths", "12", "--init-scales", "1e-2", "1e-4", "1e-6",
                     "--seeds", "3", "--n", "40", "--delta", "60", "120", "--t-max", "1000", "--n-records", "50",
                     "--init", "balanced", "--chunk-size", "2", "--quiet", "--no-figure"])
    assert code == 0
    a = pd.read_parquet(sweep / "runs").sort_values("run_id").reset_index(drop=True)
    b = pd.read_parquet(out / "runs").sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_frozen_runs_do_not_disturb_their_batch_mates(tmp_path, capsys):
    """ε = 3 with steps of 20 blows the loss past 3× its start (diverged); a loss threshold freezes
    runs that reach it (converged); the ε = 1e-4 runs of the same batch are identical to a sweep
    without the ε = 3 runs."""
    base = ["--widths", "8", "--seeds", "2", "--n", "30", "--delta", "120", "--t-max", "100", "--n-records", "30",
            "--lr", "20", "--lr-max", "20", "--lr-rel", "0", "--diverge-factor", "3", "--quiet", "--no-figure"]
    code, _, _ = run_cli(["four-phases", "--out", str(tmp_path / "mixed"), "--init-scales", "1e-4", "3", *base], capsys)
    assert code == 0
    code, _, _ = run_cli(["four-phases", "--out", str(tmp_path / "alone"), "--init-scales", "1e-4", *base], capsys)
    assert code == 0
    mixed = pd.read_parquet(tmp_path / "mixed" / "runs")
    assert set(mixed.loc[mixed["init_scale"] == 3, "status"]) == {"diverged"}
    assert (mixed.loc[mixed["init_scale"] == 3, "stop_time"] < 100).all()
    assert (mixed.loc[mixed["init_scale"] == 3, "stop_step"] * 20.0 == mixed.loc[mixed["init_scale"] == 3, "stop_time"]).all()
    assert (mixed.loc[mixed["init_scale"] == 1e-4, "stop_step"] == 5).all()  # never frozen: all 100 / 20 steps
    assert set(mixed.loc[mixed["init_scale"] == 1e-4, "status"]) == {"finished"}
    sm = pd.read_parquet(tmp_path / "mixed" / "series").merge(mixed[["run_id", "init_scale", "seed"]], on="run_id")
    alone = pd.read_parquet(tmp_path / "alone" / "series").merge(
        pd.read_parquet(tmp_path / "alone" / "runs")[["run_id", "seed"]], on="run_id")
    small = sm[sm["init_scale"] == 1e-4].sort_values(["seed", "t"])
    np.testing.assert_array_equal(small["loss"].to_numpy(), alone.sort_values(["seed", "t"])["loss"].to_numpy())
    # converged: frozen at the threshold, its records hold the frozen loss
    code, _, _ = run_cli(["four-phases", "--out", str(tmp_path / "conv"), "--init-scales", "1e-4", "--loss-threshold", "0.05",
                          "--widths", "8", "--seeds", "2", "--n", "30", "--delta", "120", "--t-max", "300", "--n-records", "30",
                          "--quiet", "--no-figure"], capsys)
    assert code == 0
    conv = pd.read_parquet(tmp_path / "conv" / "runs")
    assert set(conv["status"]) == {"converged"} and (conv["final_loss"] <= 0.05).all() and (conv["stop_time"] < 300).all()
    # the frozen, flat tail is not read as a plateau: every boundary lies before the stop
    for col in ("t_I_II", "t_drop", "t_II_III", "t_plateau_end", "t_III_IV"):
        assert (conv[col].isna() | (conv[col] <= conv["stop_time"])).all(), col
    assert (conv["plateau_loss"].isna() | (conv["plateau_loss"] > 0.05)).all()


@pytest.mark.parametrize("args, needle", [
    (["--delta", "200"], "delta"),
    (["--delta", "0"], "delta"),
    (["--init-scales", "0"], "init_scales"),
    (["--init-scales=-1e-3"], "init_scales"),
    (["--widths", "0"], "widths"),
    (["--delta", "20", "--spread", "15"], "spread"),
    (["--positive-fraction", "1"], "positive_fraction"),
])
def test_bad_input_one_line_exit_2(args, needle, tmp_path, capsys):
    code, out, err = run_cli(["four-phases", "--out", str(tmp_path / "x"), "--seeds", "2", *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_non_separable_data_is_refused_unless_allowed(tmp_path, capsys):
    path = tmp_path / "xor.npz"
    np.savez(path, x=np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]), y=np.array([1.0, 1, -1, -1]))
    code, _, err = run_cli(["four-phases", "--out", str(tmp_path / "x"), "--data", str(path), "--seeds", "2"], capsys)
    assert code == 2 and "not linearly separable" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    code, _, _ = run_cli(["four-phases", "--out", str(tmp_path / "y"), "--data", str(path), "--seeds", "2", "--allow-nonseparable",
                          "--init-scales", "1e-3", "--t-max", "50", "--n-records", "20", "--quiet", "--no-figure"], capsys)
    assert code == 0
    runs = pd.read_parquet(tmp_path / "y" / "runs")
    assert len(runs) == 2 and set(runs["status"]) == {"finished"}


def test_spec_validation():
    with pytest.raises(ConfigError, match="t_max"):
        FourPhaseSweep(t_min=10, t_max=5)
    with pytest.raises(ConfigError, match="plateau_slope < steep_slope"):
        FourPhaseSweep(plateau_slope=2.0)  # refused before anything runs
    with pytest.raises(ConfigError, match="unknown loss"):
        FourPhaseSweep(loss="hinge")
    with pytest.raises(ConfigError, match="digits"):
        FourPhaseSweep(data="digits", digits=(3, 3)) and two_class.digit_pair(3, 3)
    assert FourPhaseSweep(data="digits").n_runs == 1 * 1 * 5 * len(FourPhaseSweep().seeds)  # one data set: no n × Δ axes
