#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, everything under DIR (munge key and socket,
# slurm.conf, state, logs); used by the Slurm test and bench/cluster. Needs root, munge
# and slurm-wlm (tools/setup.sh). Usage:
#   tools/slurm_local.sh start DIR [CPUS]   # prints "export SLURM_CONF=DIR/slurm.conf"
#   tools/slurm_local.sh stop DIR           # stops the daemons started by start (by pid)
#   tools/slurm_local.sh check              # exit 0 when this machine can start the daemons
set -euo pipefail

need() {
  for b in munged munge slurmctld slurmd sbatch squeue scancel sinfo; do
    command -v "$b" >/dev/null 2>&1 || { echo "slurm_local: $b is not installed (apt-get install slurm-wlm munge)"; return 1; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "slurm_local: the daemons need root (SlurmUser=root)"; return 1; }
}

# Two free TCP ports, so the test never meets another cluster or another run of itself.
free_ports() {
  /usr/bin/python3 - <<'EOF'
import socket
ss = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
}

stop_pid() { # pidfile: TERM, wait up to 10 s, then KILL; only the process the file names
  local f="$1" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  rm -f "$f"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd="${1:-}"
case "$cmd" in
check)
  need
  ;;
start)
  need
  dir="$(mkdir -p "$2" && cd "$2" && pwd)"
  cpus="${3:-2}"
  host="$(hostname -s)"
  chmod 755 "$dir"
  mkdir -p "$dir/ctld" "$dir/slurmd" "$dir/log"
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 600 "$dir/munge.key"
  munged --key-file="$dir/munge.key" --socket="$dir/munge.sock" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed" --force
  read -r ctld_port slurmd_port < <(free_ports)
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  cat >"$dir/slurm.conf" <<EOF
ClusterName=qslocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/slurmd
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
SlurmdTimeout=30
SlurmctldTimeout=30
MinJobAge=600
KillWait=2
InactiveLimit=0
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" -i
  slurmd -f "$SLURM_CONF"
  # Ready when the node is idle (slurmd registered with slurmctld).
  for _ in $(seq 150); do
    state="$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)"
    [ "$state" = "idle" ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
    sleep 0.2
  done
  echo "slurm_local: node not idle after 30 s (state '${state:-none}'); logs in $dir/log" >&2
  "$0" stop "$dir"
  exit 1
  ;;
stop)
  dir="$(cd "$2" && pwd)"
  if [ -f "$dir/slurmctld.pid" ]; then # cancel what is left so no job step outlives the daemons
    SLURM_CONF="$dir/slurm.conf" scancel --user=root 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid"
  # slurmstepd processes of a job the daemons left behind (they carry the job's conf path)
  # A slurmstepd the daemons left behind carries this cluster's SLURM_CONF: kill it by pid.
  for e in /proc/[0-9]*/environ; do
    grep -qa "SLURM_CONF=$dir/slurm.conf" "$e" 2>/dev/null || continue
    p="${e#/proc/}"; p="${p%/environ}"
    [ "$p" != "$$" ] && kill -KILL "$p" 2>/dev/null || true
  done
  stop_pid "$dir/munged.pid"
  ;;
*)
  echo "usage: $0 start DIR [CPUS] | stop DIR | check" >&2
  exit 2
  ;;
esac
