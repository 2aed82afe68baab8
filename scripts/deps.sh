#!/bin/sh
# deps.sh - install what the build and the tests need on a Debian machine, as root.
# Does nothing (and needs no network) when every package is already present.
# The browser tests also need Node.js (20 or later: the machine's own; Debian's nodejs and npm
# only when none is there) and tests/browser/node_modules, installed by `npm ci` from the
# committed package-lock.json.
#
# usage: deps.sh [run]   with "run" (make run), only what building and serving need: no test
#                        servers, no browser, no Node.js, no PostgreSQL server, so a first
#                        `make run` stays quick.
set -eu

# libpq-dev: the PostgreSQL store (the gateway links libpq whichever store it runs on)
RUN_PKGS="build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
libsqlite3-dev sqlite3 libpq-dev libical-dev libssl-dev libopendkim-dev curl openssl tzdata"
# postgresql-15, postgresql-client-15, python3-psycopg2: the integration suite on PostgreSQL
# (tests/helpers/pgcluster.py makes a cluster of its own; the package's main cluster is unused)
TEST_PKGS="libcmocka-dev python3 python3-aiosmtpd python3-icalendar python3-dkim python3-requests
python3-yaml faketime radicale chromium groff-base man-db postgresql-15 postgresql-client-15
python3-psycopg2"

mode=${1:-check}
if [ "$mode" = "run" ]; then
	PKGS=$RUN_PKGS
else
	PKGS="$RUN_PKGS $TEST_PKGS"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ "$mode" != "run" ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
	missing="$missing nodejs npm"
fi

# npm ci into tests/browser when what is installed is not what package-lock.json names
browser_modules() {
	[ "$mode" = "run" ] && return 0
	dir=$(dirname "$0")/../tests/browser
	if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.ci" 2>/dev/null; then
		echo "deps.sh: npm ci in tests/browser" >&2
		(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) &&
			cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.ci"
	fi
}

if [ -z "$missing" ]; then
	browser_modules
	exit 0
fi

if [ "$(id -u)" != "0" ]; then
	echo "deps.sh: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi

echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
browser_modules
