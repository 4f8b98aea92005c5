"""The public API (condense_jax/__init__.py): `run` launches any sweep as `condense run` does, with
its figures, from a spec object, a TOML path or a packaged name with overrides; bad overrides are
refused before anything is written; the re-exported names are the documented ones."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import run_cli

import condense_jax as cj


def test_the_public_names_are_exactly_the_documented_ones():
    assert sorted(cj.__all__) == ["ConfigError", "FourPhaseSweep", "OdeSweep", "TrainSpec", "TrainSweep", "load", "load_spec",
                                  "make_train", "run", "solve_blowup"]
    for name in cj.__all__:
        assert getattr(cj, name) is not None


@pytest.mark.slow
def test_run_with_overrides_equals_the_cli(tmp_path, capsys):
    manifest = cj.run("quickstart", out=tmp_path / "api", overrides={"widths": [4], "seeds": 8, "scale_c": [1.0]})
    assert manifest["complete"] and manifest["n_runs"] == 8 and manifest["figure_note"] is None
    assert manifest["figures"] and all(p.endswith(".png") for p in manifest["figures"])
    code, _, _ = run_cli(["ode", "--widths", "4", "--seeds", "8", "--out", str(tmp_path / "cli"), "--quiet", "--no-figure",
                          "--name", "quickstart"], capsys)
    assert code == 0
    api, cli = cj.load(tmp_path / "api"), cj.load(tmp_path / "cli")
    for table in ("runs", "series"):
        key = ["run_id"] + (["tau"] if table == "series" else [])
        pd.testing.assert_frame_equal(api[table].sort_values(key, ignore_index=True), cli[table].sort_values(key, ignore_index=True))


def test_a_figure_that_does_not_apply_is_a_note_not_an_error(tmp_path):
    manifest = cj.run(cj.OdeSweep(widths=(3,), seeds=2, depth=4), out=tmp_path / "d4")
    assert manifest["complete"] and manifest["figures"] == [] and "depth" in manifest["figure_note"]


def test_run_takes_a_spec_object_without_figures(tmp_path):
    spec = cj.TrainSweep(widths=(4,), seeds=2, steps=20, predict_escape=False)
    manifest = cj.run(spec, out=tmp_path / "t", figures=False)
    assert manifest["figures"] == [] and manifest["n_runs"] == 2
    assert len(cj.load(tmp_path / "t")["runs"]) == 2


@pytest.mark.parametrize("overrides", [{"widths": [0]}, {"no_such_field": 1}, {"seeds": "many"}])
def test_bad_overrides_are_refused_before_anything_is_written(tmp_path, overrides):
    with pytest.raises(cj.ConfigError):
        cj.run("quickstart", out=tmp_path / "x", overrides=overrides)
    assert not (tmp_path / "x").exists()


def test_run_refuses_what_is_not_a_spec(tmp_path):
    with pytest.raises(cj.ConfigError, match="not found"):
        cj.run("no_such_sweep", out=tmp_path / "x")
    with pytest.raises(cj.ConfigError, match="sweep spec"):
        cj.run(42, out=tmp_path / "x")
