#!/usr/bin/env bash
# Status of a job submitted by local-submit.sh: running, success or failed (snakemake's contract).
jobid="$1"
dir="${LOCAL_CLUSTER_DIR:-.local-cluster}"
if [ -f "$dir/$jobid.exit" ]; then
  [ "$(cat "$dir/$jobid.exit")" = "0" ] && echo success || echo failed
elif kill -0 "$jobid" 2>/dev/null; then
  echo running
else
  sleep 1  # the exit file is written just after the job ends
  if [ -f "$dir/$jobid.exit" ] && [ "$(cat "$dir/$jobid.exit")" = "0" ]; then echo success; else echo failed; fi
fi
