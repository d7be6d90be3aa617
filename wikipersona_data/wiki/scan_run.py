"""Plan and run the datatrove scan (scan_steps.py) on a local, Slurm or Ray executor.

The driver (this module, in the ``wikipersona scan`` process) checks the dump and index the same way the
in-process scan does (missing/corrupt file, index that does not match: one ``InputError`` before any task
starts), writes the plan (every stream's offsets and expected pages) into ``LOGS/plan/``, and hands two
pipelines to the chosen executor: stage 1 with ``tasks`` ranks and stage 2 (the reducer, one task) with
``depends=`` stage 1. Layout of ``LOGS`` (``--logs``; default ``OUT.scan-logs/`` beside the table)::

    scan.json          what this folder scans (dump, index, sizes, options, tasks): a rerun must match it
    parts/             plan.npy (the streams), and per task: rows-RANK.jsonl, counts-RANK.npz, errors-RANK-STEP.txt
    stage1/            datatrove's folder of stage 1: completions/, logs/, stats/, stats.json
    stage2/            the same for the reducer

A rerun with the same ``--logs`` skips the ranks in ``stage1/completions/`` (datatrove's
``skip_completed``), so a killed scan only redoes its unfinished tasks; the reducer always runs again.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.executor import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats

from wikipersona_data.errors import InputError
from wikipersona_data.fileio import write_atomic
from wikipersona_data.wiki.dump import SiteInfo, open_binary
from wikipersona_data.wiki.multistream import index_streams, read_header, stream_bounds
from wikipersona_data.wiki.scan import ScanOptions, ScanSummary, SiteContext
from wikipersona_data.wiki.scan_steps import ERRORS, PLAN_FILE, ScanReducer, rank_streams, stage1_steps

TASK_BYTES = 16 << 20  # default compressed bytes per task: ~1,300 tasks for a full enwiki dump (21 GB)
TASKS_PER_WORKER = 4  # at least this many tasks per worker, so a slow task does not leave cores idle
EXECUTORS = ("local", "slurm", "ray")
MANIFEST_VERSION = 2  # 2: counts-RANK.npz holds the task's page count


@dataclass
class SlurmOptions:
    """What ``--slurm-*`` passes through to datatrove's SlurmPipelineExecutor (and so to sbatch)."""

    partition: str | None = None
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2  # sbatch takes whole units (--mem-per-cpu=2G)
    qos: str | None = None
    env_command: str | None = None  # run before the task in the sbatch script; default: put this Python first on PATH
    sbatch_args: dict[str, str] = field(default_factory=dict)
    job_name: str = "wikipersona-scan"


@dataclass
class RayOptions:
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 1


@dataclass
class ScanPlan:
    dump: Path
    index: Path | None
    logs: Path
    tasks: int
    site: SiteContext
    task_bytes: list[int]  # compressed bytes of each rank (progress)

    @property
    def parts(self) -> Path:
        return self.logs / "parts"


def default_tasks(total_bytes: int, streams: int, workers: int) -> int:
    """About ``TASK_BYTES`` per task, at least ``TASKS_PER_WORKER`` per worker, never more tasks than streams."""
    return max(1, min(streams, max(math.ceil(total_bytes / TASK_BYTES), TASKS_PER_WORKER * workers)))


def plan_scan(
    dump: Path, index: Path | None, logs: Path, options: ScanOptions, tasks: int | None, workers: int
) -> ScanPlan:
    """Check the inputs, write (or check) ``LOGS/scan.json`` and the plan; returns what the executors need."""
    raw, _ = open_binary(dump)  # missing / empty / not-bz2 -> InputError before any task starts
    with raw:
        size = os.fstat(raw.fileno()).st_size
        site = SiteInfo()
        plan = np.zeros((0, 4), dtype=np.int64)
        if index is not None:
            counts = index_streams(index)
            bounds = stream_bounds(sorted(counts), size, dump, index, raw)
            site = read_header(raw, dump, min(counts), index)
            plan = np.array([(s, e, *counts[s]) for s, e in bounds], dtype=np.int64).reshape(-1, 4)
    if index is None:
        if tasks not in (None, 1):
            raise InputError(f"--tasks {tasks}: without a multistream index ({dump}) the scan is a single task")
        tasks = 1
    elif tasks is None:
        tasks = default_tasks(int(plan[-1, 1] - plan[0, 0]), len(plan), workers)
    elif tasks > len(plan):
        raise InputError(f"--tasks {tasks}: {dump} has only {len(plan)} page streams; use at most that many tasks")
    manifest = {
        "version": MANIFEST_VERSION,
        "dump": str(dump.resolve()),
        "dump_bytes": size,
        "index": str(index.resolve()) if index else None,
        "index_bytes": index.stat().st_size if index else None,
        "tasks": tasks,
        "max_page_bytes": options.max_page_bytes,
        "page_timeout": options.page_timeout,
        "sketch": [options.sketch_width, options.sketch_depth],
    }
    _check_or_write_manifest(logs, manifest)
    (logs / "parts").mkdir(parents=True, exist_ok=True)
    np.save(logs / "parts" / PLAN_FILE, plan)
    task_bytes = [int((r[:, 1] - r[:, 0]).sum()) for r in (rank_streams(plan, k, tasks) for k in range(tasks))]
    if index is None:
        task_bytes = [size]
    return ScanPlan(dump, index, logs, tasks, SiteContext.of(site), task_bytes)


