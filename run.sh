#!/usr/bin/env bash
# Set up (first run) and start the LWR server.
#   ./run.sh                 serve in the foreground (Ctrl-C stops)
#   ./run.sh --daemon        serve in the background; writes paster.pid and paster.log
#   ./run.sh --stop-daemon   stop the background server
# Sources local_env.sh when present; copies server.ini / job_managers.ini from the samples when
# missing; creates .venv with LWR installed unless LWR_VIRTUALENV names another environment.
set -euo pipefail
cd "$(dirname "$0")"

[ -f local_env.sh ] && . ./local_env.sh

venv="${LWR_VIRTUALENV:-.venv}"
if [ ! -x "$venv/bin/paster" ] || [ ! -x "$venv/bin/lwr" ]; then
    echo "run.sh: creating $venv and installing LWR into it" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -e .
fi

[ -f server.ini ] || cp server.ini.sample server.ini
[ -f job_managers.ini ] || cp job_managers.ini.sample job_managers.ini

case "${1:-}" in
    --daemon)
        exec "$venv/bin/paster" serve server.ini --daemon --pid-file=paster.pid --log-file=paster.log ;;
    --stop-daemon)
        exec "$venv/bin/paster" serve --stop-daemon --pid-file=paster.pid ;;
    "")
        exec "$venv/bin/paster" serve server.ini ;;
    *)
        echo "usage: $0 [--daemon | --stop-daemon]" >&2; exit 2 ;;
esac
