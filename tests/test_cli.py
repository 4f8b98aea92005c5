"""The `condense` CLI end to end: tables, metadata, figures, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from condense_jax import cli
from condense_jax.engine import store
from condense_jax.errors import ConfigError
from condense_jax.kinds import parse_spec
from condense_jax.ode import blowup
from condense_jax.ode.spec import OdeSweep

SMALL = ["--widths", "4", "--seeds", "3", "--quiet", "--no-figure"]




def snapshot(path: Path) -> dict:
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()} if path.exists() else {}


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "res"
    code = cli.main(["ode", "--out", str(out), "--widths", "4", "6", "--seeds", "3", "--scale-c", "1", "0.5", "--quiet"])
    assert code == 0
    return out


def test_sweep_writes_runs_series_manifest_and_figure(small_sweep):
    runs = pd.read_parquet(small_sweep / "runs")
    series = pd.read_parquet(small_sweep / "series")
    assert len(runs) == 2 * 3 * 2
    assert sorted(runs["run_id"]) == list(range(12))
    for col in ["run_id", "init_index", "seed", "width", "depth", "scale_a", "scale_b", "scale_c", "E0", "t_star",
                "t_star_thm1_bound", "t_final_stage", "status"]:
        assert col in runs.columns
    assert set(runs["status"]) == {"blowup"}
    pos = runs["E0"] > 0
    assert (runs.loc[pos, "t_star"] <= runs.loc[pos, "t_star_thm1_bound"]).all()  # Theorem 1
    assert set(series["run_id"]) == set(runs["run_id"])
    manifest = json.loads((small_sweep / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n_runs"] == 12
    assert manifest["config"]["widths"] == [4, 6]
    assert "jax" in manifest["versions"]
    meta = store.read_metadata(next((small_sweep / "runs").glob("*.parquet")))
    assert meta["config_hash"] == manifest["config_hash"]
    png = small_sweep / "figures" / "tstar_bounds.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_same_seed_same_directions_across_scales(small_sweep):
    """A seed's start is the same direction at every scale: E0 scales as σ_a σ_b σ_c."""
    runs = pd.read_parquet(small_sweep / "runs")
    one = runs.set_index(["width", "seed", "scale_c"])["E0"]
    for w in (4, 6):
        for s in range(3):
            assert one[(w, s, 0.5)] == pytest.approx(0.5 * one[(w, s, 1.0)], rel=1e-12)


