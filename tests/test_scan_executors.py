"""The scan on datatrove's Slurm and Ray executors.

Slurm, twice. (1) ``sbatch``, ``srun`` and ``scontrol`` stand-ins on PATH: ``sbatch`` records the script datatrove
generated and its arguments; the test checks the directives, then runs each script as Slurm would (every array
index with ``SLURM_ARRAY_TASK_ID``, stage 2 after stage 1), and the table must equal the local one. (2) A real
single-node Slurm (Debian's slurmctld + slurmd, started here on loopback with auth/none, no munge, no root
services): the scan is submitted, Slurm runs the array and the dependent reduce job, the table must equal the
local one. (2) is skipped when the Slurm daemons are not installed (``.ci/run`` installs them).
Ray: a real local Ray cluster (loopback only), both stages as Ray tasks.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wiki_dump_fixtures import small_wiki, write_multistream, write_xml

from wikipersona_data.cli import main


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_multistream(tmp_path_factory.mktemp("multi"), small_wiki(), per_stream=2)


@pytest.fixture(scope="module")
def local_table(tmp_path_factory: pytest.TempPathFactory, multi: tuple[Path, Path]) -> bytes:
    out = tmp_path_factory.mktemp("local") / "t.jsonl"
    assert main(["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--no-progress"]) == 0
    return out.read_bytes()


FAKE_SBATCH = """#!/usr/bin/env bash
# records each submission: args and script, and answers as sbatch does
dir="$FAKE_SLURM_DIR"; n=$(( $(ls "$dir"/job-*.sh 2>/dev/null | wc -l) + 100 ))
script="${@: -1}"; cp "$script" "$dir/job-$n.sh"; printf '%s\\n' "${@:1:$#-1}" > "$dir/job-$n.args"
echo "Submitted batch job $n"
"""
FAKE_SRUN = """#!/usr/bin/env bash
# runs the command after srun's options (one task, this node)
while [[ "$1" == -* ]]; do if [[ "$1" == "-n" ]]; then shift; fi; shift; done
exec "$@"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
if [[ "$1 $2" == "show hostnames" ]]; then echo localhost; fi
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_dir.mkdir()
    jobs.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(jobs))
    return jobs


def _directives(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, flags=re.MULTILINE))


def _run_job(jobs: Path, job: int) -> None:
    """What Slurm does with a submitted array job: every index, one after the other, on this node."""
    script = (jobs / f"job-{job}.sh").read_text()
    first, last = map(int, _directives(script)["array"].split("%")[0].split("-"))
    offset = re.search(r"RUN_OFFSET=(\d+)", (jobs / f"job-{job}.args").read_text()).group(1)  # type: ignore[union-attr]
    for index in range(first, last + 1):
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(index), "RUN_OFFSET": offset, "SLURM_NODELIST": "localhost"}
        env["SLURM_JOB_ID"] = str(job)
        done = subprocess.run(["bash", str(jobs / f"job-{job}.sh")], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]


