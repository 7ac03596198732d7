#!/bin/sh
# Installs what the benchmark drives: wrk (Debian's package) and the peer servers (the
# project's `bench` extra). Idempotent; needs root for apt.
set -eu
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "bench: taskset (util-linux) is required" >&2; exit 1; }
.venv/bin/python -m pip install --quiet -e '.[test,bench]'
