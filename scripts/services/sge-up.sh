#!/bin/bash
# Install (once) and start a one-node Son of Grid Engine with DRMAA on this host, without systemd.
#
# Idempotent: a second run only checks that the daemons answer (about a second). Writes the
# environment clients need to scripts/services/sge.env (override with SGE_ENV_FILE), which tests,
# CI and local_env.sh source. Also installs `sudo`, which the queued_external_drmaa tests use.
#
# Why the odd steps: Debian's packages never start daemons here (no systemd, policy-rc.d refuses);
# /etc/hosts names 127.0.0.1 "localhost" first, so SGE refuses every client until host_aliases
# says both names are this host; the default min_uid/min_gid of 1000 refuse root's jobs; and
# libdrmaa needs more static TLS than glibc reserves (GLIBC_TUNABLES, set before Python starts).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ENV_FILE=${SGE_ENV_FILE:-$HERE/sge.env}
export DEBIAN_FRONTEND=noninteractive
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
HOST=$(hostname)
COMMON=$SGE_ROOT/$SGE_CELL/common
QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
LIBDRMAA=/usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0
PACKAGES=(gridengine-master gridengine-exec gridengine-client gridengine-drmaa1.0 sudo)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { echo "sge-up: $*" >&2; }

# true if the pid file names a live process called $2 (a stale file may name a reused pid)
running() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

install_packages() {
    dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1 && return 0
    local pkg
    for pkg in gridengine-common gridengine-master gridengine-exec gridengine-client; do
        debconf-set-selections <<SEL
$pkg shared/gridengineconfig boolean true
$pkg shared/gridenginecell string $SGE_CELL
$pkg shared/gridenginemaster string $HOST
SEL
    done
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    say "packages installed"
}

fix_host_names() {
    echo "$HOST" >"$COMMON/act_qmaster"
    echo "$HOST localhost" >"$COMMON/host_aliases"
    chown sgeadmin:sgeadmin "$COMMON/act_qmaster" "$COMMON/host_aliases"
    mkdir -p /var/run/gridengine
    chown sgeadmin:sgeadmin /var/run/gridengine
}

start_qmaster() {
    if ! running "$QMASTER_PID" sge_qmaster; then
        /usr/sbin/sge_qmaster
    fi
    local i
    for i in $(seq 150); do
        qconf -sh >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "sge_qmaster does not answer after 30 s"
    return 1
}

configure_cluster() {
    qconf -sql 2>/dev/null | grep -qx all.q && return 0
    qconf -sconf | grep -v '^#' \
        | sed -e 's/^min_uid .*/min_uid                      0/' \
              -e 's/^min_gid .*/min_gid                      0/' >"$WORK/global"
    qconf -Mconf "$WORK/global" >/dev/null 2>&1
    qconf -ssconf \
        | sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
              -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
              -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' >"$WORK/sched"
    qconf -Msconf "$WORK/sched" >/dev/null 2>&1
    qconf -as "$HOST" >/dev/null 2>&1
    printf '%s\n' "hostname $HOST" "load_scaling NONE" "complex_values NONE" "user_lists NONE" \
        "xuser_lists NONE" "projects NONE" "xprojects NONE" "usage_scaling NONE" \
        "report_variables NONE" >"$WORK/exechost"
    qconf -sel 2>/dev/null | grep -qx "$HOST" || qconf -Ae "$WORK/exechost" >/dev/null 2>&1
    # start from SGE's own queue template and change only what matters here
    qconf -sq 2>/dev/null >"$WORK/queue.tmpl" || true
    {
        echo "qname all.q"
        echo "hostlist $HOST"
        echo "slots $(nproc)"
        echo "shell /bin/bash"
        echo "shell_start_mode posix_compliant"
        echo "rerun FALSE"
        echo "tmpdir /tmp"
        echo "pe_list NONE"
        echo "load_thresholds NONE"
        grep -v -E '^(qname|hostlist|slots|shell|shell_start_mode|rerun|tmpdir|pe_list|load_thresholds)[[:space:]]' \
            "$WORK/queue.tmpl"
    } >"$WORK/all.q"
    qconf -Aq "$WORK/all.q" >/dev/null 2>&1
    say "cluster configured: all.q with $(nproc) slots on $HOST"
}

queue_ready() {
    # the queue instance line has exactly 5 fields once execd reports and no state flag is set
    local line
    line=$(qstat -f -q all.q 2>/dev/null | grep "^all.q@" || true)
    [ -n "$line" ] && [ "$(echo "$line" | awk '{print NF}')" -eq 5 ]
}

start_execd() {
    queue_ready && return 0
    local pidfile up=""
    for pidfile in /var/spool/gridengine/execd/*/execd.pid; do
        running "$pidfile" sge_execd && up=yes
    done
    [ -n "$up" ] || /usr/sbin/sge_execd
    local i
    for i in $(seq 150); do
        queue_ready && return 0
        sleep 0.2
    done
    qstat -f >&2 || true
    say "queue all.q not ready after 30 s"
    return 1
}

write_env() {
    cat >"$ENV_FILE" <<ENV
# written by scripts/services/sge-up.sh: the environment DRMAA clients need (source it)
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export DRMAA_LIBRARY_PATH=$LIBDRMAA
export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384
ENV
}

install_packages
fix_host_names
start_qmaster
configure_cluster
start_execd
write_env
say "ready; environment in $ENV_FILE"
cat "$ENV_FILE"
