#!/bin/sh
# smtp_throughput.sh - messages per second from the outbox into Postfix's smtp-sink on loopback,
# printed beside Postfix's own smtp-source (and bare libcurl, and the SMTP provider alone)
# against the same sink with the same number of connections, in the same run; then the ratios.
# Issue target: outbox / smtp-source >= 0.8. See bench/smtp_throughput.py for what is measured.
#
# Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian's postfix package). When they are
# missing and this runs as root, postfix is installed here, non-interactively, without starting
# its daemon: only the two test programs are run, as plain processes on 127.0.0.1 free ports,
# and stopped by their pids. (`make check` does not need postfix.)
#
# usage: bench/smtp_throughput.sh [--messages N] [--conns C] [--runs R]
set -eu
cd "$(dirname "$0")/.."

if [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/smtp-source ]; then
	if [ "$(id -u)" != "0" ]; then
		echo "smtp_throughput: needs postfix's smtp-sink and smtp-source (apt-get install postfix)" >&2
		exit 1
	fi
	echo "smtp_throughput: installing postfix (for smtp-sink and smtp-source only)" >&2
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	# never start the postfix daemon: invoke-rc.d asks policy-rc.d, and 101 means "no"
	made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	apt-get install -y -q --no-install-recommends postfix >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postfix >/dev/null; }
	if [ -n "$made_policy" ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
fi

make --no-print-directory build/ordinatus build/bench/smtp_bench >/dev/null
ORDINATUS_BIN="${ORDINATUS_BIN:-$PWD/build/ordinatus}" exec /usr/bin/python3 bench/smtp_throughput.py "$@"
