#!/bin/bash
# Start a one-node Slurm on localhost for LWR's integration tests (Debian 12, as root, no systemd).
#
# Usage:  bash scripts/services/slurm-up.sh      (idempotent: returns at once if Slurm already answers)
# Stop:   bash scripts/services/slurm-down.sh
# Exports nothing: Slurm's clients (sbatch, squeue, ...) find the cluster through /etc/slurm/slurm.conf.
# Progress goes to stderr; on success the last stdout line is "slurm: up".
#
# Choices, each one forced by this kind of machine:
#  * proctrack/linuxproc + task/none: proctrack/cgroup never starts a job here and drains the node.
#  * RealMemory below what `slurmd -C` detects: more would drain the node ("Low RealMemory").
#  * jobcomp/filetxt: `sacct -c` can then read finished jobs without a slurmdbd.
#  * MinJobAge=300: finished jobs stay in `squeue -t all` for five minutes.
set -euo pipefail
t0=$(date +%s.%N)
say() { awk -v a="$(date +%s.%N)" -v b="$t0" -v m="$*" 'BEGIN{printf "[slurm-up %5.1fs] %s\n", a-b, m}' >&2; }

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }
is_up() {
    timeout 5 scontrol ping >/dev/null 2>&1 || return 1
    case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac
}

if command -v scontrol >/dev/null && is_up; then
    say "already running (node $(node_state))"
    echo "slurm: up"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    say "installed slurm-wlm and munge"
fi

H=$(hostname)   # slurmd looks up its NodeName by the host name
getent hosts "$H" >/dev/null || echo "127.0.0.1 $H" >> /etc/hosts
CPUS=$(nproc)
MEM=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') * 9 / 10 ))

mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge
chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm

conf=$(cat <<EOF
# Written by LWR's scripts/services/slurm-up.sh: a one-node test cluster.
ClusterName=lwrtest
SlurmctldHost=${H}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
KillWait=5
NodeName=${H} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
[ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" = "$conf" ] || printf '%s\n' "$conf" > /etc/slurm/slurm.conf

# munge: the package's postinst normally creates the key
chown munge:munge /run/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null
say "munged up"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! alive /run/slurmctld.pid; then
    # -c: forget saved state, e.g. a node left DRAINED by an earlier broken run
    /usr/sbin/slurmctld -c
fi
for _ in $(seq 100); do timeout 5 scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
timeout 5 scontrol ping >/dev/null
say "slurmctld up (pid $(cat /run/slurmctld.pid))"

alive /run/slurmd.pid || /usr/sbin/slurmd
st=""
for _ in $(seq 100); do
    st=$(node_state)
    case "$st" in
        idle|mixed|allocated) break;;
        drain*|down*) scontrol update NodeName="$H" State=RESUME >/dev/null 2>&1 || true;;
    esac
    sleep 0.2
done
say "slurmd up (pid $(cat /run/slurmd.pid)), node $H is ${st:-unknown}"
case "$st" in idle|mixed|allocated) echo "slurm: up";; *) sinfo >&2; exit 1;; esac
