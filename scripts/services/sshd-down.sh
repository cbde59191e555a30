#!/bin/bash
# Stop the test sshd started by sshd-up.sh (by its pidfile). Keys stay, so the next start is fast;
# pass --purge to delete $LWR_SSHD_DIR as well.
set -uo pipefail
DIR=${LWR_SSHD_DIR:-/var/lib/lwr-test-sshd}
if [ -s "$DIR/sshd.pid" ]; then
    pid=$(cat "$DIR/sshd.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "[sshd-down] stopped sshd ($pid)" >&2
    fi
    rm -f "$DIR/sshd.pid"
fi
if [ "${1:-}" = "--purge" ] && [ -d "$DIR" ]; then
    rm -rf "$DIR"
    echo "[sshd-down] removed $DIR" >&2
fi
exit 0
