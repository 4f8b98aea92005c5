"""Sweeps on a Slurm cluster through submitit (issue #6): the chunks split into array tasks.

    condense run SPEC --executor slurm --slurm-partition gpu --tasks 32 --array-parallelism 8

The submitting process plans the sweep (engine.plan.Plan), writes the provisional manifest with the plan
into the result directory (which must be on a file system the nodes share), and submits one
Slurm job array through submitit: task k computes the chunks k, k + K, k + 2K, … that are not on
disk yet, writing each as its numbered part files exactly as a local sweep does. Completion is read
from the files, never from memory: the runs part of a chunk is written last, so its presence means
the chunk is done. A preempted or timed-out task is requeued by submitit's checkpointing
(ChunkTask is Checkpointable) and skips the chunks it already wrote. When every task has
finished, the final manifest is written; with --no-wait the command returns after submitting,
and `condense run SPEC --resume` later computes whatever is missing (nothing, normally) and
writes it. The "local" (subprocesses) and "debug" (in-process) executors run the same tasks on
this machine, which is how the tests exercise it.
"""

from __future__ import annotations

import json
from pathlib import Path

import submitit

from ..errors import ConfigError
from . import execute, store

EXECUTORS = ("slurm", "local", "debug")


class ChunkTask(submitit.helpers.Checkpointable):
    """One array task: compute the given chunks of a sweep that are missing from `out`.

    Called with the list of chunk indices; on preemption submitit calls `checkpoint` (inherited),
    which resubmits the same task with the same indices, and the chunks already written are skipped.
    """

    def __init__(self, plan_of, spec_doc: dict, out: str, plan: list):
        self.plan_of, self.spec_doc, self.out, self.plan = plan_of, spec_doc, out, plan

    def __call__(self, indices: list[int]) -> dict:
        from .devices import use_all_cpu_cores

        use_all_cpu_cores()  # a fresh task process: one XLA device per core (no-op once JAX has started)
        plan = self.plan_of(self.spec_doc)
        keys = json.loads(json.dumps([c.key for c in plan.chunks]))
        if keys != self.plan:
            raise RuntimeError("this task's chunking differs from the submitted plan (another device count?); "
                               "give chunk_size in the spec")
        meta = {"config": plan.config, "config_hash": plan.config_hash, **store.provenance()}
        out = Path(self.out)
        done = []
        # a shared lock: the array's tasks write side by side, no other writer meanwhile
        with store.writing(out, lambda: None, shared=True):
            for i in indices:
                if not execute.chunk_done(out, i, plan.chunks[i], plan.config_hash):
                    execute.write_chunk(out, i, plan.chunks[i], meta, plan.columns)
                    done.append(i)
        return {"computed": done, "requested": list(indices)}


def split(missing: list[int], tasks: int) -> list[list[int]]:
    """Round-robin: task k gets missing[k], missing[k + K], …"""
    tasks = max(1, min(tasks, len(missing)))
    return [missing[k::tasks] for k in range(tasks)] if missing else []


def make_executor(kind: str, folder: Path, options: dict):
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; known: {list(EXECUTORS)}")
    executor = submitit.AutoExecutor(folder=folder, cluster=None if kind == "slurm" else kind)
    params = {"timeout_min": options.get("time_min", 60), "name": options.get("name", "condense")}
    if options.get("cpus_per_task"):
        params["cpus_per_task"] = options["cpus_per_task"]
    if options.get("mem_gb"):
        params["mem_gb"] = options["mem_gb"]
    if options.get("gpus_per_node"):
        params["gpus_per_node"] = options["gpus_per_node"]
    if kind == "slurm":
        if options.get("partition"):
            params["slurm_partition"] = options["partition"]
        if options.get("array_parallelism"):
            params["slurm_array_parallelism"] = options["array_parallelism"]
    executor.update_parameters(**params)
    return executor


def submit(plan, spec_doc: dict, plan_of, out: Path, kind: str = "slurm", tasks: int = 16, options: dict | None = None,
           wait: bool = True, log=print) -> dict | None:
    """Write the provisional manifest of the planned sweep, submit its missing chunks as a job array
    of at most `tasks` tasks; with `wait`, wait for them and write the final manifest (returned).
    Each task rebuilds the plan as `plan_of(spec_doc)` (a module-level function, pickled by
    reference: the registry's kinds.plan_from_config), and checks it is the submitted one."""
    options = dict(options or {})
    out = Path(out)
    keys = [c.key for c in plan.chunks]
    resume = store.read_manifest(out) is not None
    with store.writing(out, lambda: execute.check(plan, out, resume)):  # the tasks take it shared meanwhile
        meta = execute.begin(plan, out, resume=resume, executor=kind)
    done = lambda i: execute.chunk_done(out, i, plan.chunks[i], plan.config_hash)
    missing = [i for i in range(len(plan.chunks)) if not done(i)]
    groups = split(missing, tasks)
    if groups:
        executor = make_executor(kind, out / ".submitit", {"name": plan.name, **options})
        task = ChunkTask(plan_of, spec_doc, str(out), json.loads(json.dumps(keys)))
        jobs = executor.map_array(task, groups)
        log(f"submitted {len(jobs)} {kind} task(s) for {len(missing)} of {len(plan.chunks)} chunks "
            f"(job {jobs[0].job_id.split('_')[0]}); logs in {out / '.submitit'}")
        if not wait:
            log("when they have finished: the same command with --resume writes the final manifest "
                "(and computes any chunk still missing)")
            return None
        failures = []
        for job in jobs:
            # exception() waits for the task (the debug executor runs it here) and returns what it
            # raised; result() would do the same but the debug executor then opens Pdb on failure
            e = job.exception()
            if e is not None:  # a failed task: its chunks stay missing, the others are kept
                failures.append(f"task {job.job_id}: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}")
        for line in failures:
            log(line)
    with store.writing(out, lambda: execute.check(plan, out, True)):
        still = [i for i in range(len(plan.chunks)) if not done(i)]
        if still:
            raise ConfigError(f"{len(still)} of {len(plan.chunks)} chunks are missing after the array "
                              f"(see {out / '.submitit'}); rerun with --resume")
        return execute.finish(plan, out, meta, len(missing), executor=kind)
