"""The gradient-descent sweep driver and `condense train`: the run grid, chunking, the tables, the
mapping of run_id to (seed, scale), divergence inside a batch, interrupts, and bad input."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from condense_jax import run
from condense_jax.errors import ConfigError
from condense_jax.gd import data
from condense_jax.gd import sweep as train_sweep
from condense_jax.gd.spec import TrainSweep
from condense_jax.gd.train import make_train
from condense_jax.kinds import parse_spec

QUIET = ["--quiet", "--no-figure"]




@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3 seeds × 2 scales × 2 widths, two seeds per chunk (so a width spans two chunks)."""
    spec = TrainSweep(widths=(5, 7), seeds=3, init_scales=(0.3, 0.03), lr=0.1, steps=60, bias=True,
                      chunk_size=2, predict_escape=False, cosine_seeds=3)
    out = tmp_path_factory.mktemp("train") / "res"
    manifest = run(spec, out, figures=False)
    return spec, out, manifest


def test_tables_cover_the_grid(small):
    spec, out, manifest = small
    runs = pd.read_parquet(out / "runs").sort_values("run_id", ignore_index=True)
    series = pd.read_parquet(out / "series")
    assert manifest["complete"] and manifest["n_runs"] == 12 == len(runs)
    assert list(runs["run_id"]) == list(range(12))
    # run_id = row of widths × scales × seeds
    expected = [(m, e, s) for m in (5, 7) for e in (0.3, 0.03) for s in range(3)]
    assert list(zip(runs["width"], runs["scale"], runs["seed"])) == expected
    for col in ("escape_step", "predicted_escape_step", "status", "loss_initial", "loss_final", "rd_w1", "cos_v_w1",
                "n_dir_w1", "max_pos_sum", "full_hold_step"):
        assert col in runs.columns
    assert (series.groupby("run_id").size() == len(make_train_spec(spec, 5).recorded())).all()
    cos = pd.read_parquet(out / "cosines")
    assert set(cos["layer"]) == {"w1", "w2"} and set(cos["step"]) == {0, 60}
    m = cos["width"].to_numpy()
    assert all(np.stack(v).shape == (k, k) for v, k in zip(cos["cos"], m))  # a list of rows: the matrix


def make_train_spec(spec, width):
    return train_sweep.train_spec(spec, width, np.nan)


def test_each_row_is_the_run_it_names(small):
    """A run done alone, from the key the driver derives from (seed, width), gives the row's numbers."""
    spec, out, _ = small
    runs = pd.read_parquet(out / "runs").set_index("run_id")
    series = pd.read_parquet(out / "series")
    x, y = train_sweep.load_data(spec)
    for run_id in (4, 9):
        row = runs.loc[run_id]
        tspec = make_train_spec(spec, int(row.width))
        key = train_sweep.seed_keys([int(row.seed)], int(row.width))[0]
        one = jax.jit(make_train(tspec, x, y))(key, np.float32(row.scale))
        got = series[series.run_id == run_id].sort_values("step")
        np.testing.assert_allclose(got["loss"].to_numpy(), np.asarray(one.loss), rtol=2e-5)
        np.testing.assert_allclose(got["rd_w2"].to_numpy(), np.asarray(one.series["rd_w2"]), rtol=2e-4, atol=1e-7)
        assert row.status == "finished" and int(row.stop_step) == 60


def test_chunking_does_not_change_numbers(small, tmp_path):
    spec, out, _ = small
    whole = TrainSweep(widths=(5, 7), seeds=3, init_scales=(0.3, 0.03), lr=0.1, steps=60, bias=True,
                       chunk_size=4, predict_escape=False, cosine_seeds=3)
    run(whole, tmp_path / "w", figures=False)
    a = pd.read_parquet(out / "series").sort_values(["run_id", "step"], ignore_index=True)
    b = pd.read_parquet(tmp_path / "w" / "series").sort_values(["run_id", "step"], ignore_index=True)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-6)


def test_scale_exponents_and_two_layer_coordinates():
    g = train_sweep.grid(TrainSweep(widths=(10, 100), scale_exponents=(1.0, 2.0), seeds=1))
    np.testing.assert_allclose(g["scale"], [0.1, 0.01, 0.01, 1e-4])  # ε = m^(−γ)
    spec = TrainSweep(model="two-layer", widths=(16, 64), gammas=(0.5, 1.5), gamma_primes=(0.0, 0.5), alpha=2.0, seeds=1)
    g = train_sweep.grid(spec)
    gamma, gprime = train_sweep._two_layer_coordinates(g["beta1"], g["beta2"], 2.0, g["width"])
    np.testing.assert_allclose(gamma, g["gamma"], rtol=1e-12)
    np.testing.assert_allclose(gprime, g["gamma_prime"], atol=1e-12)
    assert len(g) == spec.n_runs == 8


