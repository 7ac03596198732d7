#!/bin/sh
# Installs the system programs the test suite drives (nginx, headless Chromium)
# from Debian's packages when they are missing. Idempotent; needs root and apt-get.
# When it cannot install them it says so in one line and fails, before any test runs.
set -eu
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium chromium-driver"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
[ -n "$missing" ] || exit 0
cannot() {
    echo "system-deps: cannot install$missing ($1): install them as root (apt-get install$missing) and run make test again" >&2
    exit 1
}
command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this machine"
echo "system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
log="${TMPDIR:-/tmp}/system-deps.log"
# shellcheck disable=SC2086
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1 ||
    cannot "apt-get failed, see $log"
