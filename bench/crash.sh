#!/bin/sh
# crash.sh - the large crash case: 2,000 emails (399 trainers x 5 requests and the 5 customers'
# request_received) over 8 SMTP connections into tests/helpers/smtp_server.py, the gateway
# killed with SIGKILL 5 times while it sends. Prints the arrivals, the duplicates against their
# bound (connections x kills: the replies in flight; and per kill, each at most the
# connections) and the rows recorded from the sent journals. make check runs the small case
# (300 emails, 4 connections, 2 kills).
#
# usage: bench/crash.sh [--trainers N] [--requests N] [--workers N] [--kills N]
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/ordinatus >/dev/null
ORDINATUS_BIN="${ORDINATUS_BIN:-$PWD/build/ordinatus}" exec /usr/bin/python3 \
	tests/integration/test_crash_dup.py --trainers 399 --requests 5 --workers 8 --kills 5 "$@"
