#!/usr/bin/env bash
# Run LWR's whole test suite: lint, type check, docs build, unit and integration tests.
# Creates .venv (unless LWR_VIRTUALENV names another) with LWR and its test dependencies, and
# starts the real services the integration tests need (Slurm, SGE, sshd; a real Galaxy installed once
# under /var/cache/lwr-tests) with the scripts in
# scripts/services/. Extra arguments go to pytest, e.g. ./run_tests.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")"

venv="${LWR_VIRTUALENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -e '.[test,docs,bench]'
export PATH="$PWD/$venv/bin:$PATH"

# Real schedulers and sshd for the integration tests (each script is idempotent).
for service in scripts/services/*-up.sh; do
    [ -e "$service" ] || continue
    echo "== starting $(basename "$service" -up.sh)"
    bash "$service"
done
for env_file in scripts/services/*.env; do
    [ -e "$env_file" ] || continue
    set -a; . "$env_file"; set +a
done

echo "== ruff"
lint_paths=(lwr tests run_client_tests.py bench)
existing=()
for path in "${lint_paths[@]}"; do [ -e "$path" ] && existing+=("$path"); done
"$venv/bin/ruff" check "${existing[@]}"
"$venv/bin/ruff" format --check "${existing[@]}"
echo "== mypy"
"$venv/bin/mypy"
echo "== docs"
"$venv/bin/sphinx-build" -q -W -b html docs docs/_build/html
echo "== pytest"
exec "$venv/bin/pytest" -p no:cacheprovider "$@"
