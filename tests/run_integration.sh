#!/bin/sh
# run_integration.sh - run every tests/integration/test_*.py with Debian's python3 against the
# real binary ($ORDINATUS_BIN), once per store backend in $ORDINATUS_TEST_BACKENDS:
#   sqlite      each gateway on its own DATA/ordinatus.db (the default store)
#   postgresql  each gateway on its own database in one PostgreSQL 15 cluster that this script
#               starts in a temporary folder (tests/helpers/pgcluster.py: a free 127.0.0.1
#               port, run as the postgres user when we are root) and stops by its pid at the
#               end, also on a failure or an interrupt; the tests find it in ORDINATUS_TEST_PG
#               (HOST:PORT) and ORDINATUS_TEST_PG_DIR, with ORDINATUS_TEST_DB=postgresql.
# Prints "integration (BACKEND): N passed, N failed" after each backend's run, then the total
# as "integration: N passed, N failed"; fails if any test failed on either backend.
#
# usage: ORDINATUS_BIN=build/ordinatus [ORDINATUS_TEST_BACKENDS="sqlite postgresql"] \
#            [ORDINATUS_TESTS="test_cli.py test_guard.py"] sh tests/run_integration.sh
# (ORDINATUS_TESTS: only these files of tests/integration, for a run by hand)
: "${ORDINATUS_BIN:?set ORDINATUS_BIN to the built binary}"
export ORDINATUS_BIN
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/integration
pgcluster="/usr/bin/python3 $here/helpers/pgcluster.py"
# postgresql joins the default once the gateway speaks it
backends=${ORDINATUS_TEST_BACKENDS:-sqlite postgresql}

pgdir=""
stop_cluster() {
	if [ -n "$pgdir" ]; then
		$pgcluster stop "$pgdir" || echo "run_integration.sh: could not stop the cluster in $pgdir" >&2
		rm -rf "$pgdir"
		pgdir=""
	fi
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

total_passed=0
total_failed=0

# run_suite BACKEND: every test once, its closing line, the totals
run_suite() {
	backend=$1
	passed=0
	failed=0
	if [ -n "${ORDINATUS_TESTS:-}" ]; then
		# shellcheck disable=SC2086
		set -- $ORDINATUS_TESTS
	else
		set -- "$dir"/test_*.py
	fi
	for t in "$@"; do
		case $t in /*) ;; *) t=$dir/$t ;; esac
		if [ ! -f "$t" ]; then
			echo "FAILED ($backend): no test $t" >&2
			failed=$((failed + 1))
			continue
		fi
		echo "== $(basename "$t") ($backend)"
		if /usr/bin/python3 "$t"; then
			passed=$((passed + 1))
		else
			echo "FAILED ($backend): $t" >&2
			failed=$((failed + 1))
		fi
	done
	echo "integration ($backend): $passed passed, $failed failed"
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
}

unset ORDINATUS_DB
for b in $backends; do
	case $b in
	sqlite)
		unset ORDINATUS_TEST_PG ORDINATUS_TEST_PG_DIR
		ORDINATUS_TEST_DB=sqlite
		export ORDINATUS_TEST_DB
		run_suite sqlite
		;;
	postgresql)
		pgdir=$(mktemp -d /tmp/ordinatus-pg-XXXXXX)
		if ! port=$($pgcluster start "$pgdir"); then
			echo "run_integration.sh: the PostgreSQL cluster did not start" >&2
			echo "integration (postgresql): 0 passed, 1 failed"
			total_failed=$((total_failed + 1))
			stop_cluster
			continue
		fi
		ORDINATUS_TEST_DB=postgresql
		ORDINATUS_TEST_PG=127.0.0.1:$port
		ORDINATUS_TEST_PG_DIR=$pgdir
		export ORDINATUS_TEST_DB ORDINATUS_TEST_PG ORDINATUS_TEST_PG_DIR
		run_suite postgresql
		stop_cluster
		;;
	*)
		echo "run_integration.sh: unknown backend '$b' in ORDINATUS_TEST_BACKENDS (sqlite, postgresql)" >&2
		exit 2
		;;
	esac
done
echo "integration: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
