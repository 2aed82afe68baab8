# needs.sh - sourced by the bench scripts: the outside programs a bench runs, installed from
# Debian's packages when they are missing and the bench runs as root (else it says what to
# install and exits 1). Nothing installed here starts a daemon: a bench runs the programs it
# needs as plain processes on 127.0.0.1 free ports and stops them by their pids. `make check`
# needs none of them.
#
#   need_wrk NAME       wrk (the HTTP load generator)
#   need_postfix NAME   /usr/sbin/smtp-sink and smtp-source (Debian's postfix package)
#   need_postgres NAME  PostgreSQL 15's server programs and python3-psycopg2 (what
#                       tests/helpers/pgcluster.py runs)
# NAME is the bench's, for its messages.

# needs_install NAME PACKAGE... - apt-get install (one apt-get update on a miss), with a
# policy-rc.d that answers "no" (101) to every service start for the while
needs_install() {
	name=$1
	shift
	if [ "$(id -u)" != "0" ]; then
		echo "$name: needs $* (apt-get install $*)" >&2
		exit 1
	fi
	echo "$name: installing $*" >&2
	export DEBIAN_FRONTEND=noninteractive
	made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	status=0
	apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
		{ apt-get update -q >/dev/null &&
			apt-get install -y -q --no-install-recommends "$@" >/dev/null; } || status=$?
	if [ -n "$made_policy" ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	return $status
}

need_wrk() {
	command -v wrk >/dev/null 2>&1 || needs_install "$1" wrk
}

need_postfix() {
	if [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ]; then
		return 0
	fi
	if [ "$(id -u)" = "0" ]; then
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	fi
	needs_install "$1" postfix
}

need_postgres() {
	if [ ! -x "${ORDINATUS_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] ||
		! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
		needs_install "$1" postgresql-15 python3-psycopg2
	fi
}
