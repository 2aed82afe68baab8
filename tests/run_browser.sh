#!/bin/sh
# run_browser.sh - run every tests/browser/test_*.mjs (node scripts driving Debian's headless
# chromium through playwright-core) against the real binary ($ORDINATUS_BIN); print a closing
# "N passed, N failed" line. Screenshots land in build/artifacts/screens/.
: "${ORDINATUS_BIN:?set ORDINATUS_BIN to the built binary}"
export ORDINATUS_BIN
dir=$(dirname "$0")/browser
if [ ! -d "$dir/node_modules/playwright-core" ] || [ ! -x /usr/bin/chromium ]; then
	echo "run_browser.sh: run scripts/deps.sh first (chromium, npm ci in tests/browser)" >&2
	exit 1
fi
passed=0
failed=0
for t in "$dir"/test_*.mjs; do
	[ -f "$t" ] || continue
	echo "== $(basename "$t")"
	if node "$t"; then
		passed=$((passed + 1))
	else
		echo "FAILED: $t" >&2
		failed=$((failed + 1))
	fi
done
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
