#!/bin/bash
# Install Snakemake with its GA4GH TES executor plugin into a virtualenv of its own, outside the
# clone, for tests/integration/test_tes_snakemake.py. The plugin pins an older py-tes (0.4.x)
# than LWR's tests use (1.1.x), so it cannot share LWR's virtualenv.
#
# Usage:  bash scripts/services/snakemake-tes-up.sh   (idempotent; instant when already installed)
#
# The virtualenv is $LWR_SNAKEMAKE_VENV (default /var/cache/lwr-tests/snakemake-tes-$STAMP, or
# under $TMPDIR when /var/cache is not writable); it is re-created when its pinned versions change.
# stdout: an export line (LWR_SNAKEMAKE_VENV), also written to scripts/services/snakemake-tes.env,
# which run_tests.sh sources. stderr: progress.
set -euo pipefail
say() { echo "[snakemake-tes-up] $*" >&2; }

# six: py-tes 0.4 imports it without declaring it
PACKAGES="snakemake==9.27.1 snakemake-executor-plugin-tes==0.1.3 snakemake-storage-plugin-fs==1.1.3 six==1.17.0"
STAMP=$(echo "$PACKAGES" | sha256sum | cut -c1-12)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LWR_SNAKEMAKE_VENV:-}" ]; then
    base=/var/cache/lwr-tests
    mkdir -p "$base" 2>/dev/null && [ -w "$base" ] || base=${TMPDIR:-/tmp}/lwr-tests
    LWR_SNAKEMAKE_VENV=$base/snakemake-tes-$STAMP
fi
VENV=$LWR_SNAKEMAKE_VENV

# A crash half-way leaves no .complete marker, so the next run starts over.
if [ ! -e "$VENV/.complete" ]; then
    say "installing $PACKAGES into $VENV"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet $PACKAGES
    "$VENV/bin/snakemake" --version >/dev/null
    touch "$VENV/.complete"
    say "installed"
else
    say "already installed in $VENV"
fi
echo "export LWR_SNAKEMAKE_VENV=$VENV" | tee "$HERE/snakemake-tes.env"
