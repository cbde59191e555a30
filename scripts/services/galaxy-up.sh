#!/bin/bash
# Install a real Galaxy (PyPI galaxy-app + galaxy-web-apps, and bioblend) into a virtualenv kept
# outside the clone, for the `galaxy` integration tests (tests/integration/galaxy/).
#
# Usage:  bash scripts/services/galaxy-up.sh        (idempotent; seconds when already installed)
#
# The virtualenv is $LWR_GALAXY_VENV (default /var/cache/lwr-tests/galaxy-$VERSION/venv, or under
# $TMPDIR when /var/cache is not writable). It is re-created when the installed galaxy-app is not
# $LWR_GALAXY_VERSION (default 26.1.2). Galaxy itself is started by the test fixture, one per
# pytest session, not here: this script only installs (about a minute and 1.1 GB the first time).
#
# stdout: export lines (LWR_GALAXY_VENV, LWR_GALAXY_VERSION), also written to
# scripts/services/galaxy.env, which run_tests.sh sources. stderr: progress.
set -euo pipefail
say() { echo "[galaxy-up] $*" >&2; }

VERSION=${LWR_GALAXY_VERSION:-26.1.2}
HERE=$(cd "$(dirname "$0")" && pwd)
ENV_FILE=${GALAXY_ENV_FILE:-$HERE/galaxy.env}
if [ -z "${LWR_GALAXY_VENV:-}" ]; then
    base=/var/cache/lwr-tests
    mkdir -p "$base" 2>/dev/null && [ -w "$base" ] || base=${TMPDIR:-/tmp}/lwr-tests
    LWR_GALAXY_VENV=$base/galaxy-$VERSION/venv
fi
VENV=$LWR_GALAXY_VENV

installed_version() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
import galaxy.webapps.galaxy.fast_factory  # noqa: F401  (the ASGI app lives in galaxy-web-apps)
import bioblend  # noqa: F401
print(version("galaxy-app"), version("galaxy-web-apps"))
PY
}

# A crash half-way leaves no .complete marker, so the next run starts over.
if [ ! -e "$VENV/.complete" ] || [ "$(installed_version || true)" != "$VERSION $VERSION" ]; then
    say "installing galaxy-app==$VERSION into $VENV"
    t0=$(date +%s)
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip wheel
    "$VENV/bin/pip" install --quiet "galaxy-app==$VERSION" "galaxy-web-apps==$VERSION" bioblend
    installed_version >/dev/null
    touch "$VENV/.complete"
    say "installed in $(( $(date +%s) - t0 ))s"
fi
cat > "$ENV_FILE" <<ENV
# written by scripts/services/galaxy-up.sh: where the test Galaxy is installed (source it)
export LWR_GALAXY_VENV=$VENV
export LWR_GALAXY_VERSION=$VERSION
ENV
cat "$ENV_FILE"
