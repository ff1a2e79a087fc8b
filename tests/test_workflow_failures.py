"""The one line a failed workflow run ends with, read from snakemake's log, and the guard against jobs
of an interrupted run still in the SLURM queue (a fake squeue here; the real one in test_slurm_workflow)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from chromoformer.workflow.jobs import Failure, describe, leftover_jobs, parse_failures

# snakemake 9's blocks as it writes them: under the SLURM executor a failure block has no wildcards
# (they are in the job's start block of the same jobid) and a retried job fails twice; the local
# executor's failure block (train) has them
LOG = """\
[Fri Dec  4 03:13:33 2026]
rule signals_mark:
    input: S1/meta.csv, /data/bad.bam
    output: S1/store_parts/H3K27ac
    log: logs/S1/signals-H3K27ac.log
    jobid: 7
    wildcards: sample=S1, mark=H3K27ac
    resources: mem_mb=2000, slurm_partition=debug
Job 7 has been submitted with SLURM jobid 12 (log: /w/.snakemake/slurm_logs/rule_signals_mark/S1_H3K27ac/12.log).
[Fri Dec  4 03:13:55 2026]
Error in rule signals_mark:
    message: SLURM-job '12' failed, SLURM status is: 'FAILED'. For further error details see the cluster/cloud log.
    jobid: 7
    input: S1/meta.csv, /data/bad.bam
    output: S1/store_parts/H3K27ac
    log: logs/S1/signals-H3K27ac.log, /w/.snakemake/slurm_logs/rule_signals_mark/S1_H3K27ac/12.log {CHECK}
    external_jobid: 12
localrule train:
    jobid: 3
    wildcards: sample=S1, fold=1
Trying to restart job 7.
Error in rule train:
    jobid: 3
    log: logs/S1/train-fold2.log (check log file(s) for error details)
    wildcards: sample=S1, fold=2
Error in rule signals_mark:
    message: SLURM-job '13' failed, SLURM status is: 'FAILED'.
    jobid: 7
    log: logs/S1/signals-H3K27ac.log, /w/.snakemake/slurm_logs/rule_signals_mark/S1_H3K27ac/13.log {CHECK}
    external_jobid: 13
Error in rule genes:
    jobid: 9
Exiting because a job execution failed. Look above for error messages
""".replace("{CHECK}", "(check log file(s) for error details)")


def test_parse_failures_keeps_each_job_once_with_its_last_try():
    got = parse_failures(LOG)
    assert got == [
        Failure("train", "sample=S1, fold=2", ("logs/S1/train-fold2.log",), ""),
        Failure("signals_mark", "sample=S1, mark=H3K27ac",
                ("logs/S1/signals-H3K27ac.log", "/w/.snakemake/slurm_logs/rule_signals_mark/S1_H3K27ac/13.log"),
                "SLURM-job '13' failed, SLURM status is: 'FAILED'."),
        Failure("genes"),  # no start block, no wildcards: none invented
    ]
    assert parse_failures("nothing failed here\nError in rule\n") == []


def test_describe_names_step_cause_and_both_logs(tmp_path):
    (tmp_path / "logs" / "S1").mkdir(parents=True)
    (tmp_path / "logs" / "S1" / "signals-H3K27ac.log").write_text(
        "INFO x: reading\nchromoformer: error: /data/bad.bam: not a BAM, CRAM or bigWig file\n")
    f = parse_failures(LOG)
    line = describe([f[1], f[0]], tmp_path)
    assert line == (f"step signals_mark (sample=S1, mark=H3K27ac) failed: /data/bad.bam: not a BAM, CRAM or bigWig "
                    f"file; log {tmp_path}/logs/S1/signals-H3K27ac.log; scheduler log "
                    "/w/.snakemake/slurm_logs/rule_signals_mark/S1_H3K27ac/13.log; and 1 more failed step(s)")
    # no log of ours to read: snakemake's message stands in for the cause
    assert describe([f[1]], tmp_path / "elsewhere").startswith(
        "step signals_mark (sample=S1, mark=H3K27ac) failed: SLURM-job '13' failed")
    assert "\n" not in line


def _fake_squeue(tmp_path: Path, body: str) -> dict[str, str]:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    exe = bin_ / "squeue"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}


def test_leftover_jobs_are_those_of_this_directory(tmp_path, monkeypatch):
    wd = tmp_path / "wf"
    wd.mkdir()
    (tmp_path / "link").symlink_to(wd)
    env = _fake_squeue(tmp_path, f"printf '11|{wd}\\n12|/other\\n13|{tmp_path / 'link'}\\n14|\\n'")
    monkeypatch.setenv("PATH", env["PATH"])
    assert leftover_jobs(wd) == ["11", "13"]  # the same folder through a link counts; others do not


def test_no_slurm_or_a_failing_squeue_means_no_leftovers(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert leftover_jobs(tmp_path) == []
    env = _fake_squeue(tmp_path, "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    monkeypatch.setenv("PATH", env["PATH"])
    assert leftover_jobs(tmp_path) == []
