"""Property tests (issue #6): random specs at the validator, random bytes at the spec and Parquet
readers. Each either succeeds or fails with ConfigError (one line, exit 2 at the CLI)."""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condense_jax import cli
from condense_jax.engine import store
from condense_jax.errors import ConfigError
from condense_jax.kinds import SPEC_KINDS, load_spec, parse_spec

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["tanh", "relu", "gd", "angled", "logistic", "x.npz", "three-layer", "digits"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.lists(st.lists(scalars, max_size=3), max_size=3))
SETTINGS = settings(max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spec_tables(draw):
    kind = draw(st.sampled_from(sorted(SPEC_KINDS)))
    names = [f.name for f in dataclasses.fields(SPEC_KINDS[kind])] + ["nonsense_key"]
    keys = draw(st.lists(st.sampled_from(names), max_size=6, unique=True))
    return kind, {k: draw(values) for k in keys if draw(values) is not None or True}


@SETTINGS
@given(spec_tables())
def test_random_specs_are_accepted_or_refused_with_config_error(drawn):
    kind, table = drawn
    table = {k: v for k, v in table.items() if v is not None}  # TOML has no null
    try:
        spec = SPEC_KINDS[kind].from_mapping(table, "spec")
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert spec.KIND == kind and spec.n_runs >= 1


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_as_a_spec_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        path.write_bytes(data)
        try:
            load_spec(path, None)
        except ConfigError as e:
            assert "\n" not in str(e)


@SETTINGS
@given(st.text(max_size=300), st.sampled_from([None, "quick", "x"]))
def test_random_text_as_a_spec(text, variant):
    for doc in (text, f'kind = "train"\n{text}', f'kind = "four_phases"\n[four_phases]\n{text}'):
        try:
            parse_spec(doc, "spec", variant)
        except ConfigError as e:
            assert "\n" not in str(e)


def valid_part() -> bytes:
    frame = pd.DataFrame({"run_id": [0, 1], "status": ["finished", "diverged"], "x": [0.5, 1.5]})
    with tempfile.TemporaryDirectory() as tmp:
        store.write_table(frame, Path(tmp) / "p.parquet", {"config": {}})
        return (Path(tmp) / "p.parquet").read_bytes()


VALID = valid_part()


@SETTINGS
@given(st.one_of(st.binary(max_size=600),
                 st.tuples(st.integers(0, len(VALID) - 1), st.binary(min_size=1, max_size=16)).map(
                     lambda cut: VALID[: cut[0]] + cut[1] + VALID[cut[0] + len(cut[1]):])))
def test_random_or_corrupted_bytes_as_a_table(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "runs").mkdir()
        (Path(tmp) / "runs" / "part-00000.parquet").write_bytes(data)
        try:
            frame = store.read_table(tmp, "runs")
        except ConfigError as e:
            assert "\n" not in str(e)
            return
        assert isinstance(frame, pd.DataFrame)


def test_a_foreign_parquet_file_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2]}).to_parquet(buf)
    (tmp_path / "runs" / "part-00000.parquet").write_bytes(buf.getvalue())
    with pytest.raises(ConfigError, match="not a condense_jax table"):
        store.read_table(tmp_path, "runs")


@pytest.mark.parametrize("command", [["plot", "train"], ["plot", "phases"], ["plot", "tstar"], ["report"], ["phase"]])
def test_cli_on_foreign_or_broken_tables_one_line_exit_2(command, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["ode", "--out", str(out), "--widths", "4", "--seeds", "2", "--quiet", "--no-figure"]) == 0
    capsys.readouterr()
    (out / "runs" / "part-00000.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    code = cli.main([*command, str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
