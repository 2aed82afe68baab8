#!/bin/sh
# run_integration.sh - run every tests/integration/test_*.py with Debian's python3 against the
# real binary ($ORDINATUS_BIN); print a closing "N passed, N failed" line.
: "${ORDINATUS_BIN:?set ORDINATUS_BIN to the built binary}"
export ORDINATUS_BIN
dir=$(dirname "$0")/integration
passed=0
failed=0
for t in "$dir"/test_*.py; do
	[ -f "$t" ] || continue
	echo "== $(basename "$t")"
	if /usr/bin/python3 "$t"; then
		passed=$((passed + 1))
	else
		echo "FAILED: $t" >&2
		failed=$((failed + 1))
	fi
done
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
