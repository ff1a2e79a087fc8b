#!/usr/bin/env bash
# A real single-node SLURM cluster with accounting, in one folder, for tests and for trying the
# profile before a real cluster: munged, MariaDB, slurmdbd, slurmctld and slurmd, all on localhost.
#
#   docs/cluster/test-cluster.sh start DIR   # write the configs into DIR, start the daemons, wait
#                                            # until the node is idle; prints "export SLURM_CONF=..."
#   source DIR/env                           # then sbatch, squeue, sacct, scancel talk to it
#   docs/cluster/test-cluster.sh stop DIR    # stop every daemon this script started (by PID)
#
# Needs root and Debian's slurm-wlm, slurmdbd, munge and mariadb-server (apt-get install ...);
# installs nothing. Every file (configs, state, logs, database, sockets) lives under DIR, the ports
# are free ones picked at start, and the daemons' PIDs are listed in DIR/pids, so `stop` ends exactly
# those and nothing else (a system munged or MariaDB is left alone). One file outside DIR: a link
# /etc/slurm/slurm.conf -> DIR/slurm.conf while the cluster runs (see start), refused if that path
# exists already.
# Variables: CLUSTER_NAME (cftest), PARTITION (debug), ACCOUNT (mylab), CPUS (2), MEMORY_MB (20000).
set -euo pipefail

