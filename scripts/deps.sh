#!/bin/sh
# deps.sh - install what the build and the tests need on a Debian machine, as root.
# Does nothing (and needs no network) when every package is already present.
set -eu

PKGS="build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
libsqlite3-dev sqlite3 libical-dev libssl-dev libcmocka-dev libopendkim-dev
python3 python3-aiosmtpd python3-icalendar python3-dkim python3-requests python3-yaml curl openssl
tzdata faketime radicale groff-base man-db"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
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
