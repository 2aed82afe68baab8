#!/bin/sh
# confirm.sh - confirms per second, and their effects delivered per second, for a booking whose
# confirmation has email effects only beside one whose trainer has a Google calendar connected
# (and, where the build has it, an organisation delivering by Zoho Assist), against the local
# fakes of tests/helpers on 127.0.0.1, in one run. See bench/confirm_bench.py.
#
# usage: bench/confirm.sh [--bookings N]
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory build/ordinatus >/dev/null
exec /usr/bin/python3 bench/confirm_bench.py "$@"
