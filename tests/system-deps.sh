#!/bin/sh
# Installs the system programs the test suite drives (nginx, headless Chromium)
# from Debian's packages when they are missing. Idempotent; needs root for apt.
set -eu
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium chromium-driver"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ -n "$missing" ]; then
    echo "system-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
