#!/bin/sh
# abuse.sh - the gateway under slow clients (1,000 connections trickling their headers: /healthz
# p50/p99 with and without, as ratios) and under 32 parallel viewers of a 2,000-slot schedule
# view (RSS before, after and after a rest). Figures are printed; see bench/abuse_bench.py.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/ordinatus >/dev/null
exec /usr/bin/python3 bench/abuse_bench.py "$@"
