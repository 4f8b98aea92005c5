"""Issue #16, item 4: nothing crashes after the tables are written, and every command refuses what
it cannot do. Each test here failed before the fix it names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from condense_jax import cli, kinds
from condense_jax.engine import store
from condense_jax.four_phases import detect as phase_detect
from condense_jax.four_phases import dynamics as relu_flow
from condense_jax.ode import plots

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """One small result directory of each kind."""
    base = tmp_path_factory.mktemp("kinds")
    commands = {
        "ode": ["ode", "--widths", "4", "--seeds", "3"],
        "train": ["train", "--widths", "5", "--seeds", "2", "--steps", "40", "--n", "20", "--no-predict"],
        "four_phases": ["four-phases", "--widths", "6", "--seeds", "2", "--init-scales", "1e-2", "--n", "20",
                        "--t-max", "50", "--n-records", "15"],
    }
    for kind, args in commands.items():
        assert cli.main([args[0], "--out", str(base / kind), *args[1:], "--quiet", "--no-figure"]) == 0
    return base


PLOTS = {"tstar": "ode", "theory": "ode", "train": "train", "phases": "four_phases"}


@pytest.mark.parametrize("figure", list(PLOTS))
def test_every_plot_refuses_a_directory_of_another_kind(figure, dirs, capsys, tmp_path):
    for kind in ("ode", "train", "four_phases"):
        if kind == PLOTS[figure]:
            continue
        before = sorted(p.relative_to(dirs / kind) for p in (dirs / kind).rglob("*"))
        code, out, err = run_cli(["plot", figure, str(dirs / kind), "--output", str(tmp_path / "figs")], capsys)
        assert code == 2, (figure, kind, out, err)
        assert len(err.strip().splitlines()) == 1 and f"holds {kinds.KINDS[kind].label} sweep" in err and "Traceback" not in err
        assert sorted(p.relative_to(dirs / kind) for p in (dirs / kind).rglob("*")) == before  # nothing written
        assert not (tmp_path / "figs").exists()


def test_phase_refuses_other_kinds(dirs, capsys):
    for kind in ("ode", "four_phases"):
        code, _, err = run_cli(["phase", str(dirs / kind)], capsys)
        assert code == 2 and f"holds {kinds.KINDS[kind].label} sweep" in err and len(err.strip().splitlines()) == 1


def test_depth4_sweep_writes_its_tables_and_says_why_there_is_no_figure(tmp_path, capsys):
    """`condense ode --depth 4` died in matplotlib (`Data cannot be log-scaled`) after writing the tables."""
    out = tmp_path / "d4"
    code, text, err = run_cli(["ode", "--depth", "4", "--widths", "4", "--seeds", "3", "--out", str(out), "--quiet"], capsys)
    assert code == 0 and "Traceback" not in err
    assert "no figures: the T* figures check Theorems 1 and 2 of the three-layer ODE" in text
    assert len(pd.read_parquet(out / "runs")) == 3
    code, _, err = run_cli(["plot", "tstar", str(out)], capsys)
    assert code == 2 and "depth [4]" in err and len(err.strip().splitlines()) == 1


def test_a_figure_that_fails_is_a_warning_and_the_sweep_exit_code_stands(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Data cannot be log-scaled because all values are <= 0.")

    monkeypatch.setattr(plots, "sweep_figures", broken)
    out = tmp_path / "res"
    code, _, err = run_cli(["ode", "--widths", "4", "--seeds", "2", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    assert err.strip() == ("condense: warning: could not draw the figures (ValueError: Data cannot be log-scaled "
                           "because all values are <= 0.); the tables are complete")
    assert store.read_manifest(out)["complete"]


def test_packaged_specs_are_found_by_their_own_name(capsys):
    """sweeps/depth.toml was named `depth4`, so `condense run depth4` was "not found"."""
    import tomllib

    for path in sorted(kinds.PACKAGED_SWEEPS.glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        assert doc["name"] == path.stem, path.name
        assert Path(doc["out"]).name == path.stem, path.name
    code, out, _ = run_cli(["run", "depth", "--dry-run"], capsys)
    assert code == 0 and "sweep 'depth'" in out


def test_phase_table_is_written_without_figures(tmp_path, capsys):
    """`condense run phase_two_layer --no-figure` wrote no phase/phase_table: the table is data."""
    out = tmp_path / "grid"
    args = ["train", "--model", "two-layer", "--widths", "5", "8", "--gammas", "0.5", "1.5", "--gamma-primes", "0",
            "--seeds", "2", "--steps", "40", "--n", "20", "--out", str(out), "--quiet", "--no-figure"]
    code, text, _ = run_cli(args, capsys)
    assert code == 0, text
    table = pd.read_parquet(out / "phase" / "phase_table.parquet")
    assert len(table) == 2 and (out / "phase" / "phase_table.csv").exists()
    assert not (out / "figures").exists()


def test_an_empty_sign_group_is_nan_not_aligned_and_the_detector_says_so():
    """relu_flow reported alignment 1 for a group with no live neuron, so it counted as condensed."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 2))
    y = np.where(x[:, 0] > 0, 1.0, -1.0)
    w = rng.standard_normal((5, 2))
    a = np.abs(rng.standard_normal(5))  # every a_k > 0: the negative group is empty
    dirs = relu_flow.class_directions(x, y)
    rec, _ = relu_flow.record(relu_flow.Params(jnp.asarray(w), jnp.asarray(a)), jnp.zeros((12, 5), bool), jnp.asarray(x),
                              jnp.asarray(y), "logistic", dirs)
    assert np.isnan(float(rec.align_neg)) and np.isnan(float(rec.cond_neg))
    assert np.isfinite(float(rec.align_pos)) and np.isfinite(float(rec.cond_pos))
    t = np.geomspace(0.1, 100, 12)
    loss = np.linspace(0.7, 0.69, 12)  # never drops
    cond = np.full(12, np.nan)  # min(cond_pos, NaN)
    found = phase_detect.detect(t, loss, cond, np.zeros(12), np.full(12, 0.5))
    assert found["empty_group"] and not found["phase_I"] and np.isnan(found["t_I_II"])
    both = phase_detect.detect(t, loss, np.full(12, 0.999), np.zeros(12), np.full(12, 0.5))
    assert not both["empty_group"] and both["phase_I"]