def test_diverging_run_is_recorded_and_its_batch_mates_finish(tmp_path, capsys):
    code, out, err = run_cli(["train", "--out", str(tmp_path / "d"), "--widths", "6", "--seeds", "2",
                              "--init-scales", "2.0", "1e-3", "--lr", "3.0", "--steps", "50", "--no-predict", *QUIET], capsys)
    assert code == 0, err
    runs = pd.read_parquet(tmp_path / "d" / "runs")
    big, small_ = runs[runs.scale == 2.0], runs[runs.scale == 1e-3]
    assert (big["status"] == "diverged").all() and (big["stop_step"] < 50).all()
    assert (small_["status"] == "finished").all() and np.isfinite(small_["loss_final"]).all()
    assert "diverged: 2" in out and "finished: 2" in out


def test_interrupt_keeps_finished_chunks(tmp_path, monkeypatch):
    spec = TrainSweep(widths=(5,), seeds=4, init_scales=(0.1,), steps=20, chunk_size=2, predict_escape=False)
    real = train_sweep._tables
    calls = []

    def second_chunk_interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_sweep, "_tables", second_chunk_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "i", figures=False)
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert manifest["complete"] is False
    runs = pd.read_parquet(tmp_path / "i" / "runs")
    assert sorted(runs["seed"]) == [0, 1]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--init-scales", "0"], "init_scales entry must be positive"),
        (["--init-scales=-1e-3"], "init_scales entry must be positive"),
        (["--lr", "0"], "lr must be positive"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--model", "mlp"], "invalid choice"),
        (["--activation", "swish"], "unknown activation 'swish'"),
        (["--widths", "0"], "widths entry must be at least 1"),
        (["--data", "/nonexistent/file.npz"], "not a readable .npz"),
        (["--escape-fraction", "1.5"], "escape_fraction must lie in"),
        (["--gammas", "1"], "gammas and gamma_primes go together"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words, tmp_path, capsys):
    out = tmp_path / "never"
    code, _, err = run_cli(["train", "--out", str(out), *args, *QUIET], capsys)
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"x": np.ones((5, 2)), "y": np.ones(4)}, "x has 5 samples but y has 4"),
        ({"x": np.ones((0, 2)), "y": np.ones(0)}, "n = 0"),
        ({"x": np.array([[1.0, np.nan]] * 3), "y": np.ones(3)}, "non-finite"),
        ({"x": np.ones((3, 2, 2)), "y": np.ones(3)}, "must be x (n, d)"),
        ({"x": np.ones((3, 2))}, "lacks array(s) ['y']"),
    ],
)
def test_bad_data_files(arrays, words, tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    code, _, err = run_cli(["train", "--out", str(tmp_path / "o"), "--data", str(path), *QUIET], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_spec_variants():
    text = """
kind = "train"
name = "demo"
[train]
widths = [200]
steps = 400000
[variants.quick]
widths = [20]
steps = 300
"""
    full, _ = parse_spec(text, "demo.toml")
    quick, _ = parse_spec(text, "demo.toml", "quick")
    assert full.widths == (200,) and quick.widths == (20,) and quick.steps == 300 and quick.name == "demo_quick"
    with pytest.raises(ConfigError, match="no variant 'slow'"):
        parse_spec(text, "demo.toml", "slow")


def test_data_generators_are_what_they_claim():
    x, y = data.tanh_regression(50, seed=3)
    assert x.shape == (50, 1) and np.all(np.abs(x) <= np.pi) and np.allclose(y, np.tanh(x[:, 0]))


@pytest.mark.slow
def test_the_issue_command_as_written(tmp_path, capsys):
    """`condense train --model three-layer --widths 20 --init-scales 1e-3 3e-4 --lr 0.05 --steps 30000
    --seeds 4 --out DIR`: every run escapes its plateau close to the effective ODE's prediction."""
    out = tmp_path / "gd"
    code, stdout, err = run_cli(["train", "--model", "three-layer", "--widths", "20", "--init-scales", "1e-3", "3e-4",
                                 "--lr", "0.05", "--steps", "30000", "--seeds", "4", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 8 and (runs["status"] == "finished").all()
    for col in ("model", "width", "seed", "scale", "lr", "steps", "status", "escape_step", "predicted_escape_step"):
        assert col in runs.columns
    rel = (runs["escape_step"].astype(float) - runs["predicted_escape_step"]) / runs["predicted_escape_step"]
    # the gap is ln(1/ε) + O(1/(κ lr)) steps (tests/test_escape.py) out of thousands
    assert (rel.abs() < 0.02).all(), rel
    assert (out / "figures").is_dir() and any((out / "figures").glob("*.png"))


def test_predicted_steps_follow_lr_drops():
    # t = Σ lr_k: 0.1 per step for 100 steps (t = 10), then 0.01 per step
    np.testing.assert_allclose(train_sweep.steps_for_time([5.0, 10.0, 12.0], 0.1, [(100, 0.01)]), [50, 100, 300])
    assert np.isnan(train_sweep.steps_for_time([np.nan], 0.1, ()))[0]
    np.testing.assert_allclose(train_sweep.steps_for_time([1.0, 3.0], 0.5, [(2, 0.25), (4, 1.0)]), [2, 5.5])  # 1 + 0.5 + 1.5
