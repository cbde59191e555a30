#!/bin/bash
# Stop the SGE daemons started by sge-up.sh: delete leftover jobs first (so no job processes outlive
# the execd), then stop execd and qmaster by the pids in their pid files. Safe when nothing runs.
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default

command -v qstat >/dev/null || exit 0
if timeout 10 qstat -u '*' 2>/dev/null | grep -q .; then
    timeout 10 qdel -f -u '*' >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        timeout 5 qstat -u '*' 2>/dev/null | grep -q . || break
        sleep 0.2
    done
fi
for pidfile in /var/spool/gridengine/execd/*/execd.pid /var/spool/gridengine/qmaster/qmaster.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    name=$(basename "$pidfile" .pid)
    # only a live process with the daemon's name: a stale pid file may name a reused pid
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "sge_$name" ]; then
        kill -TERM "$pid"
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid"
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        echo "sge-down: stopped $pidfile ($pid)" >&2
    fi
    rm -f "$pidfile"
done
exit 0