def test_slurm_scripts_are_right_and_run_to_the_same_table(
    tmp_path: Path, multi: tuple[Path, Path], local_table: bytes, fake_slurm: Path, capsys
) -> None:
    out, logs = tmp_path / "people.jsonl", tmp_path / "logs"
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--logs", str(logs)]
    args += ["--executor", "slurm", "--tasks", "3", "--workers", "2", "--slurm-partition", "cpu", "--slurm-time"]
    args += ["01:30:00", "--slurm-cpus-per-task", "2", "--slurm-sbatch-arg", "account=wiki", "--no-progress"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "stage 1 Slurm job 100 (3 of 3 tasks to run), stage 2 job 102 writes" in said
    submitted = sorted(fake_slurm.glob("job-*.sh"))
    # stage 1 array, its merge_stats job, stage 2 (afterok on stage 1), its merge_stats job
    assert [p.name for p in submitted] == ["job-100.sh", "job-101.sh", "job-102.sh", "job-103.sh"]
    stage1, stage2 = (fake_slurm / "job-100.sh").read_text(), (fake_slurm / "job-102.sh").read_text()
    d1, d2 = _directives(stage1), _directives(stage2)
    assert d1["array"] == "0-2%2" and d1["partition"] == "cpu" and d1["time"] == "01:30:00"
    assert d1["cpus-per-task"] == "2" and d1["mem-per-cpu"] == "2G" and d1["account"] == "wiki"
    assert d1["job-name"] == "wikipersona-scan" and "requeue" in d1
    assert f"launch_pickled_pipeline {logs.resolve() / 'stage1' / 'executor.pik'}" in stage1
    assert f"export PATH={Path(sys.executable).parent}:$PATH" in stage1  # the tasks find this environment
    assert d2["array"] == "0-0" and d2["job-name"] == "wikipersona-scan-reduce" and d2["cpus-per-task"] == "1"
    assert "--dependency=afterok:100" in (fake_slurm / "job-102.args").read_text()
    assert not out.exists()  # nothing ran yet: sbatch only queued it

    _run_job(fake_slurm, 100)
    assert sorted(p.name for p in (logs / "stage1" / "completions").iterdir()) == ["00000", "00001", "00002"]
    _run_job(fake_slurm, 102)
    assert out.read_bytes() == local_table

    # a lost task: the same command resubmits only that rank
    (logs / "stage1" / "completions" / "00001").unlink()
    for path in fake_slurm.iterdir():
        path.unlink()
    assert main(args) == 0
    assert "(1 of 3 tasks to run)" in capsys.readouterr().out
    assert _directives((fake_slurm / "job-100.sh").read_text())["array"] == "0-0%2"
    assert (logs / "stage1" / "ranks_to_run.json").read_text().strip() == "[1]"
    _run_job(fake_slurm, 100)
    _run_job(fake_slurm, 102)
    assert out.read_bytes() == local_table


def test_slurm_reduce_refuses_a_dump_without_pages(tmp_path: Path, fake_slurm: Path) -> None:
    """On Slurm nothing waits for the tasks, so the reduce job is what refuses an empty dump: it fails (Slurm
    marks the job failed) with the same line as the local scan, and writes no table."""
    empty, out = write_xml(tmp_path / "empty.xml.bz2", []), tmp_path / "t.jsonl"
    args = ["scan", str(empty), "--out", str(out), "--logs", str(tmp_path / "logs"), "--executor", "slurm"]
    assert main([*args, "--slurm-partition", "cpu", "--no-progress"]) == 0
    _run_job(fake_slurm, 100)
    script = fake_slurm / "job-102.sh"
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "RUN_OFFSET": "0", "SLURM_NODELIST": "localhost"}
    done = subprocess.run(["bash", str(script)], env={**env, "SLURM_JOB_ID": "102"}, capture_output=True, text=True)
    assert done.returncode != 0
    assert f"empty dump: {empty.resolve()} contains no pages" in done.stderr + _task_log(tmp_path / "logs")
    assert not out.exists()


def _task_log(logs: Path) -> str:
    return "".join(p.read_text() for p in (logs / "stage2" / "logs").glob("task_*.log"))


def test_slurm_array_has_no_concurrency_cap_unless_workers_is_given(
    tmp_path: Path, multi: tuple[Path, Path], fake_slurm: Path
) -> None:
    """--workers defaults to this machine's cores only for the local executor; a cluster is not capped by it."""
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(tmp_path / "t.jsonl"), "--tasks", "4"]
    assert main([*args, "--executor", "slurm", "--slurm-partition", "cpu", "--no-progress"]) == 0
    assert _directives((fake_slurm / "job-100.sh").read_text())["array"] == "0-3"


