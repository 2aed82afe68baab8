#!/bin/sh
# fanout.sh - the latency of a public intake that matches every trainer of an organisation
# (1,000 and 10,000 trainers): the answer comes after the request and all its new_request rows
# are committed. Beside it, in the same run, the baseline: a bare SQLite insert of the same
# number of rows of the same size in one transaction (WAL, synchronous=NORMAL, as the gateway
# opens its database). See bench/fanout_bench.py.
#
# usage: bench/fanout.sh [--trainers N,N...] [--runs R]
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/ordinatus >/dev/null
exec /usr/bin/python3 bench/fanout_bench.py "$@"
