#!/usr/bin/env bash
# A "cluster" of background processes on this machine, for snakemake's cluster-generic executor:
# submit a job script, print its job id (here the PID). Used by tests/test_workflow.py to drive
# the same code path as a real scheduler (submit, poll status, collect outputs).
set -euo pipefail
jobscript="$1"
dir="${LOCAL_CLUSTER_DIR:-.local-cluster}"
mkdir -p "$dir"
# the job must not keep snakemake's pipe open: its output goes to a log next to its exit code
( bash "$jobscript" > "$dir/job.$BASHPID.log" 2>&1; echo $? > "$dir/$BASHPID.exit" ) > /dev/null 2>&1 < /dev/null &
echo $!
