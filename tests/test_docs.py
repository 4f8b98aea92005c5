"""The times the documentation states are measured, and every place states the same one (issue #16).

benchmarks/sweep_times.py measures each packaged sweep (cold and warm XLA cache) and writes
benchmarks/results_sweep_times.txt; the README's table of sweep times and each spec file's
`# Time` line must quote exactly those numbers, and `--help` states no time at all.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from condense_jax import cli, kinds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from sweep_times import SWEEPS, label, read_results  # noqa: E402

TIME_LINE = re.compile(r"^# Time on a 2-core CPU \(cold / warm XLA cache, benchmarks/sweep_times\.py\)"
                       r"(?:, --variant (\w+))?: (\d+) s / (\d+) s\.$", re.M)


def test_every_timed_sweep_is_measured():
    measured = read_results()
    assert set(measured) == {label(s, v) for s, v in SWEEPS}


def test_readme_table_quotes_the_measurements():
    readme = (ROOT / "README.md").read_text()
    table = read_results(ROOT / "README.md")
    assert table == read_results(), "README's table of sweep times differs from benchmarks/results_sweep_times.txt"
    q = read_results()["quickstart"]
    assert f"the run: {q[0]} s with a cold XLA cache, {q[1]} s warm" in readme


def test_spec_files_quote_the_measurements():
    measured = read_results()
    for spec, variant in SWEEPS:
        text = (kinds.PACKAGED_SWEEPS / f"{spec}.toml").read_text()
        lines = TIME_LINE.findall(text)
        assert len(lines) == 1, f"{spec}.toml: expected one `# Time …` line, found {len(lines)}"
        got_variant, cold, warm = lines[0]
        assert (got_variant or None) == variant, spec
        assert (int(cold), int(warm)) == measured[label(spec, variant)], spec


def test_no_other_time_claims_in_specs_or_help(capsys):
    vague = re.compile(r"about (a|one|\d+) (minute|second)|\b\d+ ?(s|min)\b on a|~\d+ ?(s|min)\b|a few minutes|in seconds",
                       re.I)
    for path in kinds.PACKAGED_SWEEPS.glob("*.toml"):
        for line in path.read_text().splitlines():
            if line.startswith("#") and not TIME_LINE.match(line):
                assert not vague.search(line), f"{path.name}: {line}"
    for argv in (["--help"], ["run", "--help"], ["ode", "--help"], ["train", "--help"], ["four-phases", "--help"]):
        try:
            cli.main(argv)
        except SystemExit:
            pass
        text = capsys.readouterr().out
        assert not vague.search(text), argv
