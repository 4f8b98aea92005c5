"""Bad input refused in one line, before anything is written (issue #17): each case below ended
in a traceback, a crash after the manifest was written, a hang or runaway memory before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from condense_jax import cli
from condense_jax.engine import store

CASES = {
    "kernel larger than the image": (["train", "--model", "cnn", "--widths", "2", "--kernel-size", "9", "--n", "20"],
                                     "do not fit 8×8 images"),
    "five conv layers on 8x8 digits": (["train", "--model", "cnn", "--widths", "2", "--conv-layers", "5", "--n", "20"],
                                       "do not fit 8×8 images"),
    "series_dtau 1e-9 (149 GiB)": (["ode", "--widths", "4", "--seeds", "2", "--series-dtau", "1e-9"], "at most 100,000"),
    "steps beyond int32": (["train", "--widths", "4", "--steps", "1000000000000"], "at most 2,000,000,000"),
    "width 100000 (74.5 GiB)": (["ode", "--widths", "100000", "--seeds", "2"], "GiB, more than the"),
    "width 100000 train": (["train", "--widths", "100000", "--seeds", "2", "--steps", "10"], "GiB, more than the"),
    "t_max 1e308 (hung)": (["four-phases", "--t-max", "1e308", "--seeds", "2"], "GD steps"),
    "ten million seeds": (["ode", "--widths", "4", "--seeds", "10000000"], "at most 1,000,000 per sweep"),
    "rtol 1e-300": (["ode", "--widths", "4", "--seeds", "2", "--rtol", "1e-300"], "rtol must be in"),
    "empty --out": (["ode", "--widths", "4", "--seeds", "2", "--out", ""], "--out must name a directory"),
    "max-memory below the estimate": (["ode", "--widths", "200", "--seeds", "64", "--max-memory", "0.01"], "--max-memory"),
    "max-memory not a number": (["ode", "--widths", "4", "--max-memory", "lots"], "--max-memory takes"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dry_run", [False, True])
def test_refused_in_one_line_before_anything_is_written(case, dry_run, tmp_path, capsys):
    args, words = CASES[case]
    out = tmp_path / "out"
    argv = [*args] if "--out" in args else [*args, "--out", str(out)]
    t0 = time.monotonic()
    try:
        code = cli.main([*argv, "--quiet", "--no-figure", *(["--dry-run"] if dry_run else [])])
    except SystemExit as e:  # argparse's refusal
        code = e.code
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "Traceback" not in err, err
    assert len([line for line in err.strip().splitlines() if "error" in line]) == 1, err
    assert not out.exists() and not list(Path(".").glob(".manifest.json.tmp-*"))
    assert took < 30, f"{case}: {took:.0f} s to refuse"


@pytest.mark.parametrize("text, words", [
    ("", "no `kind`"),
    ("kind = \"ode\"\na = " + "[" * 3000 + "]" * 3000 + "\n", "nests arrays"),
    ("kind = \"ode\"\nout = \"\"\n[ode]\nwidths = [4]\n", "out must be a non-empty path"),
])
def test_spec_files_that_are_refused(text, words, tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_two_hundred_thousand_seeds_are_checked_at_once(tmp_path, capsys):
    """The duplicate check was quadratic: a spec with 200k seeds took minutes before the run."""
    from condense_jax.ode.spec import OdeSweep

    t0 = time.monotonic()
    spec = OdeSweep(widths=(4,), seeds=list(range(200_000)))
    assert len(spec.seeds) == 200_000 and time.monotonic() - t0 < 5
    with pytest.raises(store.ConfigError, match="duplicate values \\[7\\]"):
        OdeSweep(widths=(4,), seeds=[*range(100_000), 7])


def test_a_write_error_names_the_users_path_not_the_temporary_file(tmp_path):
    target = tmp_path / "missing_folder" / "manifest.json"
    with pytest.raises(OSError) as e:
        store._atomic_write_bytes(target, b"{}")
    assert e.value.filename == str(target) and ".tmp-" not in str(e.value)