usage() { echo "usage: $0 start|stop|check DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd="$1"
D="$(mkdir -p "$2" && cd "$2" && pwd)"
CLUSTER_NAME="${CLUSTER_NAME:-cftest}"
PARTITION="${PARTITION:-debug}"
ACCOUNT="${ACCOUNT:-mylab}"
CPUS="${CPUS:-2}"
MEMORY_MB="${MEMORY_MB:-20000}"

# What is missing, in one line (exit 3), before anything is started.
check() {
  [ "$(id -u)" -eq 0 ] || { echo "test cluster: needs root (the daemons run as root here)"; return 3; }
  local missing=()
  for exe in munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sbatch sacct sacctmgr \
             sinfo scontrol; do
    command -v "$exe" >/dev/null 2>&1 || missing+=("$exe")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test cluster: not installed: ${missing[*]} (apt-get install slurm-wlm slurmdbd munge mariadb-server)"
    return 3
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Start "$@" in the background (its own session, output to log $1), record its PID.
spawn() {
  local name="$1"; shift
  setsid "$@" > "$D/log/$name.out" 2>&1 < /dev/null &
  echo "$! $name" >> "$D/pids"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local t="$1" what="$2"; shift 2
  local end=$((SECONDS + t))
  while [ $SECONDS -lt $end ]; do timeout 10 "$@" >/dev/null 2>&1 && return 0; sleep 0.3; done
  echo "test cluster: $what did not come up within $t s; logs in $D/log" >&2
  tail -n 20 "$D"/log/*.log >&2 || true
  stop_all
  exit 1
}

stop_all() {
  # the default-path link made by start, only if it still points at this cluster's config
  if [ -f "$D/linked" ] && [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$(cat "$D/linked")" ]; then
    rm -f /etc/slurm/slurm.conf
  fi
  rm -f "$D/linked"
  [ -f "$D/pids" ] || return 0
  local pid name
  # jobs first, while slurmd can still end them: cancel, and wait (20 s at most) for the queue to empty
  if SLURM_CONF="$D/slurm.conf" timeout 10 scontrol ping >/dev/null 2>&1; then
    SLURM_CONF="$D/slurm.conf" timeout 10 scancel --full --quiet --partition "$PARTITION" || true
    for _ in $(seq 1 40); do
      [ -z "$(SLURM_CONF="$D/slurm.conf" timeout 10 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  # reverse order of start: slurmd, slurmctld, slurmdbd, mariadb, munged
  tac "$D/pids" | while read -r pid name; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    while read -r pid name; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$D/pids"
    [ $alive -eq 0 ] && break
    sleep 0.2
  done
  while read -r pid name; do kill -KILL "$pid" 2>/dev/null || true; done < "$D/pids"
  # what slurmd started and a dead node left behind: this cluster's slurmstepd and job processes
  # (SLURM_CONF of this cluster in their environment, and a job id or the slurmstepd name)
  for env in /proc/[0-9]*/environ; do
    pid="${env#/proc/}"; pid="${pid%/environ}"
    [ "$pid" = "$$" ] && continue
    tr '\0' '\n' < "$env" 2>/dev/null | grep -qx "SLURM_CONF=$D/slurm.conf" || continue
    if tr '\0' '\n' < "$env" 2>/dev/null | grep -q '^SLURM_JOB_ID=' \
       || grep -q '^slurmstepd' "/proc/$pid/cmdline" 2>/dev/null; then
      echo "$pid job-process" >> "$D/pids"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  mv "$D/pids" "$D/pids.stopped"
}

start() {
  check || exit 3
  [ ! -f "$D/pids" ] || { echo "test cluster: $D/pids exists: already started (stop it first)" >&2; exit 2; }
  mkdir -p "$D"/{log,munge,state,spool,db}
  chmod 755 "$D/munge"
  : > "$D/pids"
  local host db_port dbd_port ctld_port slurmd_port
  host="$(hostname -s)"
  db_port=$(free_port); dbd_port=$(free_port); ctld_port=$(free_port); slurmd_port=$(free_port)

  # 1. munge: the key and socket of this cluster only
  mungekey --create --keyfile="$D/munge/munge.key" --force
  chmod 600 "$D/munge/munge.key"
  spawn munged munged --foreground --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/munge.seed"
  wait_for 20 munged test -S "$D/munge/munge.socket"

  # 2. MariaDB on 127.0.0.1:$db_port, for slurmdbd
  mariadb-install-db --no-defaults --datadir="$D/db" --user=root --auth-root-authentication-method=socket \
    --skip-test-db > "$D/log/mariadb-install.log" 2>&1
  spawn mariadbd mariadbd --no-defaults --datadir="$D/db" --user=root --socket="$D/mariadb.sock" \
    --port="$db_port" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$D/mariadb.pid" \
    --log-error="$D/log/mariadb.log" --innodb-buffer-pool-size=64M
  wait_for 60 mariadb mariadb --no-defaults -S "$D/mariadb.sock" -u root -e "SELECT 1"
  mariadb --no-defaults -S "$D/mariadb.sock" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

  # 3. the configs (slurmdbd reads slurmdbd.conf beside slurm.conf; it must be 600). Clients reach
  #    slurmctld through AuthInfo's munge socket and slurmdbd through AccountingStoragePass's.
  cat > "$D/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurm-test
StorageLoc=slurm_acct_db
LogFile=$D/log/slurmdbd.log
PidFile=$D/slurmdbd.pid
EOF
  chmod 600 "$D/slurmdbd.conf"
  cat > "$D/slurm.conf" <<EOF
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=1
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
AccountingStoragePass=$D/munge/munge.socket
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStoreFlags=job_comment
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  echo "export SLURM_CONF=$D/slurm.conf" > "$D/env"
  export SLURM_CONF="$D/slurm.conf"
  # Commands inside a job may not see SLURM_CONF (snakemake's slurm-jobstep plugin removes every
  # SLURM_* variable but the job's ids before its srun), so the config must also be where SLURM
  # looks by default. An existing /etc/slurm/slurm.conf (a real cluster's) is never touched.
  if [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    echo "test cluster: /etc/slurm/slurm.conf exists (a real cluster here?); not starting a test cluster" >&2
    stop_all; exit 3
  fi
  mkdir -p /etc/slurm
  ln -s "$D/slurm.conf" /etc/slurm/slurm.conf
  echo "$D/slurm.conf" > "$D/linked"

  # 4. accounting: slurmdbd, then the cluster, the account and root's association
  spawn slurmdbd slurmdbd -D
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER_NAME" > /dev/null
  sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER_NAME" > /dev/null
  sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER_NAME" > /dev/null

  # 5. the controller and the one node
  spawn slurmctld slurmctld -D -c
  wait_for 60 slurmctld scontrol ping
  spawn slurmd slurmd -D -N "$host"
  wait_for 60 "node $host (idle)" bash -c "sinfo -h -n '$host' -o %T | grep -qx idle"
  echo "export SLURM_CONF=$D/slurm.conf"
}

case "$cmd" in
  check) check ;;
  start) start ;;
  stop) stop_all ;;
  *) usage ;;
esac