def test_rerun_same_config_is_accepted_and_different_config_refused(small_sweep, capsys):
    before = snapshot(small_sweep)
    code, _, err = run_cli(["ode", "--out", str(small_sweep), "--widths", "4", "--seeds", "3", "--quiet"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "different configuration" in err
    assert snapshot(small_sweep) == before  # nothing touched
    runs = pd.read_parquet(small_sweep / "runs").sort_values("run_id", ignore_index=True)
    code, out, err = run_cli(["ode", "--out", str(small_sweep), "--widths", "4", "6", "--seeds", "3", "--scale-c", "1", "0.5",
                              "--quiet"], capsys)
    assert code == 0 and err == "" and "wrote 12 runs" in out  # the same configuration: run again, accepted
    again = pd.read_parquet(small_sweep / "runs").sort_values("run_id", ignore_index=True)
    pd.testing.assert_frame_equal(runs, again)  # and the same numbers


def test_init_file_one_row_per_start_in_file_order(tmp_path, capsys):
    rng = np.random.default_rng(3)
    m = 5
    u = rng.standard_normal(m)
    u /= np.linalg.norm(u)
    w = rng.standard_normal(m)
    w /= np.linalg.norm(w)
    a = rng.standard_normal((3, m))
    b = rng.standard_normal((3, m, m))
    c = rng.standard_normal((3, m))
    a[1], b[1], c[1] = blowup.balanced_rank_one(2.0, u, w)  # T* = 1/2 exactly
    np.savez(tmp_path / "init.npz", a=a, b=b, c=c)
    out = tmp_path / "res"
    code, _, _ = run_cli(["ode", "--init", str(tmp_path / "init.npz"), "--out", str(out), "--quiet", "--no-figure"], capsys)
    assert code == 0
    runs = store.read_runs(out)
    assert list(runs["init_index"]) == [0, 1, 2]
    assert runs["t_star"][1] == pytest.approx(0.5, rel=1e-8)
    direct = blowup.solve_three_layer(a, b, c).runs
    np.testing.assert_allclose(runs["t_star"], direct["t_star"], rtol=1e-12)
    np.testing.assert_allclose(runs["E0"], np.einsum("bi,bij,bj->b", a, b, c), rtol=1e-12)
    # a single unbatched start is accepted too
    np.savez(tmp_path / "one.npz", a=a[1], b=b[1], c=c[1])
    out1 = tmp_path / "res1"
    assert cli.main(["ode", "--init", str(tmp_path / "one.npz"), "--out", str(out1), "--quiet", "--no-figure"]) == 0
    assert store.read_runs(out1)["t_star"][0] == pytest.approx(0.5, rel=1e-8)


def test_run_spec_file(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text('kind = "ode"\nname = "tiny"\n[ode]\nwidths = [3]\nseeds = [5, 7]\n')
    out = tmp_path / "res"
    code, stdout, _ = run_cli(["run", str(spec), "--out", str(out), "--quiet", "--no-figure"], capsys)
    assert code == 0 and "wrote 2 runs" in stdout
    assert sorted(store.read_runs(out)["seed"]) == [5, 7]


BAD = [
    (["--scale-a", "0"], "scale_a"),
    (["--scale-c", "nan"], "scale_c"),
    (["--scale-b", "-1"], "scale_b"),
    (["--rtol", "-1e-8"], "rtol"),
    (["--rtol", "inf"], "rtol"),
    (["--atol", "0"], "atol"),
    (["--seed-list"], "seeds"),
    (["--seed-list", "1", "1"], "duplicate"),
    (["--widths", "0"], "widths"),
    (["--widths", "4", "4"], "duplicate"),
    (["--depth", "1"], "depth"),
    (["--seeds", "0"], "seeds"),
    (["--chunk-size", "0"], "chunk_size"),
    (["--scale-a", "abc"], "abc"),
]


@pytest.mark.parametrize("extra,needle", BAD)
def test_bad_flags_one_line_exit_2_nothing_written(tmp_path, capsys, extra, needle):
    out = tmp_path / "res"
    args = ["ode", "--out", str(out), "--widths", "4", "--seeds", "2", "--quiet", "--no-figure"]
    try:
        code, _, err = run_cli(args + extra, capsys)
    except SystemExit as e:  # argparse type errors exit through SystemExit
        code, err = e.code, capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and needle in err
    assert not out.exists()


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays,needle",
    [
        (dict(a=np.ones((2, 3)), b=np.ones((2, 3, 4)), c=np.ones((2, 3))), "shapes disagree"),
        (dict(a=np.ones((2, 3)), b=np.ones((2, 3, 3))), "lacks"),
        (dict(a=np.ones((2, 3)), b=np.full((2, 3, 3), np.nan), c=np.ones((2, 3))), "non-finite"),
        (dict(a=np.ones((2, 3, 1)), b=np.ones((2, 3, 3)), c=np.ones((2, 3))), "must be a (B, m)"),
        (dict(a=np.zeros((1, 3)), b=np.zeros((1, 3, 3)), c=np.zeros((1, 3))), "all zeros"),
    ],
)
def test_bad_init_files(tmp_path, capsys, arrays, needle):
    f = _npz(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "res"
    code, _, err = run_cli(["ode", "--init", str(f), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and needle in err
    assert not out.exists()


def test_not_an_npz(tmp_path, capsys):
    f = tmp_path / "junk.npz"
    f.write_bytes(b"not a zip file at all")
    code, _, err = run_cli(["ode", "--init", str(f), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 2 and "not a readable .npz" in err


def test_out_dir_that_is_not_a_sweep(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    code, _, err = run_cli(["ode", "--out", str(tmp_path)] + SMALL, capsys)
    assert code == 2 and "not a condense_jax result" in err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[ode]\nwidths = [3]\nsedes = 4\n', "unknown key"),
        ('kind = "cnn"\n', "unknown kind 'cnn'"),
        ('[ode]\nwidths = "wide"\n', "widths"),
        ('[ode\n', "not valid TOML"),
        ('[ode]\nscale_a = [0.0]\n', "scale_a"),
    ],
)
def test_bad_specs(text, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_spec(text, "spec.toml")


def test_config_hash_ignores_name_and_chunking():
    a = OdeSweep(widths=(3,), seeds=2, name="x", chunk_size=4)
    b = OdeSweep(widths=(3,), seeds=2, name="y", chunk_size=64)
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != OdeSweep(widths=(3,), seeds=3).config_hash()


@pytest.mark.slow
def test_subprocess_bad_input_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "condense_jax.cli", "ode", "--out", str(tmp_path / "o"), "--scale-a", "-2"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and "-2" in proc.stderr


def test_help_mentions_every_command():
    text = cli.build_parser().format_help()
    for cmd in ("run", "ode", "plot"):
        assert cmd in text


def test_out_path_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["ode", "--out", str(blocker / "sub")] + SMALL, capsys)
    assert code == 2 and err.count("\n") == 1 and "Not a directory" in err
