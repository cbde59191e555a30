#!/bin/bash
# Stop the one-node Slurm started by slurm-up.sh, by the PIDs in its pidfiles.
#
# Jobs are cancelled first: with proctrack/linuxproc their processes would outlive slurmd.
set -uo pipefail

if command -v scontrol >/dev/null && timeout 5 scontrol ping >/dev/null 2>&1; then
    ids=$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null || true)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $ids >/dev/null 2>&1 || true
        for _ in $(seq 50); do
            [ -z "$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

for pf in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    [ -s "$pf" ] || continue
    pid=$(cat "$pf")
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "slurm-down: stopped $pf ($pid)" >&2
done
exit 0
