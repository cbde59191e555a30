#!/bin/bash
# Start a private sshd on 127.0.0.1 for LWR's ssh-shell tests, with a key authorised for root.
#
# Usage:  eval "$(bash scripts/services/sshd-up.sh)"     (idempotent; fast when already running)
# Stop:   bash scripts/services/sshd-down.sh
#
# It touches neither /etc/ssh nor ~/.ssh: config, host key, client key, authorized_keys and
# known_hosts all live in $LWR_SSHD_DIR (default /var/lib/lwr-test-sshd, root-only, because sshd's
# StrictModes refuses key files under a world-writable directory such as /tmp).
# Port: $LWR_SSHD_PORT if set, else the first free port from 2222 on.
#
# stdout: export lines for the tests, also written to scripts/services/sshd.env (override with
# SSHD_ENV_FILE; run_tests.sh sources scripts/services/*.env) and to $LWR_SSHD_DIR/env:
#   LWR_TEST_SSH_HOST LWR_TEST_SSH_PORT LWR_TEST_SSH_USER LWR_TEST_SSH_KEY LWR_TEST_SSH_KNOWN_HOSTS
# stderr: progress.
set -euo pipefail
say() { echo "[sshd-up] $*" >&2; }

DIR=${LWR_SSHD_DIR:-/var/lib/lwr-test-sshd}
HERE=$(cd "$(dirname "$0")" && pwd)
ENV_FILE=${SSHD_ENV_FILE:-$HERE/sshd.env}
HOST=127.0.0.1
USER_NAME=$(id -un)

listening() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
alive() { [ -s "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; }
emit_env() {
    cat > "$DIR/env" <<EOF
# written by scripts/services/sshd-up.sh: where the test sshd listens and how to log in (source it)
export LWR_TEST_SSH_HOST=$HOST
export LWR_TEST_SSH_PORT=$1
export LWR_TEST_SSH_USER=$USER_NAME
export LWR_TEST_SSH_KEY=$DIR/id_ed25519
export LWR_TEST_SSH_KNOWN_HOSTS=$DIR/known_hosts
EOF
    cp "$DIR/env" "$ENV_FILE"
    cat "$DIR/env"
}
login_works() {
    timeout 15 ssh -T -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 \
        -o UserKnownHostsFile="$DIR/known_hosts" -o IdentitiesOnly=yes -i "$DIR/id_ed25519" \
        -p "$1" -l "$USER_NAME" "$HOST" true 2>/dev/null
}

# ------------------------------------------------------------------ install
# scp and rsync are the clients of the remote_scp_transfer / remote_rsync_transfer staging tests
# (rsync also runs on the sshd's side); sftp-server serves scp, which speaks SFTP since OpenSSH 9.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keyscan >/dev/null || ! command -v scp >/dev/null \
        || ! command -v rsync >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends openssh-server openssh-client rsync >/dev/null
    say "installed openssh-server, openssh-client and rsync"
fi

# ------------------------------------------------------------------ already running?
if alive && [ -s "$DIR/port" ] && login_works "$(cat "$DIR/port")"; then
    if ! grep -q '^Subsystem sftp' "$DIR/sshd_config"; then
        # an sshd started by an older version of this script: add SFTP and reload (SIGHUP keeps
        # the port and the sessions already open)
        echo "Subsystem sftp internal-sftp" >> "$DIR/sshd_config"
        /usr/sbin/sshd -t -f "$DIR/sshd_config"
        kill -HUP "$(cat "$DIR/sshd.pid")"
        for _ in $(seq 50); do login_works "$(cat "$DIR/port")" && break; sleep 0.1; done
        say "reloaded with the SFTP subsystem"
    fi
    say "already running on port $(cat "$DIR/port") (pid $(cat "$DIR/sshd.pid"))"
    emit_env "$(cat "$DIR/port")"
    exit 0
fi

# ------------------------------------------------------------------ keys and config
install -d -m 0700 "$DIR"
install -d -m 0755 /run/sshd   # privilege separation directory sshd insists on
[ -s "$DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/ssh_host_ed25519_key"
[ -s "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C lwr-test -f "$DIR/id_ed25519"
cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
chmod 0600 "$DIR/authorized_keys"

if alive; then   # ours, but not answering as it should: restart it
    kill "$(cat "$DIR/sshd.pid")" 2>/dev/null || true
    sleep 0.3
fi
PORT=${LWR_SSHD_PORT:-}
if [ -z "$PORT" ]; then
    for candidate in $(seq 2222 2262); do
        listening "$candidate" || { PORT=$candidate; break; }
    done
    [ -n "$PORT" ] || { say "no free port in 2222-2262"; exit 1; }
elif listening "$PORT"; then
    say "port $PORT is taken by another program"; exit 1
fi

cat > "$DIR/sshd_config" <<EOF
# Written by LWR's scripts/services/sshd-up.sh: a test sshd for key logins on localhost only.
ListenAddress $HOST
Port $PORT
HostKey $DIR/ssh_host_ed25519_key
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding no
Subsystem sftp internal-sftp
PrintMotd no
LogLevel INFO
EOF
/usr/sbin/sshd -t -f "$DIR/sshd_config"
/usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
for _ in $(seq 50); do listening "$PORT" && break; sleep 0.1; done
echo "$PORT" > "$DIR/port"

# the tests verify the host key strictly against this file
ssh-keyscan -T 5 -p "$PORT" -t ed25519 "$HOST" 2>/dev/null > "$DIR/known_hosts.new"
[ -s "$DIR/known_hosts.new" ] || { say "ssh-keyscan got no host key"; cat "$DIR/sshd.log" >&2; exit 1; }
mv "$DIR/known_hosts.new" "$DIR/known_hosts"

login_works "$PORT" || { say "key login failed; see $DIR/sshd.log"; tail -5 "$DIR/sshd.log" >&2; exit 1; }
say "sshd up on $HOST:$PORT (pid $(cat "$DIR/sshd.pid")), key login as $USER_NAME works"
emit_env "$PORT"
