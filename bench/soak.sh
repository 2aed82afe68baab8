#!/bin/sh
# soak.sh - 10 minutes of mixed API traffic (intakes, claims, links, schedule views, bookings,
# payments, confirms, reads, cancellations) at half the peak measured first in the same run,
# with deliveries flowing to the maildir: 0 errors, every delivery made, and the gateway's RSS
# sampled every 10 s and flat (the last third within 5 % of the first, after a minute of
# warm-up). SOAK_SECONDS, PEAK_SECONDS and SOAK_WORKERS change the run; see bench/soak_bench.py.
# The gateway listens on a free 127.0.0.1 port and is stopped by its pid.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/ordinatus >/dev/null
exec /usr/bin/python3 bench/soak_bench.py "$@"
