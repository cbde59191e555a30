#!/usr/bin/env bash
# PostgreSQL for the job store / service-user tests (database_url): the machine's own server at
# 127.0.0.1:5432 (trust auth). This only starts the Debian cluster when it is not answering; it
# never changes its configuration. Each test creates and drops a database of its own.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    exit 0
fi
if ! command -v pg_ctlcluster >/dev/null; then
    echo "postgres-up: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi
version="$(ls /etc/postgresql | sort -V | tail -1)"
pg_ctlcluster --skip-systemctl-redirect "$version" main start
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
    sleep 1
done
echo "postgres-up: PostgreSQL did not answer on 127.0.0.1:5432" >&2
exit 1
