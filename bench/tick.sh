#!/bin/sh
# tick.sh - scheduler tick cost at 10k and 1M bookings (issue: idle tick at 1M within 2x of 10k
# and under 20 ms; 1,000 due enqueued in under 100 ms). Builds and runs bench/tick_bench.c.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/bench/tick_bench >/dev/null
./build/bench/tick_bench
