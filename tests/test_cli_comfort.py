"""The researcher's daily comfort (issue #19, command line): --version, `condense` alone, `list`,
`show`, Hydra-style overrides validated like the file, default result directories, the cache."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

from condense_jax import kinds, load


def test_version_and_bare_command(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and re.fullmatch(r"condense_jax \S+\n", out)
    code, out, err = run_cli([], capsys)
    assert code == 0 and out.startswith("usage: condense") and "run" in out and err == ""


def test_list_shows_every_packaged_spec_and_variant_with_its_runs_and_measured_time(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    table = (ROOT / "benchmarks" / "results_sweep_times.txt").read_text()
    measured = {k: f"{c} s / {w} s" for k, c, w in re.findall(r"^\| `condense run ([^`]+)` \| (\d+) s \| (\d+) s \|$", table, re.M)}
    for path in sorted(kinds.PACKAGED_SWEEPS.glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        for variant in [None, *doc.get("variants", {})]:
            label = path.stem + (f" --variant {variant}" if variant else "")
            line = next((ln for ln in out.splitlines() if re.match(re.escape(label) + r"\s{2,}", ln)), None)
            assert line is not None, label
            n_runs = kinds.load_spec(path, variant)[0].n_runs
            assert f" {n_runs} runs" in line, (label, line)
            if label in measured:
                assert measured[label] in line, (label, line)
    assert len(measured) >= 10


def test_show_prints_what_run_records(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["quickstart", "ode.widths=[4,6]", "ode.seeds=2", "ode.scale_c=0.5"]
    code, shown, _ = run_cli(["show", *args], capsys)
    assert code == 0 and "8 runs" not in shown and "4 runs" in shown
    config = tomllib.loads(shown)
    hash_line = re.search(r"# config hash (\w+)", shown).group(1)
    code, out, _ = run_cli(["run", *args, "--out", "r", "--quiet", "--no-figure"], capsys)
    assert code == 0
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    recorded = {k: v for k, v in manifest["config"].items() if v is not None and k != "kind"}
    assert recorded == config["ode"] and manifest["config_hash"] == hash_line
    assert manifest["config"]["widths"] == [4, 6] and manifest["config"]["scale_c"] == [0.5]
    assert len(load(tmp_path / "r")["runs"]) == 4


@pytest.mark.parametrize("override, needle", [
    ("ode.no_such=1", "unknown key 'no_such'"), ("train.steps=10", "table is [ode], not [train]"),
    ("ode.widths=[\"a\"]", "widths must be a list of integers"), ("ode.widths=[0]", "widths entry must be at least 1"),
    ("ode.seeds", "is not KEY=VALUE"), ("ode.rtol=[1,", "is not a TOML value"), ("ode.seeds=-3", "seeds must be at least 1"),
])
def test_a_bad_override_is_one_line_exit_2_and_nothing_written(override, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["run", "quickstart", override, "--out", "x", "--quiet"], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "condense_results").exists()


def test_sweep_commands_default_to_a_directory_of_their_configuration(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flags = ["ode", "--widths", "3", "--seeds", "2", "--quiet", "--no-figure"]
    code, out, _ = run_cli(flags, capsys)
    assert code == 0
    made = [p for p in (tmp_path / "condense_results").iterdir()]
    assert len(made) == 1 and re.fullmatch(r"ode-[0-9a-f]{8}", made[0].name) and f"-> {Path('condense_results') / made[0].name}" in out
    code, _, _ = run_cli(flags, capsys)  # the same command: the same directory, accepted
    assert code == 0 and len(list((tmp_path / "condense_results").iterdir())) == 1
    code, _, _ = run_cli(["ode", "--widths", "4", "--seeds", "2", "--quiet", "--no-figure"], capsys)  # another configuration
    assert code == 0 and len(list((tmp_path / "condense_results").iterdir())) == 2


def test_cache_command_reports_and_clears(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    xla = tmp_path / "condense_jax" / "xla"
    xla.mkdir(parents=True)
    (xla / "entry").write_bytes(b"x" * 2048)
    code, out, _ = run_cli(["cache"], capsys)
    assert code == 0 and str(xla) in out and "1 files" in out
    code, out, _ = run_cli(["cache", "--clear"], capsys)
    assert code == 0 and "cleared" in out and not xla.exists()


def test_the_manifest_records_the_command_times_and_every_version(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    args = ["ode", "--widths", "3", "--seeds", "4", "--chunk-size", "2", "--out", str(out), "--quiet", "--no-figure"]
    monkeypatch.setattr("sys.argv", ["/some/bin/condense", *args])  # as the console script sees it
    code, _, _ = run_cli(args, capsys)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == ["condense", *args]
    assert len(manifest["chunk_seconds"]) == 2 and all(s > 0 for s in manifest["chunk_seconds"])
    assert manifest["wall_seconds"] >= manifest["compute_seconds"] == pytest.approx(sum(manifest["chunk_seconds"]), abs=2e-3)
    for pkg in ("jax", "diffrax", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "scikit-learn"):
        assert manifest["versions"][pkg], pkg


def test_executor_without_submitit_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)  # as if the [slurm] extra were not installed
    code, _, err = run_cli(["run", "quickstart", "ode.widths=[3]", "ode.seeds=2", "--executor", "local", "--out",
                            str(tmp_path / "s"), "--quiet"], capsys)
    assert code == 2 and "pip install 'condense_jax[slurm]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_load_joined_series_carry_their_runs_columns(tmp_path, capsys):
    out = tmp_path / "j"
    code, _, _ = run_cli(["ode", "--widths", "3", "5", "--seeds", "2", "--scale-c", "1", "0.5", "--out", str(out), "--quiet",
                          "--no-figure"], capsys)
    assert code == 0
    plain, joined = load(out), load(out, join=True)
    series, runs = joined["series"], plain["runs"].set_index("run_id")
    assert len(series) == len(plain["series"]) and list(series.columns[: len(plain["series"].columns)]) == list(plain["series"].columns)
    for col in ("width", "seed", "scale_c", "t_star", "status"):
        assert (series[col].to_numpy() == runs.loc[series["run_id"], col].to_numpy()).all(), col
    means = series.groupby(["width", "scale_c"])["energy"].size()  # plotted by parameter, no join of one's own
    assert len(means) == 4


MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_every_plot_command_writes_the_asked_format_into_out(fmt, tmp_path, capsys):
    from condense_jax.engine import figures

    assert cli_formats() == figures.FORMATS
    sweeps = {"ode": ["ode", "--widths", "4", "6", "--seeds", "6"],
              "train": ["train", "--widths", "5", "--seeds", "2", "--steps", "30", "--no-predict"],
              "phases": ["four-phases", "--widths", "5", "--seeds", "2", "--init-scales", "1e-2", "1e-4", "--n", "16",
                         "--t-max", "40", "--n-records", "10"]}
    dirs = {}
    for name, args in sweeps.items():
        dirs[name] = tmp_path / name
        assert run_cli([*args, "--out", str(dirs[name]), "--quiet", "--no-figure"], capsys)[0] == 0
    for figure, result in (("tstar", "ode"), ("theory", "ode"), ("train", "train"), ("phases", "phases")):
        target = tmp_path / f"{figure}_figs"
        out_arg = str(target / f"t.{fmt}") if figure == "tstar" else str(target)
        code, out, err = run_cli(["plot", figure, str(dirs[result]), "--format", fmt, "--out", out_arg], capsys)
        assert code == 0, err
        written = sorted(target.iterdir())
        assert written and all(p.suffix == f".{fmt}" and p.read_bytes()[:5].startswith(MAGIC[fmt]) for p in written), written
        assert all(f"figure: {p}" in out for p in written)


def cli_formats():
    from condense_jax import cli

    return cli.FIGURE_FORMATS


def test_overrides_may_follow_the_options(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, shown, err = run_cli(["show", "four_phases", "--variant", "quick", "four_phases.seeds=3", "four_phases.widths=[7]"], capsys)
    assert code == 0, err
    config = tomllib.loads(shown)["four_phases"]
    assert config["seeds"] == [0, 1, 2] and config["widths"] == [7] and config["name"] == "four_phases_quick"
    code, _, err = run_cli(["show", "quickstart", "--variant", "x", "--bogus"], capsys)
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, _, err = run_cli(["ode", "--seeds", "3", "ode.seeds=2"], capsys)  # overrides are for run / show only
    assert code == 2 and "unrecognized arguments: ode.seeds=2" in err
