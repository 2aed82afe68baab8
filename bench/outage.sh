#!/bin/sh
# outage.sh - the CPU an organisation's SMTP server that is down costs while 20,000 of its
# emails wait (every connection refused, 12 s of serve), beside the CPU of delivering the same
# queue into Postfix's smtp-sink, in the same run; with the attempts counted (none), the tries
# recorded and the warn lines. See bench/outage_bench.py.
#
# Needs /usr/sbin/smtp-sink (Debian's postfix package): installed when missing and this runs as
# root (bench/needs.sh), without starting its daemon.
#
# usage: bench/outage.sh [--messages N] [--secs S] [--runs R]
set -eu
cd "$(dirname "$0")/.."

. bench/needs.sh
need_postfix outage

make --no-print-directory build/ordinatus build/bench/smtp_bench >/dev/null
ORDINATUS_BIN="${ORDINATUS_BIN:-$PWD/build/ordinatus}" exec /usr/bin/python3 bench/outage_bench.py "$@"
