"""Fast-forwarded sweeps against full GD (issue #20): the same escape steps (≤ 0.5 %), final losses
(≤ 1 %), condensed directions (|cos| ≥ 0.999) and Assumption 2 hold steps (within a record), for
the three-layer network, the two-layer network and the two-layer CNN; the records up to the
handover are marked. The maps themselves are tested in test_fast_forward.py."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import condense_jax
from condense_jax import TrainSweep
from condense_jax.gd import data
from condense_jax.gd.train import TrainSpec, make_train

pytestmark = pytest.mark.slow

SWEEP = dict(widths=(10,), seeds=(0, 1), init_scales=(1e-2, 1e-3), lr=0.05, bias=True, n=40, steps=7000,
             n_records=60, cosine_seeds=0)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("ff")
    full = condense_jax.run(TrainSweep(**SWEEP), base / "full", figures=False)
    fast = condense_jax.run(TrainSweep(**SWEEP, fast_forward=True), base / "fast", figures=False)
    return condense_jax.load(base / "full", join=True), condense_jax.load(base / "fast", join=True), full, fast


def test_a_fast_forwarded_sweep_agrees_with_full_gd(pair):
    full, fast, *_ = pair
    a, b = full["runs"], fast["runs"]
    assert (b["fast_forward_step"] > 0).all()  # every run skipped part of its plateau
    assert (b["fast_forward_step"] < b["escape_step"]).all()
    rel = (b["escape_step"] - a["escape_step"]).abs() / a["escape_step"]
    assert rel.max() <= 0.005, rel
    assert ((b["loss_final"] - a["loss_final"]).abs() / a["loss_final"]).max() <= 0.01
    recorded = np.unique(a["full_hold_step"].dropna())
    assert a["full_hold_step"].notna().equals(b["full_hold_step"].notna())
    for x, y in zip(a["full_hold_step"].dropna(), b["full_hold_step"].dropna()):
        steps = np.unique(full["series"]["step"])
        assert abs(np.searchsorted(steps, x) - np.searchsorted(steps, y)) <= 1, (x, y, recorded)
    # records up to the handover are marked, and only those
    s = fast["series"]
    np.testing.assert_array_equal(s["effective"], (s["step"] <= s["fast_forward_step"]) & (s["fast_forward_step"] > 0))


def test_the_condensed_directions_are_those_of_full_gd():
    """The final rows of W¹ pair up with full GD's at |cos| ≥ 0.999 (same init, the same rows)."""
    x, y = data.tanh_regression(40, seed=0)
    x = data.with_bias(x)
    spec = TrainSpec(width=10, lr=0.05, steps=9000, dtype="float32")
    key = jax.random.PRNGKey(0)
    res_full = jax.jit(make_train(spec, x, y))(key, 1e-3)
    res_fast = jax.jit(make_train(TrainSpec(width=10, lr=0.05, steps=9000, dtype="float32", fast_forward_norm=0.1), x, y))(key, 1e-3)
    assert 0 < int(res_fast.fast_forward_step) < int(res_full.escape_step)
    w_a, w_b = np.asarray(res_full.params["w1"]), np.asarray(res_fast.params["w1"])
    cos = np.sum(w_a * w_b, 1) / np.linalg.norm(w_a, axis=1) / np.linalg.norm(w_b, axis=1)
    assert np.abs(cos).min() >= 0.999, cos


def test_two_layer_and_cnn_fast_forward_agree_with_full_gd(tmp_path):
    for kw in (dict(model="two-layer", widths=(20,), init_scales=(1e-3, 1e-5), lr=0.1, steps=3000, bias=True),
               dict(model="cnn", data="digits", n=100, widths=(8,), init_scales=(1e-4, 1e-6), lr=0.002, steps=600)):
        spec = TrainSweep(**kw, seeds=(0, 1), predict_escape=False, cosine_seeds=0)
        condense_jax.run(spec, tmp_path / f"{kw['model']}-full", figures=False)
        condense_jax.run(TrainSweep(**kw, seeds=(0, 1), predict_escape=False, cosine_seeds=0, fast_forward=True),
                         tmp_path / f"{kw['model']}-fast", figures=False)
        a = condense_jax.load(tmp_path / f"{kw['model']}-full")["runs"]
        b = condense_jax.load(tmp_path / f"{kw['model']}-fast")["runs"]
        assert (b["fast_forward_step"] > 0).all() and (b["fast_forward_step"] < b["escape_step"]).all(), kw["model"]
        assert ((b["escape_step"] - a["escape_step"]).abs() <= np.maximum(1, 0.005 * a["escape_step"])).all(), kw["model"]
        assert ((b["loss_final"] - a["loss_final"]).abs() / a["loss_final"]).max() <= 0.01, kw["model"]


@pytest.mark.parametrize("other", [["--fast-forward", "--fast-forward-norm", "0.2"], [], None],
                         ids=["another-norm", "without-fast-forward", "same"])
def test_a_fast_forwarded_directory_refuses_other_fast_forward_settings(other, tmp_path, capsys):
    """--resume, or a rerun, into a fast-forwarded sweep's directory with another handover norm or
    without fast-forward is another sweep: refused in one line with exit 2, nothing written. The
    same settings resume (nothing to compute)."""
    from condense_jax import cli

    args = ["train", "--out", str(tmp_path / "ff"), "--widths", "4", "--seeds", "2", "--init-scales", "1e-2",
            "--steps", "300", "--lr", "0.1", "--no-predict", "--quiet", "--no-figure"]
    assert cli.main([*args, "--fast-forward"]) == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ff").rglob("*")}
    capsys.readouterr()
    if other is None:
        assert cli.main([*args, "--fast-forward", "--resume"]) == 0
        import json

        assert json.loads((tmp_path / "ff" / "manifest.json").read_text())["chunks_computed"] == 0
        return
    for resume in ([], ["--resume"]):
        assert cli.main([*args, *other, *resume]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "different configuration" in err[0], err
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ff").rglob("*")} == before


@pytest.mark.parametrize("model", [[], ["--model", "two-layer", "--widths", "20", "--init-scales", "1e-3", "1e-5"]],
                         ids=["three-layer", "two-layer"])
def test_a_float32_sweep_gives_the_same_bits_whether_or_not_64_bit_mode_is_on(model, tmp_path):
    """A fast-forwarded float32 sweep run in a fresh `condense` process (64-bit mode off) equals the
    same sweep run here (the test session has it on, as a process that ran an ODE sweep has): the
    effective phase computes in the run's dtype, not in the process's widest float, and its constants
    are weakly typed Python floats (a NumPy float64 made η·λ float64 in 64-bit mode)."""
    import jax
    from helpers import condense, tables

    from condense_jax import cli

    assert jax.config.jax_enable_x64
    args = ["train", "--widths", "5", "--seeds", "2", "--init-scales", "1e-1", "1e-2", "--steps", "600", "--lr", "0.1",
            "--fast-forward", "--no-predict", "--quiet", "--no-figure", *model]  # later flags win
    assert cli.main([args[0], "--out", str(tmp_path / "here"), *args[1:]]) == 0
    proc = condense([args[0], "--out", str(tmp_path / "fresh"), *args[1:]])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    here, fresh = tables(tmp_path / "here"), tables(tmp_path / "fresh")
    assert (here["runs"]["fast_forward_step"] > 0).any()
    for t in here:
        pd.testing.assert_frame_equal(here[t], fresh[t], check_exact=True)