def test_slurm_needs_a_partition_and_an_out(tmp_path: Path, multi: tuple[Path, Path], capsys) -> None:
    base = ["scan", str(multi[0]), "--index", str(multi[1]), "--executor", "slurm", "--logs", str(tmp_path / "l")]
    assert main(base) == 2
    assert "--executor slurm needs --out" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "--executor slurm needs --slurm-partition" in capsys.readouterr().err
    bad = [*base, "--out", str(tmp_path / "t.jsonl"), "--slurm-partition", "p", "--slurm-sbatch-arg", "nokey"]
    assert main(bad) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SLURM_CONF = """ClusterName=wpscan
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/none
CredType=cred/none
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def real_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """slurmctld + slurmd of this machine's Slurm on loopback ports, stopped (by pid) at the end."""
    ctld, slurmd = shutil.which("slurmctld") or "/usr/sbin/slurmctld", shutil.which("slurmd") or "/usr/sbin/slurmd"
    if not (Path(ctld).is_file() and Path(slurmd).is_file() and shutil.which("sbatch")):
        pytest.skip("Slurm daemons not installed (Debian: apt-get install slurmctld slurmd slurm-client)")
    root = tmp_path / "slurm"
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(host=host, ctld_port=_free_port(), d_port=_free_port(), user=getpass.getuser(), root=root)
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_NODELIST"):
        monkeypatch.delenv(name, raising=False)
    subprocess.run([ctld, "-f", str(conf), "-i"], check=True, timeout=30)  # daemonises
    subprocess.run([slurmd, "-f", str(conf), "-N", host], check=True, timeout=30)
    try:
        deadline = time.monotonic() + 30
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                pytest.fail("single-node Slurm did not come up: " + (root / "slurmctld.log").read_text()[-2000:])
            time.sleep(0.2)
        yield root
    finally:
        for pidfile in ("slurmd.pid", "slurmctld.pid"):
            path = root / pidfile
            if path.is_file():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(path.read_text().split()[0]), 15)


def test_real_single_node_slurm_runs_the_scan(
    tmp_path: Path, multi: tuple[Path, Path], local_table: bytes, real_slurm: Path, capsys
) -> None:
    out, logs = tmp_path / "people.jsonl", tmp_path / "logs"
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--logs", str(logs)]
    args += ["--executor", "slurm", "--tasks", "3", "--workers", "2", "--slurm-partition", "debug"]
    args += ["--slurm-time", "00:10:00", "--slurm-mem-per-cpu-gb", "1", "--no-progress"]
    assert main(args) == 0
    assert "stage 1 Slurm job" in capsys.readouterr().out
    deadline = time.monotonic() + 240
    while subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, subprocess.run(["squeue"], capture_output=True, text=True).stdout
        time.sleep(0.5)
    slurm_logs = "".join(p.read_text() for p in (logs / "stage1" / "slurm_logs").glob("*.out"))
    assert out.is_file(), slurm_logs[-3000:]
    assert out.read_bytes() == local_table
    assert sorted(p.name for p in (logs / "stage1" / "completions").iterdir()) == ["00000", "00001", "00002"]
    assert (logs / "stage1" / "stats.json").is_file()  # datatrove's merge_stats job ran after the array


@pytest.mark.slow
def test_ray_local_cluster_gives_the_same_table(
    tmp_path: Path, multi: tuple[Path, Path], local_table: bytes, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster on loopback, started and stopped here
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token written to ~/.ray for a throwaway local cluster
    out, logs = tmp_path / "people.jsonl", tmp_path / "logs"
    args = ["scan", str(multi[0]), "--index", str(multi[1]), "--out", str(out), "--logs", str(logs)]
    assert main([*args, "--executor", "ray", "--tasks", "3", "--workers", "2", "--no-progress"]) == 0
    assert out.read_bytes() == local_table
    assert "pages=12 articles=7 redirects=4 people=4 living=3 errors=0" in capsys.readouterr().out
    assert sorted(p.name for p in (logs / "stage1" / "completions").iterdir()) == ["00000", "00001", "00002"]
    assert (logs / "stage1" / "stats.json").is_file()  # Ray merged the per-task stats
