#!/usr/bin/env bash
# nginx for the bench's staging ceiling (bench/ceiling.py): `python -m bench` points Galaxy's curl
# transport at a static file server of its own, nginx when installed, else Python's http.server.
# Idempotent: installs Debian's nginx-light only when no nginx is there. It starts nothing: the
# bench runs its own nginx on a free port as the invoking user and stops it, so the package's
# system service is kept from starting while it installs (a policy-rc.d that denies, if the host
# has none) and any system nginx that is running afterwards is left as it was found.
# stdout on success: "nginx: <path> <version>".
set -euo pipefail
say() { echo "[nginx-up] $*" >&2; }

find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }

nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    policy=/usr/sbin/policy-rc.d
    temporary_policy=0
    if [ ! -e "$policy" ]; then
        # exit status 101 = "action forbidden": invoke-rc.d then starts no service on install
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 0755 "$policy"
        temporary_policy=1
    fi
    cleanup() { [ "$temporary_policy" -eq 0 ] || "${sudo_cmd[@]}" rm -f "$policy"; }
    trap cleanup EXIT
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq >/dev/null
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
    say "installed nginx-light"
    nginx_bin=$(find_nginx)
    [ -n "$nginx_bin" ] || { say "nginx-light installed but no nginx binary found"; exit 1; }
fi
# the ceiling's uploads are WebDAV PUTs: the build must have the dav module
if ! "$nginx_bin" -V 2>&1 | grep -q -- --with-http_dav_module; then
    say "$nginx_bin has no http_dav_module (the bench's upload ceiling needs dav_methods PUT)"
    exit 1
fi
echo "nginx: $nginx_bin $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')"
