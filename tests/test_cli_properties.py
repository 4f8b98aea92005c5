"""The CLI itself under random flags and random spec files (issue #17): every call exits 0 or 2,
never with a traceback, and a refusal (exit 2) writes nothing.

The sweep's computation is replaced by a stub (what is under test is everything before it:
parsing, validation, data, planning and the memory check, which all happen before the first byte
is written); a call the stub is reached by exits 0."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from condense_jax import cli
from condense_jax.engine import execute as engine_execute

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

SETTINGS = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

absurd = st.sampled_from(["-1", "0", "1e308", "-1e308", "nan", "inf", "-inf", "1e-300", "", " ", "abc", "1e12",
                          "100000", "2", "3", "0.5", "1e-9", "10000000", "1.5", "True", "--", "☃"])
FLAGS = {
    "ode": ["--widths", "--seeds", "--scale-a", "--scale-b", "--scale-c", "--depth", "--rtol", "--atol", "--tau-max",
            "--series-dtau", "--chunk-size", "--series-t", "--stepping", "--max-memory"],
    "train": ["--model", "--widths", "--seeds", "--init-scales", "--scale-exponents", "--lr", "--steps", "--records",
              "--n", "--kernel-size", "--conv-layers", "--activation", "--data", "--dtype", "--chunk-size",
              "--loss-threshold", "--diverge-factor", "--top-k", "--max-memory"],
    "four-phases": ["--widths", "--seeds", "--init-scales", "--n", "--delta", "--spread", "--t-max", "--t-min",
                    "--n-records", "--lr", "--lr-rel", "--lr-max", "--data", "--chunk-size", "--method", "--max-memory"],
}
WORDS = st.sampled_from(["three-layer", "two-layer", "deep-linear", "cnn", "digits", "tanh", "relu", "gd", "gf",
                         "shared", "per_start", "float64", "synthetic", "orthogonal"])


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(FLAGS)))
    argv = [command]
    for flag in draw(st.lists(st.sampled_from(FLAGS[command]), max_size=4, unique=True)):
        argv.append(flag)
        argv.extend(draw(st.lists(st.one_of(absurd, WORDS), min_size=1, max_size=2)))
    return argv


@pytest.fixture
def stub(monkeypatch):
    reached = []

    def execute(plan, out, progress=True, resume=False):
        reached.append(plan)
        return {"n_runs": plan.n_runs, "status_counts": {}, "tables": []}

    monkeypatch.setattr(engine_execute, "execute", execute)
    return reached


def _call(argv, out: Path, capsys) -> int:
    try:
        code = cli.main([*argv, "--out", str(out), "--quiet", "--no-figure"])
    except SystemExit as e:  # argparse's own refusal: one line, exit 2
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2), (argv, code, err)
    event(f"exit {code}")
    if code == 2:
        assert err.strip() and len(err.strip().splitlines()) <= 2, err  # argparse: usage + one error line
        assert not out.exists(), f"{argv} refused but wrote {sorted(out.rglob('*'))}"
    return code


@SETTINGS
@given(argv=command_lines())
def test_random_command_lines_exit_0_or_2_and_a_refusal_writes_nothing(argv, stub, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        _call(argv, Path(tmp) / "out", capsys)


keys = st.sampled_from(["widths", "seeds", "init_scales", "steps", "n", "lr", "t_max", "depth", "rtol", "series_dtau",
                        "kernel_size", "conv_layers", "model", "data", "chunk_size", "bogus"])
toml_values = st.one_of(st.integers(-3, 10**7), st.floats(allow_nan=False, allow_infinity=False, width=32),
                        st.sampled_from(['"digits"', '"cnn"', '""', "[]", "[1, 1]", "[0.5, 2]", "true", '"x"', "[[1]]"]))


@st.composite
def spec_texts(draw):
    kind = draw(st.sampled_from(["ode", "train", "four_phases", "nonsense", None]))
    lines = [f'kind = "{kind}"'] if kind else []
    lines.append(f"[{kind or 'ode'}]")
    for k in draw(st.lists(keys, max_size=4, unique=True)):
        v = draw(toml_values)
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=spec_texts())
def test_random_spec_files_exit_0_or_2_and_a_refusal_writes_nothing(text, stub, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        path.write_text(text)
        _call(["run", str(path)], Path(tmp) / "out", capsys)
