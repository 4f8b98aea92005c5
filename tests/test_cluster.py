"""Sweeps as submitit job arrays (issue #6), run here with submitit's debug and local executors."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from helpers import tables

from condense_jax import cli, kinds
from condense_jax.engine import cluster, store
from condense_jax.kinds import parse_spec

pytestmark = pytest.mark.slow  # fresh processes or end-to-end sweeps (conftest.py)

SPEC = """
kind = "four_phases"
name = "small"
[four_phases]
widths = 6
init_scales = [1e-2, 1e-4]
seeds = 6
n = 20
delta = [60, 120]
t_max = 100
n_records = 20
chunk_size = 3
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "small.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "res"
    assert cli.main(["run", str(spec_file), "--out", str(out), "--quiet", "--no-figure"]) == 0
    return tables(out)


def equal(a: dict, b: dict) -> None:
    assert set(a) == set(b) and {"runs", "series"} <= set(a)
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t])


@pytest.mark.parametrize("executor, tasks", [("debug", 3), ("local", 2)])
def test_job_array_gives_the_local_tables(executor, tasks, spec_file, reference, tmp_path, capsys):
    out = tmp_path / "res"
    code = cli.main(["run", str(spec_file), "--out", str(out), "--executor", executor, "--tasks", str(tasks), "--no-figure"])
    text = capsys.readouterr().out
    assert code == 0 and f"submitted {tasks} {executor} task(s) for 4 of 4 chunks" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["executor"] == executor and manifest["status_counts"] == {"finished": 24}
    equal(tables(out), reference)


KIND_SPECS = {  # one tiny spec of each other kind (the four-phase one is SPEC above)
    "ode": 'kind = "ode"\nname = "ode_small"\n[ode]\nwidths = [4, 6]\nseeds = 3\nchunk_size = 2\n',
    "train": 'kind = "train"\nname = "train_small"\n[train]\nwidths = [5]\nseeds = 4\ninit_scales = [1e-2, 1e-3]\n'
             'steps = 60\nn = 20\nchunk_size = 2\n',
}


@pytest.mark.parametrize("kind", list(KIND_SPECS))
def test_every_kind_through_the_local_executor_gives_the_local_tables(kind, tmp_path, capsys):
    """Issue #16: the round trip of a spec through the task (to_dict, then from_mapping) failed for
    every ODE spec (`series_t must be a list of numbers, got [None]`)."""
    path = tmp_path / f"{kind}.toml"
    path.write_text(KIND_SPECS[kind])
    local, array = tmp_path / "local", tmp_path / "array"
    assert cli.main(["run", str(path), "--out", str(local), "--quiet", "--no-figure"]) == 0
    code = cli.main(["run", str(path), "--out", str(array), "--executor", "local", "--tasks", "2", "--no-figure"])
    assert code == 0, capsys.readouterr()
    assert json.loads((array / "manifest.json").read_text())["complete"]
    equal(tables(local), tables(array))


def test_every_packaged_spec_survives_the_round_trip_through_a_task():
    """The job array rebuilds each spec from its manifest config: same spec, same hash."""
    from condense_jax.kinds import load_spec

    for path in sorted(kinds.PACKAGED_SWEEPS.glob("*.toml")):
        for variant in (None, "quick"):
            try:
                spec, _ = load_spec(path, variant)
            except Exception:  # no such variant
                continue
            again = kinds.spec_from_config(spec.to_dict())
            assert again == spec and again.config_hash() == spec.config_hash(), (path.name, variant)


def test_a_failing_debug_task_is_reported_not_debugged(spec_file, tmp_path, monkeypatch):
    """submitit's debug executor opens Pdb when result() meets an exception; the array waits with
    exception() instead, so a failed task is one line and missing chunks, never a prompt."""
    def boom(self, indices):
        raise RuntimeError("task failed on purpose")

    monkeypatch.setattr(cluster.ChunkTask, "__call__", boom)
    spec, _ = parse_spec(SPEC, "small")
    lines = []
    with pytest.raises(Exception, match="chunks are missing"):
        cluster.submit(kinds.plan(spec), spec.to_dict(), kinds.plan_from_config, tmp_path / "res", "debug", 2, log=lines.append)
    assert any("task failed on purpose" in line for line in lines)


def test_no_wait_then_resume_writes_the_final_manifest(spec_file, reference, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["run", str(spec_file), "--out", str(out), "--executor", "local", "--tasks", "2", "--no-wait", "--no-figure"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    t0 = time.monotonic()
    while not all((out / "runs" / store.part_name(i)).exists() for i in range(4)):  # completion is read from the files
        assert time.monotonic() - t0 < 300
        time.sleep(0.2)
    time.sleep(0.5)
    assert cli.main(["run", str(spec_file), "--out", str(out), "--resume", "--quiet", "--no-figure"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["chunks_computed"] == 0
    equal(tables(out), reference)


def test_a_requeued_task_skips_the_chunks_it_wrote(spec_file, reference, tmp_path):
    """submitit requeues a preempted Checkpointable with the same arguments; the rerun computes
    only the chunks whose files are missing."""
    spec, _ = parse_spec(SPEC, "small")
    out = tmp_path / "res"
    assert cli.main(["run", str(spec_file), "--out", str(out), "--quiet", "--no-figure"]) == 0
    plan = [c.key for c in kinds.plan(spec).chunks]
    task = cluster.ChunkTask(kinds.plan_from_config, spec.to_dict(), str(out), json.loads(json.dumps(plan)))
    again = task.checkpoint([1, 3])
    assert again.function is task and again.args == ([1, 3],)
    for sub in ("runs", "series", "neurons"):
        (out / sub / store.part_name(3)).unlink(missing_ok=True)
    assert again.function(*again.args)["computed"] == [3]
    equal(tables(out), reference)


def test_a_task_refuses_another_chunking(tmp_path):
    spec, _ = parse_spec(SPEC, "small")
    task = cluster.ChunkTask(kinds.plan_from_config, spec.to_dict(), str(tmp_path), [{"width": 6}])
    with pytest.raises(RuntimeError, match="chunking differs"):
        task([0])


def test_round_robin_split():
    assert cluster.split([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert cluster.split([4, 7], 5) == [[4], [7]]
    assert cluster.split([], 3) == []


@pytest.mark.parametrize("args, words", [
    (["--executor", "local", "--tasks", "0"], "--tasks must be at least 1"),
    (["--executor", "local", "--mem-gb", "-1"], "--mem-gb must be positive"),
    (["--executor", "pbs"], "invalid choice"),
])
def test_bad_cluster_options(args, words, spec_file, tmp_path, capsys):
    try:
        code = cli.main(["run", str(spec_file), "--out", str(tmp_path / "x"), *args])
    except SystemExit as e:  # argparse's own refusal (one line, exit 2)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
