"""Behaviour unchanged by the restructure of issue #18: a quick sweep of every kind gives the same
tables, column by column and bit for bit (in the wider column types of #19, by exact casts), from
the last revision before it (46af76a) and from this tree, and an ODE sweep that revision wrote is completed by this tree's --resume
(benchmarks/compare_revisions.py runs the full set of commands)."""

from __future__ import annotations

import shutil
import subprocess

import compare_revisions as cr  # benchmarks/ (on the path by conftest.py)
import pandas as pd
import pytest
from helpers import ROOT

BEFORE = "46af76a"
pytestmark = pytest.mark.slow


def test_the_comparison_sees_a_changed_value_column_and_dtype(tmp_path):
    """A control: the comparison must fail where the tables differ (else its 'same' means nothing)."""
    out = tmp_path / "a"
    cr.condense(ROOT, ["ode", "--widths", "3", "--seeds", "2"], out)
    assert cr.differences(out, out) == []
    for change, expect in ((lambda f: f.assign(t_star=f["t_star"] * (1 + 1e-15)), "runs.t_star: values differ"),
                           (lambda f: f.drop(columns=["E0"]), "runs: columns differ"),
                           (lambda f: f.assign(width=f["width"].astype("int32")), "runs.width: dtype")):
        other = tmp_path / "b"
        shutil.rmtree(other, ignore_errors=True)
        shutil.copytree(out, other)
        part = next((other / "runs").glob("part-*.parquet"))
        change(pd.read_parquet(part)).to_parquet(part)
        assert any(d.startswith(expect) for d in cr.differences(out, other)), expect
        if "values" in expect:  # the widened comparison still sees a value that changed
            assert any(d.startswith(expect) for d in cr.differences(out, other, widened=True)), expect


def test_every_kind_gives_the_tables_of_the_revision_before_the_restructure():
    known = subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT, capture_output=True).returncode == 0
    if not known:
        pytest.skip(f"revision {BEFORE} is not in this clone's history (a shallow clone)")
    # widened: since #19 the store writes float64 / int64 / categoricals / matrices; the values must be
    # those of the old revision exactly (the casts are exact)
    found = cr.compare(BEFORE, cr.QUICK, ("ode",), log=lambda line: None, widened=True, cache=True)  # benchmarks/: every resume
    assert all(not v for v in found.values()), {k: v for k, v in found.items() if v}
