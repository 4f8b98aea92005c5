"""Phase diagrams: the width-slope fit, the classifier, the two-layer theory, the engine on two
clearly separated grid points, the figures and `condense phase`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from condense_jax import run
from condense_jax.cli import main
from condense_jax.errors import ConfigError
from condense_jax.gd import sweep as train_sweep
from condense_jax.gd import train
from condense_jax.gd.phase_diagram import fit as phase
from condense_jax.gd.phase_diagram import plots as phase_plots
from condense_jax.gd.spec import TrainSweep

WIDTHS = (16, 32, 64, 128, 256)


def synthetic_runs(points: dict, seeds: int = 8, noise: float = 0.05, rng=None, widths=WIDTHS) -> pd.DataFrame:
    """A two-layer runs table with RD = C m^(−S) e^(noise·z) at each (γ', γ) → S in `points`."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for (gp, g), s in points.items():
        for seed in range(seeds):
            c = np.exp(rng.normal(0, 0.3))  # a seed's own prefactor: the slope must not depend on it
            for m in widths:
                rd = c * m ** (-s) * np.exp(noise * rng.normal())
                rows.append(dict(model="two-layer", gamma_prime=gp, gamma=g, width=m, seed=seed, status="converged",
                                 loss_threshold=1e-2, rd_w=rd, cos_v_w=0.9, n_dir_w=3.0))
    return pd.DataFrame(rows)


def test_width_slope_is_exact_on_a_power_law():
    m = np.array(WIDTHS, float)
    s, se = phase.width_slope(m, 3.0 * m ** -0.7)
    assert s == pytest.approx(0.7, abs=1e-12) and se == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(phase.width_slope([8, 8], [1.0, 2.0])[0])  # one width: no slope


@pytest.mark.parametrize("true", [0.6, 0.0, -0.45])
def test_fit_recovers_known_slopes_within_their_error(true):
    rng = np.random.default_rng(int(1000 * (true + 1)))
    hits, ses = 0, []
    for _ in range(100):
        runs = synthetic_runs({(0.0, 1.0): true}, seeds=8, noise=0.1, rng=rng)
        fit = phase.fit_slope(runs, "rd_w")
        assert fit["n_seeds"] == 8 and fit["n_widths"] == len(WIDTHS)
        ses.append(fit["stderr"])
        hits += abs(fit["slope"] - true) <= 2.365 * fit["stderr"]  # t(7 dof) 97.5% quantile
    # a per-seed OLS slope has sd noise/√Σ(log m − mean)²; the mean over 8 seeds that over √8
    lm = np.log(WIDTHS)
    assert np.mean(ses) == pytest.approx(0.1 / np.sqrt(np.sum((lm - lm.mean()) ** 2)) / np.sqrt(8), rel=0.15)
    assert hits >= 88  # a 95% interval: below 88/100 with probability ≈ 1e-3


def test_classifier_with_its_error_band():
    slope = np.array([0.5, -0.5, 0.1, 0.1, -0.12, 0.02, np.nan])
    se = np.array([0.05, 0.05, 0.04, 0.01, 0.04, np.nan, 0.1])
    got = phase.classify(slope, se, k=2.0, tol=0.05)
    # bands: 0.15, 0.15, 0.13, 0.07, 0.13, 0.05 (NaN stderr counts as 0)
    assert list(got) == ["linear", "condensed", "critical", "linear", "critical", "critical", "undetermined"]
    assert list(phase.classify([0.1], [0.04], k=0.0, tol=0.0)) == ["linear"]


def test_phase_table_labels_synthetic_regimes():
    points = {(0.0, 0.5): 0.5, (0.0, 1.0): 0.0, (0.0, 1.75): -0.4, (0.5, 1.25): 0.35, (-1.0, 1.25): -0.3}
    runs = synthetic_runs(points, noise=0.05)
    # a grid point where only one width reached the threshold is undetermined, not guessed
    lone = synthetic_runs({(1.0, 2.0): -0.4}, noise=0.05)
    lone.loc[lone["width"] != 16, "status"] = "finished"
    table = phase.phase_table(pd.concat([runs, lone], ignore_index=True)).set_index(["gamma_prime", "gamma"])
    assert table.loc[(0.0, 0.5), "regime_w"] == "linear"
    assert table.loc[(0.0, 1.0), "regime_w"] == "critical"
    assert table.loc[(0.0, 1.75), "regime_w"] == "condensed"
    assert table.loc[(0.5, 1.25), "regime_w"] == "linear"
    assert table.loc[(-1.0, 1.25), "regime_w"] == "condensed"
    assert table.loc[(1.0, 2.0), "regime_w"] == "undetermined" and table.loc[(1.0, 2.0), "n_used"] == 8
    for (gp, g), s in points.items():
        assert abs(table.loc[(gp, g), "slope_w"] - s) < 4 * table.loc[(gp, g), "stderr_w"] + 1e-9
    # the synthetic slopes were chosen on the theory's side of the boundary: the labels agree
    det = table[table["regime_w"] != "undetermined"]
    assert (det["regime_w"] == det["regime_theory"]).all()


def test_two_layer_theory_regions():
    g = np.array([0.5, 1.75, 1.0, 1.5, 1.25, 1.25, 0.9, 2.5])
    gp = np.array([0.0, 0.0, 0.0, 0.5, 0.5, -1.0, -2.0, 1.0])
    assert list(phase.two_layer_theory(g, gp)) == [
        "linear", "condensed", "critical", "critical", "linear", "condensed", "linear", "condensed"]
    # Luo et al.'s examples: NTK (α = √m, β₁ = β₂ = 1) linear, mean field (α = m) critical
    from condense_jax.gd import scales

    m = 1000
    assert phase.two_layer_theory(*scales.two_layer_coordinates(1.0, 1.0, np.sqrt(m), m)) == "linear"
    assert phase.two_layer_theory(*scales.two_layer_coordinates(1.0, 1.0, m, m)) == "critical"


def test_bad_tables_are_one_line_errors():
    with pytest.raises(ConfigError, match="empty"):
        phase.phase_table(pd.DataFrame(columns=["model"]))
    one_width = synthetic_runs({(0.0, 1.0): 0.0}, widths=(32,))
    with pytest.raises(ConfigError, match="at least 2 widths"):
        phase.phase_table(one_width)
    with pytest.raises(ConfigError, match="lacks column"):
        phase.phase_table(synthetic_runs({(0.0, 1.0): 0.0}).drop(columns="rd_w"))
    with pytest.raises(ConfigError, match="deep-linear"):
        phase.phase_table(synthetic_runs({(0.0, 1.0): 0.0}).assign(model="deep-linear"))


# ------------------------------------------------------------------ the engine


@pytest.fixture(scope="module")
def two_points(tmp_path_factory):
    """A quick two-layer sweep at γ = 0.5 and γ = 1.75 (γ' = 0), widths 16 … 128."""
    spec = TrainSweep(model="two-layer", activation="relu", bias=True, data="tanh", n=20, widths=(16, 32, 64, 128),
                      gammas=(0.5, 1.75), gamma_primes=(0.0,), seeds=4, lr=0.5, lr_ntk=1.0, loss_threshold=1e-2,
                      steps=5000, n_records=10, cosine_seeds=0, predict_escape=False)
    out = tmp_path_factory.mktemp("phase") / "two"
    run(spec, out, figures=False)
    return spec, out, pd.read_parquet(out / "runs")


def test_quick_sweep_is_linear_at_half_and_condensed_at_seven_quarters(two_points):
    spec, _, runs = two_points
    assert (runs["status"] == "converged").mean() > 0.9
    table = phase.phase_table(runs).set_index("gamma")
    assert table.loc[0.5, "regime_w"] == "linear" and table.loc[0.5, "slope_w"] > 0
    assert table.loc[1.75, "regime_w"] == "condensed" and table.loc[1.75, "slope_w"] < 0
    # where weights condense: fewer distinct directions in the condensed regime
    assert table.loc[1.75, "n_dir_w"] < table.loc[0.5, "n_dir_w"]


def test_lr_ntk_is_min_of_lr_and_eta_over_the_kernel_trace(two_points):
    """lr_run = min(lr, lr_ntk/K₀), K₀ = (1/n) Σ_i ‖∇_θ f(x_i)‖² from the full Jacobian."""
    import jax
    import jax.numpy as jnp

    from condense_jax.gd.models import activations, mlp

    spec, _, runs = two_points
    x, y = train_sweep.load_data(spec)
    for rid in (0, int(runs["run_id"].max())):
        r = runs.set_index("run_id").loc[rid]
        key = train_sweep.seed_keys([r["seed"]], int(r["width"]))[0]
        params = mlp.two_layer_init(key, x.shape[1], int(r["width"]), r["beta1"], r["beta2"], jnp.float32)
        f = lambda p: mlp.two_layer_apply(p, jnp.asarray(x, jnp.float32), activations.get("relu").fn, spec.alpha)
        jac = jax.jacfwd(f)(params)
        k0 = float(sum(jnp.sum(v.reshape(len(x), -1) ** 2) for v in jac.values())) / len(x)
        assert r["lr_run"] == pytest.approx(min(spec.lr, spec.lr_ntk / k0), rel=1e-4)
    assert (runs.loc[runs["gamma"] == 1.75, "lr_run"] == spec.lr).all()  # tiny init: the cap
    assert (runs.loc[(runs["gamma"] == 0.5) & (runs["width"] == 128), "lr_run"] < spec.lr).all()


def test_one_compile_per_width_equals_one_spec_per_point(two_points):
    """The sweep passes (ε, s₁, s₂) per run; a TrainSpec with those layer scales built for the
    point alone gives the same run."""
    spec, _, runs = two_points
    x, y = train_sweep.load_data(spec)
    for rid in (3, int(runs["run_id"].max()) - 1):
        r = runs.set_index("run_id").loc[rid]
        tspec = train_sweep.train_spec(spec, int(r["width"]), float(r["gamma_prime"]))
        assert tspec.layer_scales[1] == pytest.approx(r["beta2"] / r["beta1"])
        key = train_sweep.seed_keys([r["seed"]], int(r["width"]))[0]
        res = train.make_train(tspec, x, y)(key, np.float32(r["scale"]))
        assert float(res.series["rd_w"][-1]) == pytest.approx(r["rd_w"], rel=1e-4)
        assert train.STATUS_CODES[int(res.status)] == r["status"] and int(res.stop_step) == r["stop_step"]


def test_phase_figures_and_cli(two_points, tmp_path, capsys):
    _, out, runs = two_points
    assert main(["phase", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 linear" in printed and "1 condensed" in printed and "2/2 determined" in printed
    table = pd.read_parquet(out / "phase" / "phase_table.parquet")
    assert set(table["regime_w"]) == {"linear", "condensed"}
    for name in ("phase_diagram", "phase_rd_width", "phase_scores"):
        png = out / "figures" / f"{name}.png"
        assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no data: a clear error, not an empty image
    for fig in (phase_plots.phase_figure, phase_plots.score_figure):
        with pytest.raises(ConfigError, match="empty"):
            fig(table.iloc[:0])
    with pytest.raises(ConfigError, match="no run reached"):
        phase_plots.rd_width_figure(runs.assign(status="diverged"), table)
    # bad input: one line, exit 2
    assert main(["phase", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["phase", str(out), "--k", "-1"]) == 2
    assert main(["phase", str(out), "--x", "gamma"]) == 2
    # the thin analysis script does the same from Python
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("phase_diagram", Path(__file__).resolve().parents[1] / "analysis" / "phase_diagram.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    capsys.readouterr()
    assert script.main([str(out)]) == 0
    assert "linear" in capsys.readouterr().out
    assert script.main([str(tmp_path / "missing")]) == 2


def test_three_layer_layer_exponents_grid_and_per_layer_table(tmp_path):
    """layer_exponents with ε = 1: each triple is one grid point with std_l = m^(−γ_l) exactly,
    and the phase table fits W¹ and W² separately."""
    spec = TrainSweep(model="three-layer", widths=(8, 16), init_scales=(1.0,), bias=True, n=10, seeds=2,
                      layer_exponents=((1.0, 0.5, 1.5), (1.0, 1.5, 0.5)), lr=0.2, lr_ntk=1.0, loss_threshold=1e-2,
                      steps=3000, n_records=5, cosine_seeds=0, predict_escape=False)
    g = train_sweep.grid(spec)
    assert len(g) == spec.n_runs == 8
    for r in g.itertuples():
        mult = train_sweep.layer_multipliers(spec, r.width, r.gamma_prime, r.layer_offset)
        np.testing.assert_allclose(mult, [r.width ** -e for e in (r.exp_a, r.exp_w2, r.exp_w1)], rtol=1e-12)
        assert (r.exp_a, r.exp_w2, r.exp_w1) == spec.layer_exponents[int(r.layer_offset)]
    run(spec, tmp_path / "three", figures=False)
    runs = pd.read_parquet(tmp_path / "three" / "runs")
    table = phase.phase_table(runs)
    assert list(table[["exp_w1", "exp_w2"]].itertuples(index=False, name=None)) == [(0.5, 1.5), (1.5, 0.5)]
    assert {"slope_w1", "slope_w2", "regime_w1", "regime_w2"} <= set(table.columns)
    with pytest.raises(ConfigError, match="three-layer"):
        TrainSweep(model="two-layer", widths=(8, 16), layer_exponents=((1.0, 1.0, 1.0),))
    with pytest.raises(ConfigError, match="triples"):
        TrainSweep(widths=(8, 16), layer_exponents=((1.0, 1.0),))
