#!/bin/sh
# pg.sh - delivery and API throughput of one gateway on SQLite, one on PostgreSQL and two
# gateways on one PostgreSQL database, measured side by side in one run: emails per second from
# one intake fanning out to N trainers into Postfix's smtp-sink (as bench/fanout.sh makes the
# fan-out), and wrk on an authenticated read (as bench/http.sh); each figure with its ratio to
# the SQLite gateway of the same run. On a 2-core machine two gateways show what sharing one
# database costs, not how a second machine scales: the output says so. See bench/pg_bench.py.
#
# Needs wrk, smtp-sink (postfix) and PostgreSQL 15 with python3-psycopg2: installed from
# Debian's packages when missing and this runs as root (bench/needs.sh), no daemon started.
# Every server listens on a 127.0.0.1 free port and is stopped by its pid.
#
# usage: bench/pg.sh [--trainers N] [--runs R] [--seconds S]
set -eu
cd "$(dirname "$0")/.."
. bench/needs.sh
need_wrk pg
need_postfix pg
need_postgres pg
make --no-print-directory build/ordinatus >/dev/null
ORDINATUS_BIN="${ORDINATUS_BIN:-$PWD/build/ordinatus}" exec /usr/bin/python3 bench/pg_bench.py "$@"
