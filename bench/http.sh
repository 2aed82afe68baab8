#!/bin/sh
# http.sh - the API's speed beside bare libmicrohttpd, measured side by side in one run with
# wrk (2 threads, 64 connections, 10 s each): an authenticated read (GET a user with a bearer
# token: token hash, SQLite lookup, JSON) against a static JSON answer of the bare library with
# the same daemon options. docs/design.md target: at least 0.5 of the bare rate, p99 under 10 ms.
#
# Installs wrk (Debian's package) when it is missing and this runs as root (bench/needs.sh).
# Servers listen on 127.0.0.1 free ports and are stopped by their pids.
set -eu
cd "$(dirname "$0")/.."
. bench/needs.sh
need_wrk http.sh
make --no-print-directory build/ordinatus build/bench/http_bare >/dev/null
exec /usr/bin/python3 bench/http_bench.py "$@"
