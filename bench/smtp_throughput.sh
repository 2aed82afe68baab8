#!/bin/sh
# smtp_throughput.sh - messages per second from the outbox into Postfix's smtp-sink on loopback,
# printed beside Postfix's own smtp-source (and bare libcurl, and the SMTP provider alone)
# against the same sink with the same number of connections, in the same run; then the ratios.
# Target: outbox / bare libcurl >= 0.9. See bench/smtp_throughput.py for what is measured.
#
# Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian's postfix package). When they are
# missing and this runs as root, postfix is installed (bench/needs.sh), non-interactively,
# without starting its daemon: only the two test programs are run, as plain processes on
# 127.0.0.1 free ports, and stopped by their pids. (`make check` does not need postfix.)
#
# usage: bench/smtp_throughput.sh [--messages N] [--conns C] [--runs R]
set -eu
cd "$(dirname "$0")/.."

. bench/needs.sh
need_postfix smtp_throughput

make --no-print-directory build/ordinatus build/bench/smtp_bench build/bench/delay_proxy >/dev/null
ORDINATUS_BIN="${ORDINATUS_BIN:-$PWD/build/ordinatus}" exec /usr/bin/python3 bench/smtp_throughput.py "$@"