def _check_or_write_manifest(logs: Path, manifest: dict[str, Any]) -> None:
    path = logs / "scan.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        if old != manifest:
            differ = sorted(k for k in manifest if not isinstance(old, dict) or old.get(k) != manifest[k])
            raise InputError(
                f"--logs {logs}: holds a scan with other inputs or settings ({', '.join(differ) or 'unreadable'} "
                f"differ); use another --logs folder, or delete this one to start over"
            )
        return
    logs.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(manifest, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------ executors


def _run_rank(executor: Any, rank: int, local_rank: int) -> Any:
    """One task in a worker process (module level, so the pool can pickle it)."""
    return executor._run_for_rank(rank, local_rank)


class SupervisedLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor on a ``concurrent.futures`` process pool instead of a ``multiprocess`` Pool.

    Why: when a worker of datatrove's Pool dies from outside (the OOM killer, ``kill -9``), the Pool replaces
    it but the dead task's result never arrives, so the scan hangs forever. A ``ProcessPoolExecutor`` raises
    ``BrokenProcessPool`` instead; the scan then stops with one line, and a rerun redoes only the ranks
    without a completion mark (datatrove's ``skip_completed``, unchanged). It also drops datatrove's
    "N/M tasks completed." line per task: the progress bar says it once.
    """

    def run(self) -> PipelineStats:
        self._launched = True
        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return PipelineStats()
        self.save_executor_as_json()
        if self.workers == 1:  # in this process; each rank on a fresh copy of the steps (their stats are per task)
            pipeline, results = self.pipeline, []
            for rank in ranks:
                self.pipeline = deepcopy(pipeline)
                results.append(self._run_for_rank(rank))
            self.pipeline = pipeline
        else:
            context = multiprocessing.get_context(self.start_method)
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
                futures = [pool.submit(_run_rank, self, rank, i % self.workers) for i, rank in enumerate(ranks)]
                try:
                    results = [future.result() for future in as_completed(futures)]
                except BrokenProcessPool:
                    left = self.get_incomplete_ranks(range(self.tasks))
                    raise InputError(
                        f"scan: a worker process died (killed, or out of memory) with {len(left)} of "
                        f"{self.tasks} tasks unfinished; see {self.logging_dir.path}/logs; run the same "
                        "command again to redo only those"
                    ) from None
        stats = sum(results, start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as f:
            stats.save_to_disk(f)
        return stats


def build_executors(
    plan: ScanPlan,
    out: Path,
    options: ScanOptions,
    executor: str,
    workers: int,  # -1: no limit (slurm, ray)
    slurm: SlurmOptions | None = None,
    ray: RayOptions | None = None,
) -> tuple[Any, Any]:
    """(stage 1, stage 2) executors of datatrove; stage 2 ``depends=`` stage 1 (locally: runs after it)."""
    stage1 = stage1_steps(plan.dump, plan.index, plan.parts, plan.site, options)
    stage2 = [ScanReducer(str(plan.dump), str(plan.parts), plan.tasks, str(out), options)]
    logs1, logs2 = str(plan.logs / "stage1"), str(plan.logs / "stage2")
    if executor == "local":
        first = SupervisedLocalExecutor(stage1, tasks=plan.tasks, workers=min(workers, plan.tasks), logging_dir=logs1)
        second = SupervisedLocalExecutor(stage2, tasks=1, workers=1, logging_dir=logs2, skip_completed=False)
        return first, second
    if executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        slurm = slurm or SlurmOptions()
        if not slurm.partition:
            raise InputError("--executor slurm needs --slurm-partition")
        common = {
            "time": slurm.time,
            "partition": slurm.partition,
            "mem_per_cpu_gb": slurm.mem_per_cpu_gb,
            "qos": slurm.qos,
            "env_command": slurm.env_command or f"export PATH={Path(sys.executable).parent}:$PATH",
            "sbatch_args": dict(slurm.sbatch_args),
        }
        first = SlurmPipelineExecutor(
            stage1,
            tasks=plan.tasks,
            workers=workers,
            cpus_per_task=slurm.cpus_per_task,
            job_name=slurm.job_name,
            logging_dir=logs1,
            **common,
        )
        second = SlurmPipelineExecutor(
            stage2,
            tasks=1,
            cpus_per_task=1,
            job_name=f"{slurm.job_name}-reduce",
            logging_dir=logs2,
            depends=first,
            skip_completed=False,
            **common,
        )
        return first, second
    if executor == "ray":
        from datatrove.executor import RayPipelineExecutor

        ray = ray or RayOptions()
        kw = {"cpus_per_task": ray.cpus_per_task, "mem_per_cpu_gb": ray.mem_per_cpu_gb}
        first = RayPipelineExecutor(stage1, tasks=plan.tasks, workers=workers, logging_dir=logs1, **kw)
        second = RayPipelineExecutor(stage2, tasks=1, workers=1, logging_dir=logs2, depends=first, **kw)
        second.skip_completed = False
        return first, second
    raise InputError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")


def incomplete_ranks(plan: ScanPlan) -> list[int]:
    done = plan.logs / "stage1" / "completions"
    return [r for r in range(plan.tasks) if not (done / f"{r:05d}").is_file()]


def run_stage1(first: Any, plan: ScanPlan) -> None:
    """Run stage 1 and refuse to go on unless every rank completed (Ray only logs failed tasks)."""
    first.run()
    first._launched = True  # the reducer's depends= sees stage 1 as launched and only checks its completions
    left = incomplete_ranks(plan)
    if left:
        shown = ", ".join(str(r) for r in left[:10]) + (" ..." if len(left) > 10 else "")
        raise InputError(
            f"scan: {len(left)} of {plan.tasks} tasks did not complete (ranks {shown}); see "
            f"{plan.logs / 'stage1' / 'logs'}; run the same command again to redo only those"
        )
    if summary_from_stats(plan)[0].pages == 0:  # never a table that looks like a scan of a real dump
        raise InputError(f"empty dump: {plan.dump} contains no pages")


# ------------------------------------------------------------------------------------------ stats, summary


STAT_STEPS = {  # summary field -> (step name in datatrove's stats, metric)
    "pages": ("fame counts", "pages"),
    "articles": ("fame counts", "articles"),
    "redirects": ("fame counts", "redirects"),
    "people": ("biography row", "people"),
    "living": ("biography row", "living"),
}


def _metric(step: dict[str, Any], name: str) -> int:
    value = step.get("stats", {}).get(name)
    if value is None:
        return 0
    return int(value["total"] if isinstance(value, dict) else value)


def task_stats(logs: Path, rank: int) -> dict[str, int]:
    """One task's counts from datatrove's ``stage1/stats/RANK.json`` (what its steps counted)."""
    with open(logs / "stage1" / "stats" / f"{rank:05d}.json", encoding="utf-8") as f:
        steps = json.load(f)
    counts = dict.fromkeys([*STAT_STEPS, "errors", "compressed_bytes", "xml_bytes"], 0)
    for step in steps:
        label = step.get("name", "")
        for key, (step_name, metric) in STAT_STEPS.items():
            if label.endswith(step_name):
                counts[key] += _metric(step, metric)
        counts["errors"] += _metric(step, "errors")
        if label.endswith("MediaWiki dump"):
            counts["compressed_bytes"] += _metric(step, "compressed_bytes")
            counts["xml_bytes"] += _metric(step, "xml_bytes")
    return counts


def summary_from_stats(plan: ScanPlan) -> tuple[ScanSummary, list[dict[str, int]]]:
    """The scan summary as the sum of datatrove's per-task stats, and the per-task counts themselves."""
    per_task = [task_stats(plan.logs, r) for r in range(plan.tasks)]
    summary = ScanSummary()
    for counts in per_task:
        for key in ("pages", "articles", "redirects", "people", "living", "errors"):
            setattr(summary, key, getattr(summary, key) + counts[key])
    return summary, per_task


def task_errors(plan: ScanPlan) -> list[str]:
    """Every skipped page's message, task by task."""
    messages: list[str] = []
    for rank in range(plan.tasks):
        for step in ("read", "extract"):
            path = plan.parts / ERRORS.format(rank=rank, step=step)
            if path.is_file():
                messages += [f"task {rank}: {m}" for m in path.read_text(encoding="utf-8").splitlines()]
    return messages


# -------------------------------------------------------------------------------------------------- progress


class Progress:
    """A bar over compressed bytes of completed tasks, polled from ``stage1/completions`` and ``stats``."""

    def __init__(self, plan: ScanPlan, enabled: bool) -> None:
        self.plan, self.enabled = plan, enabled
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.enabled:
            self.thread.join()

    def _poll(self) -> None:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(self.plan.task_bytes), unit="B", unit_scale=True, desc="scan (compressed)", file=sys.stderr
        )
        seen: set[int] = set()
        pages = xml = 0
        start = time.perf_counter()
        while True:
            stopping = self.stop.wait(0.5)
            for rank in incomplete_ranks_complement(self.plan, seen):
                seen.add(rank)
                try:
                    counts = task_stats(self.plan.logs, rank)
                except (OSError, ValueError):
                    counts = {"pages": 0, "xml_bytes": 0}
                pages, xml = pages + counts["pages"], xml + counts["xml_bytes"]
                bar.update(self.plan.task_bytes[rank])
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"{pages / elapsed:,.0f} pages/s, {xml / elapsed / 1e6:.1f} MB/s XML", refresh=True)
            if stopping:
                break
        bar.close()