def test_gamma_prime_is_written_one_way_everywhere():
    """γ' was written −log(β₁/β₂)/log m in three places, the opposite of the code and the README."""
    from condense_jax.gd import scales

    g, gp = scales.two_layer_coordinates(0.2, 0.05, 1.0, 100)
    np.testing.assert_allclose(gp, -np.log(0.05 / 0.2) / np.log(100))  # −log(β₂/β₁)/log m, β₂ the output std
    texts = [p.read_text() for p in [*ROOT.glob("condense_jax/**/*.py"), *ROOT.glob("sweeps/*.toml"), ROOT / "README.md"]]
    written = [m for text in texts for m in re.findall(r"γ' = −log\((β.)/(β.)\)", text)]
    assert written and set(written) == {("β₂", "β₁")}


def test_untracked_result_directories_do_not_make_the_revision_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("x = 1\n")
    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-qm", "one")
    assert not store.git_revision(pkg).endswith("-dirty")
    (tmp_path / "condense_results" / "quickstart").mkdir(parents=True)
    (tmp_path / "condense_results" / "quickstart" / "manifest.json").write_text("{}")
    assert not store.git_revision(pkg).endswith("-dirty")
    (pkg / "new.py").write_text("y = 2\n")  # untracked code in the package did run
    assert store.git_revision(pkg).endswith("-dirty")
    (pkg / "new.py").unlink()
    (pkg / "mod.py").write_text("x = 2\n")
    assert store.git_revision(pkg).endswith("-dirty")
