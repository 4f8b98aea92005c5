"""The data dictionary (issue #19): every column of every table a sweep writes explains itself in its
Parquet field metadata, with the entry of its family's dictionary; no dictionary entry is stale;
one float and one int width per table, text as categoricals, the cosine matrices read back as
matrices; `condense describe`, the report and the README show the same dictionary."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import ROOT, run_cli

import condense_jax
from condense_jax import cli, kinds
from condense_jax.engine import columns, store

pytestmark = pytest.mark.slow
QUIET = ["--quiet", "--no-figure"]

# small sweeps that together write every column of every kind (options that add columns included)
SWEEPS = {
    "ode": ["ode", "--widths", "4", "--seeds", "2", "--pair-counts", "--series-t", "0.1", "0.3"],
    "three_layer": ["train", "--widths", "5", "--seeds", "2", "--steps", "20", "--init-scales", "1e-2", "1e-3"],
    "two_layer": ["train", "--model", "two-layer", "--widths", "6", "12", "--gammas", "0.5", "--gamma-primes", "0",
                  "--seeds", "2", "--steps", "20", "--no-predict", "--lr-ntk", "1"],
    "three_layer_grid": ["run", "phase_three_layer", "--variant", "quick", "train.widths=[6,12]", "train.seeds=1",
                         "train.steps=15"],
    "fast_forward": ["train", "--fast-forward", "--widths", "5", "--seeds", "1", "--steps", "30", "--init-scales", "1e-3",
                     "--no-predict"],
    "deep_linear": ["train", "--model", "deep-linear", "--data", "fig3", "--widths", "5", "--seeds", "2", "--steps", "15"],
    "cnn": ["train", "--model", "cnn", "--widths", "2", "--seeds", "2", "--n", "30", "--steps", "8"],
    "four_phases": ["four-phases", "--widths", "5", "--seeds", "2", "--init-scales", "1e-2", "--n", "16", "--t-max", "30",
                    "--n-records", "8"],
}
PHASED = ("two_layer", "three_layer_grid")  # `condense phase` writes phase/phase_table.parquet from these


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("columns")
    out = {}
    for name, args in SWEEPS.items():
        out[name] = base / name
        assert cli.main([*args, "--out", str(out[name]), *QUIET]) == 0, name
        if name in PHASED:
            assert cli.main(["phase", str(out[name])]) == 0, name
    return out


def _files(out):
    """(table name as the dictionary names it, Parquet file) of every table of a result directory."""
    for p in sorted(out.glob("*/*.parquet")):
        yield (p.parent.name if p.name.startswith("part-") else f"{p.parent.name}/{p.stem}"), p


def test_every_column_carries_its_dictionary_entry_and_no_entry_is_stale(results):
    seen = {}
    for name, out in results.items():
        kind = kinds.result_kind(out).name
        dictionary = kinds.dictionary(kind)
        for table, path in _files(out):
            assert table in dictionary, f"{name}: table {table} has no dictionary"
            schema = pq.read_schema(path)
            for field in schema:
                want = columns.entry(dictionary[table], field.name)
                assert want is not None, f"{name}: {table}.{field.name} is not in the dictionary"
                got = columns.from_schema(pa.schema([field]))[field.name]
                want = want._replace(values=())  # the possible values are the stored categories (below)
                assert got == want, f"{name}: {table}.{field.name} carries {got}, the dictionary says {want}"
                assert want.meaning, f"{table}.{field.name}: an entry without a meaning"
                seen.setdefault((kind, table), set()).add(field.name)
    for kind in kinds.KINDS:
        for table, entries in kinds.dictionary(kind).items():
            written = seen.get((kind, table), set())
            stale = [e for e in entries if not any(columns.entry({e: entries[e]}, c) for c in written)]
            assert not stale, f"{kind} {table}: entries no sweep writes: {stale}"


def test_one_float_and_one_int_width_text_as_categoricals(results):
    for name, out in results.items():
        for table, path in _files(out):
            for field in pq.read_schema(path):
                t = field.type
                assert not (pa.types.is_floating(t) and t != pa.float64()), f"{name} {table}.{field.name}: {t}"
                assert not (pa.types.is_integer(t) and t != pa.int64()), f"{name} {table}.{field.name}: {t}"
                assert not (pa.types.is_string(t) or pa.types.is_large_string(t)), f"{name} {table}.{field.name}: plain text"
        for table, frame in condense_jax.load(out).items():
            for col in ("status", "model", "layer", "phases", "theory_status"):
                if col in frame:
                    assert isinstance(frame[col].dtype, pd.CategoricalDtype), (name, table, col)


def test_label_columns_have_every_possible_value_as_their_categories(results, tmp_path):
    """A status (or regime) column's categories are all its possible values, in one order, in every
    sweep, whichever occur: a researcher compares two sweeps' statuses with `!=`, which pandas
    refuses for categoricals with different categories (a sweep with a diverged run against one
    without). Values outside the list are kept, after it."""
    checked = 0
    for name, out in results.items():
        for table, frame in condense_jax.load(out).items():
            dictionary = kinds.dictionary(kinds.result_kind(out).name)[table]
            for col in frame.columns:
                entry = columns.entry(dictionary, col)
                if entry.values:
                    assert list(frame[col].cat.categories) == list(entry.values), (name, table, col)
                    checked += 1
    for name in PHASED:  # the phase table's regimes
        frame = pd.read_parquet(results[name] / "phase" / "phase_table.parquet")
        dictionary = kinds.dictionary("train")["phase/phase_table"]
        for col in [c for c in frame.columns if c.startswith("regime_")]:
            assert list(frame[col].cat.categories) == list(columns.entry(dictionary, col).values), (name, col)
            checked += 1
    assert checked >= 6
    frames = []
    for i, statuses in enumerate((["finished", "converged"], ["diverged", "finished"], ["finished", "exotic"])):
        store.write_table(pd.DataFrame({"run_id": [0, 1], "status": statuses}), tmp_path / f"{i}.parquet", {},
                          {"status": columns.Column("s", values=("finished", "converged", "diverged"))})
        frames.append(pd.read_parquet(tmp_path / f"{i}.parquet"))
    assert (frames[0]["status"] != frames[1]["status"]).tolist() == [True, True]
    assert list(frames[2]["status"].cat.categories) == ["finished", "converged", "diverged", "exotic"]
    assert frames[2]["status"].tolist() == ["finished", "exotic"]


def test_label_values_are_the_values_the_code_writes():
    """The dictionaries stay import-light (no JAX), so they spell the labels out; these are the
    code's own lists, and the two must not drift apart (a value missing from an entry would be
    stored after the listed ones, in another order than in other sweeps)."""
    from condense_jax.four_phases.dynamics import STATUS_CODES as FOUR_PHASE_CODES
    from condense_jax.gd.phase_diagram.fit import REGIMES
    from condense_jax.gd.train import STATUS_CODES
    from condense_jax.ode.blowup import STATUSES, THEORY_STATUSES

    entry = lambda kind, table, col: set(columns.entry(kinds.dictionary(kind)[table], col).values)
    assert entry("train", "runs", "status") == set(STATUS_CODES.values())
    assert entry("four_phases", "runs", "status") == set(FOUR_PHASE_CODES.values())
    assert entry("ode", "runs", "status") == set(STATUSES)
    assert entry("ode", "runs", "theory_status") == set(THEORY_STATUSES)
    assert entry("train", "phase/phase_table", "regime_w") == {*REGIMES, "undetermined"}
    assert entry("train", "phase/phase_table", "regime_theory") == set(REGIMES)


def test_cosines_read_back_as_cosine_matrices(results):
    """Each `cos` value is the m × m matrix D(w_i, w_j): symmetric, unit diagonal (no zero row at a
    random start or after training), entries in [−1, 1]; `width` is its side."""
    frame = condense_jax.load(results["three_layer"])["cosines"]
    assert len(frame) and set(frame["layer"].astype(str)) == {"w1", "w2"}
    for row in frame.itertuples():
        c = row.cos
        assert isinstance(c, np.ndarray) and c.shape == (row.width, row.width), c.shape
        np.testing.assert_allclose(c, c.T, atol=1e-6)
        np.testing.assert_allclose(np.diag(c), 1.0, atol=1e-5)
        assert np.abs(c).max() <= 1 + 1e-6
    kernels = condense_jax.load(results["cnn"])["cosines"]
    per_kernel = kernels[kernels["layer"] == "kernels_conv1"]
    assert len(per_kernel) and all(v.shape == (w, 2) for v, w in zip(per_kernel["cos"], per_kernel["width"]))


def test_describe_prints_the_dictionary_of_every_table(results, capsys):
    out = results["four_phases"]
    code, text, err = run_cli(["describe", str(out)], capsys)
    assert code == 0, err
    for table, frame in condense_jax.load(out).items():
        assert f"{table}/ ({len(frame.columns)} columns)" in text
        for col in frame.columns:
            entry = columns.entry(kinds.dictionary("four_phases")[table], col)
            assert re.search(rf"^  {re.escape(col)} +\S+ +{re.escape(entry.meaning)}", text, re.M), col
    code, text, _ = run_cli(["describe", str(results["two_layer"])], capsys)
    assert code == 0 and "phase/phase_table/" in text and "regime_theory" in text
    code, text, _ = run_cli(["describe", "--kind", "train"], capsys)
    assert code == 0 and "predicted_escape_step" in text and "(3.8)" in text


def test_describe_refuses_what_is_not_a_result_in_one_line(results, tmp_path, capsys):
    code, out, err = run_cli(["describe", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "nowhere" in err
    broken = tmp_path / "broken"
    shutil.copytree(results["ode"], broken)
    part = next((broken / "runs").glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[:-40])
    code, out, err = run_cli(["describe", str(broken)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "part-" in err


def test_the_check_sees_a_column_without_an_entry(tmp_path):
    """A control for the first test: a table written without the dictionary carries no entry."""
    frame = pd.DataFrame({"run_id": [0], "mystery": [1.5]})
    store.write_table(frame, tmp_path / "t.parquet", {"k": 1}, kinds.dictionary("ode")["runs"])
    got = columns.from_schema(pq.read_schema(tmp_path / "t.parquet"))
    assert got["run_id"].meaning and not got["mystery"].meaning
    assert columns.undocumented(kinds.dictionary("ode")["runs"], ["run_id", "mystery"]) == ["mystery"]


def test_the_report_shows_the_dictionary(results, tmp_path):
    from condense_jax.cli import _report_sweep
    from condense_jax.engine.report import build_report

    page = build_report(_report_sweep(results["ode"]), tmp_path / "r.html").read_text()
    assert "<h2>Columns</h2>" in page and "proved lower bound of T*" in page


def test_the_readme_column_lists_are_the_dictionary():
    text = (ROOT / "README.md").read_text()
    begin = text.index("<!-- columns: generated by `condense describe --markdown`")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- /columns -->")
    assert text[begin:end].strip() == cli.docs_columns().strip(), \
        "README's column lists differ from the dictionary: regenerate them with `condense describe --markdown`"
