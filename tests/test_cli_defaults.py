"""One source for every default: the spec dataclasses. A sweep command given no optional flag runs
exactly the dataclass's default spec, and every default a flag's help or argparse states is the
dataclass's (issue #18: `condense four-phases --help` promised the TOML's defaults and used others)."""

from __future__ import annotations

import re

import pytest

from condense_jax import FourPhaseSweep, OdeSweep, TrainSweep, cli
from condense_jax.engine import execute as engine_execute

SPECS = {"ode": OdeSweep, "train": TrainSweep, "four-phases": FourPhaseSweep}
FLAG_FIELD = {"records": "n_records", "seed_list": None, "seeds": "seeds", "no_predict": None, "lr_drop": "lr_drops"}


@pytest.fixture
def captured(monkeypatch):
    plans = []

    def execute(plan, out, progress=True, resume=False):
        plans.append(plan)
        return {"n_runs": plan.n_runs, "status_counts": {}, "tables": []}

    monkeypatch.setattr(engine_execute, "execute", execute)
    return plans


@pytest.mark.parametrize("command", sorted(SPECS))
def test_no_flags_runs_the_dataclass_default(command, captured, tmp_path, capsys):
    assert cli.main([command, "--out", str(tmp_path / "o"), "--quiet", "--no-figure"]) == 0
    config = dict(captured[0].config)
    config.pop("data_sha256", None)  # the four-phase and training plans add their data's digest
    expected = SPECS[command]().to_dict()
    differ = {k: (config.get(k), v) for k, v in expected.items() if config.get(k) != v}
    assert not differ, f"`condense {command}` without flags differs from {SPECS[command].__name__}(): {differ}"


def _actions(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]._actions


def _plain(v):
    return list(v) if isinstance(v, (tuple, list)) else v


@pytest.mark.parametrize("command", sorted(SPECS))
def test_every_stated_default_is_the_dataclass_default(command):
    defaults = SPECS[command]().to_dict()
    checked = 0
    for action in _actions(command):
        field = FLAG_FIELD.get(action.dest, action.dest)
        if field not in defaults:
            continue
        want = defaults[field]
        if field == "seeds":
            want = len(want)  # --seeds N is a count
        if action.default is not None and not isinstance(action.default, bool):
            assert _plain(action.default) == _plain(want), f"--{action.dest}: argparse default {action.default!r}, spec {want!r}"
            checked += 1
        stated = re.search(r"\(default:? ([^);]+)\)", action.help or "")
        text = stated.group(1).strip() if stated else ""
        if re.fullmatch(r"[-+0-9.e… ]+", text):  # a stated number or list ("rtol", "first and last" describe a rule)
            fmt = lambda x: f"{x:g}" if isinstance(x, (int, float)) else str(x)
            values = want if isinstance(want, list) else [want]
            shown = {" ".join(map(fmt, values)), f"{fmt(values[0])} … {fmt(values[-1])}"}
            assert text in shown, f"--{action.dest}: help says default {text!r}, spec {want!r}"
            checked += 1
    assert checked >= 5  # the test reads the parser (else it would pass vacuously)
