#!/usr/bin/env bash
# Debian's chromium and its WebDriver for the dashboard's browser tests (tests/integration/test_ui.py,
# driven by Playwright through executable_path=/usr/bin/chromium). Idempotent: installs only what is
# missing; Playwright's own browser download cannot run here (no internet but the package mirrors).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" fonts-dejavu-core
fi
dpkg-query -W chromium chromium-driver