def incomplete_ranks_complement(plan: ScanPlan, seen: set[int]) -> list[int]:
    done = plan.logs / "stage1" / "completions"
    if not done.is_dir():
        return []
    return [int(p.name) for p in done.iterdir() if p.name.isdigit() and int(p.name) not in seen]


def run_local(plan: ScanPlan, out: Path, options: ScanOptions, workers: int) -> ScanSummary:
    """Stage 1 then stage 2 on this machine; returns the summary (from datatrove's stats)."""
    start = time.perf_counter()
    first, second = build_executors(plan, out, options, "local", workers)
    with Progress(plan, options.progress):
        run_stage1(first, plan)
    second.run()
    summary, _ = summary_from_stats(plan)
    summary.seconds = time.perf_counter() - start
    return summary


def run_ray(
    plan: ScanPlan, out: Path, options: ScanOptions, workers: int | None, ray_options: RayOptions
) -> ScanSummary:
    """Both stages as Ray tasks: on the cluster at ``RAY_ADDRESS``, else on a local cluster started here.

    On a real cluster, DUMP, ``--logs`` and ``--out`` must be paths every node sees (a shared file system).
    """
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'wikipersona-data[ray]'") from None
    start = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS") or None
        # a local cluster: this machine only, on loopback
        local = {} if address else {"_node_ip_address": "127.0.0.1", "num_cpus": workers or os.cpu_count() or 1}
        ray.init(address=address, log_to_driver=False, include_dashboard=False, **local)
    try:
        first, second = build_executors(plan, out, options, "ray", workers or -1, ray=ray_options)
        with Progress(plan, options.progress):
            run_stage1(first, plan)
        second.run()
    finally:
        if started_here:
            ray.shutdown()
    if not (plan.logs / "stage2" / "completions" / "00000").is_file():
        raise InputError(f"scan: the reduce task did not complete; see {plan.logs / 'stage2' / 'logs'}")
    summary, _ = summary_from_stats(plan)
    summary.seconds = time.perf_counter() - start
    return summary


def submit_slurm(
    plan: ScanPlan, out: Path, options: ScanOptions, workers: int | None, slurm: SlurmOptions
) -> tuple[str | None, str | None]:
    """Submit stage 1 (a job array) and stage 2 (``--dependency`` on it) with sbatch; returns their job ids.

    Nothing waits here: the table appears at ``out`` when the stage 2 job ends (see docs/scan.md).
    """
    first, second = build_executors(plan, out, options, "slurm", workers or -1, slurm=slurm)
    second.run()  # launches stage 1 first (depends=), then itself with afterok on stage 1
    stage1_id = first.job_id if first.job_id not in (None, -1) else None
    return stage1_id, second.job_id


def options_dict(options: ScanOptions) -> dict[str, Any]:
    return asdict(options)
