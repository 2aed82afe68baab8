#!/usr/bin/python3
"""pgcluster.py - a throwaway PostgreSQL 15 cluster in a folder of its own, for the tests.

usage: pgcluster.py start DIR        make the cluster if DIR has none, start it, print its port
       pgcluster.py stop DIR         stop it by its pid (fast shutdown) and wait for the pid to end
       pgcluster.py restart DIR      stop, then start again on the same port and folder
       pgcluster.py createdb DIR NAME / dropdb DIR NAME
       pgcluster.py dsn DIR NAME     print postgresql://ordinatus@127.0.0.1:PORT/NAME

The cluster is Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin, or $ORDINATUS_PG_BIN):
initdb with trust authentication for the one role `ordinatus`, UTF8 and the C locale; the server
listens on 127.0.0.1 only, on a free port, with its socket in DIR (never in /var/run), and with
fsync off (a test cluster is thrown away, not recovered). DIR holds:

  DIR/data     the cluster (PGDATA); DIR/data/postmaster.pid names the server's pid
  DIR/port     the port it was started on, so that restart and another process find it
  DIR/log      the server's log

initdb refuses to run as root, and so does the server: as root (CI runs as root) every cluster
command runs as Debian's `postgres` system user (runuser -u postgres), and DIR is made theirs.
The server is stopped by its pid (the first line of postmaster.pid, checked to be the server of
DIR/data), never by name: SIGINT (fast shutdown), then SIGQUIT and SIGKILL only if it has not
ended in time. The commands' environment is cleaned of libfaketime's LD_PRELOAD and of PG*
variables: the database server keeps the machine's clock whatever clock the gateway is given.

As a module: Cluster(DIR).start() / .stop() / .restart() / .create_database(name) /
.drop_database(name) / .dsn(name); .host and .port once started.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

PGBIN = os.environ.get("ORDINATUS_PG_BIN", "/usr/lib/postgresql/15/bin")
ROLE = "ordinatus"
HOST = "127.0.0.1"
SERVER_USER = "postgres"  # the system user Debian's postgresql-common creates
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ClusterError(Exception):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def alive(pid):
    """Whether pid still runs. The server is not our child (pg_ctl leaves it to init), so it
    may linger a moment as a zombie, which has ended all the same."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def clean_env():
    """The environment for cluster commands: no PG* variable of the caller's (PGHOST, PGOPTIONS
    would redirect or reconfigure them) and no libfaketime (make check-dates moves the
    gateway's clock, not the database server's)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and not k.startswith("FAKETIME") and k != "LD_PRELOAD"}
    env["LC_ALL"] = "C"
    return env


class Cluster:
    """One cluster in DIR (created if missing). Nothing starts until start()."""

    def __init__(self, dir, host=HOST, port=None):
        """dir None: a server already running at host:port that is not ours to start or stop
        (databases only)."""
        self.dir = os.path.abspath(dir) if dir else None
        self.data = os.path.join(self.dir, "data") if dir else None
        self.log = os.path.join(self.dir, "log") if dir else None
        self.host = host
        self.port = port or (self._saved_port() if dir else None)
        self.as_root = os.geteuid() == 0

    def _ours(self):
        if self.dir is None:
            raise ClusterError("the server at %s:%s was not started here: no folder to "
                               "start or stop it by" % (self.host, self.port))

    # ---- running commands (as the postgres user when we are root) ----
    def _argv(self, argv):
        if not self.as_root:
            return argv
        return ["runuser", "-u", SERVER_USER, "--"] + argv

    def _run(self, argv, check=True, timeout=120):
        r = subprocess.run(self._argv(argv), cwd=self.dir, env=clean_env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise ClusterError("%s exited %d: %s%s" % (os.path.basename(argv[0]), r.returncode,
                                                        r.stderr.strip(), self._log_tail()))
        return r

    def _log_tail(self):
        if self.log is None:
            return ""
        try:
            with open(self.log, errors="replace") as f:
                return "\n-- %s (end) --\n%s" % (self.log, "".join(f.readlines()[-20:]))
        except OSError:
            return ""

    def _saved_port(self):
        try:
            with open(os.path.join(self.dir, "port")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    # ---- making the cluster ----
    def _prepare_dir(self):
        self._ours()
        if not os.path.isfile(os.path.join(PGBIN, "initdb")):
            raise ClusterError("no PostgreSQL 15 server in %s: scripts/deps.sh installs "
                               "postgresql-15" % PGBIN)
        os.makedirs(self.dir, exist_ok=True)
        if not self.as_root:
            return
        try:
            pw = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise ClusterError("running as root, and PostgreSQL refuses to run as root: it "
                               "runs as the '%s' system user, which this machine does not "
                               "have (Debian's postgresql-common package creates it)"
                               % SERVER_USER)
        if os.stat(self.dir).st_uid != pw.pw_uid:  # a new folder (or one made by root)
            for root, dirs, files in os.walk(self.dir):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.lchown(name, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        r = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-w", self.dir],
                           cwd="/", env=clean_env())
        if r.returncode != 0:
            raise ClusterError("the '%s' user cannot reach %s: a folder above it is not "
                               "searchable by other users (make the cluster in /tmp)"
                               % (SERVER_USER, self.dir))

    def _initdb(self):
        self._run([os.path.join(PGBIN, "initdb"), "-D", self.data, "-A", "trust", "-U", ROLE,
                   "-E", "UTF8", "--no-locale", "--no-sync"])
        # the fixed settings; the port is given at each start (it is chosen then). fsync off
        # loses data only when the machine itself stops; commits stay synchronous, so that a
        # server killed by a test loses no committed row
        conf = ("\n# pgcluster.py: a test cluster\n"
                "listen_addresses = '%s'\n"
                "unix_socket_directories = '%s'\n"
                "fsync = off\n"
                "full_page_writes = off\n"
                "max_connections = 300\n"
                "log_line_prefix = '%%m [%%p] %%d '\n" % (HOST, self.dir))
        # appending keeps the file's owner (the postgres user when we are root)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(conf)

    # ---- the server ----
    def pid(self):
        """The server's pid from postmaster.pid, or None when it is not running. A stale file
        (its pid gone, or another program's) counts as not running."""
        if self.data is None:
            return None
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            return None
        # the postmaster is "postgres -D DATA ...": the data folder says it is ours
        if not cmd or os.path.basename(cmd[0]) != b"postgres" or \
                self.data.encode() not in cmd:
            return None
        return pid

    def start(self, port=None, timeout=60):
        """Make the cluster if DIR has none and start it on port (the saved one, or a free
        one); returns the port. Already running: returns its port."""
        self._prepare_dir()
        if self.pid() is not None and self.port:
            return self.port
        if not os.path.isfile(os.path.join(self.data, "PG_VERSION")):
            self._initdb()
        fixed = port or self.port
        for attempt in range(5):
            p = fixed or free_port()
            r = self._run([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-l", self.log,
                           "-w", "-t", str(timeout), "-o", "-p %d" % p, "start"],
                          check=False, timeout=timeout + 30)
            if r.returncode == 0:
                self.port = p
                with open(os.path.join(self.dir, "port"), "w") as f:
                    f.write("%d\n" % p)
                return p
            # a free port taken between the probe and the bind: try another one
            if fixed or "could not bind" not in self._log_tail():
                break
        raise ClusterError("pg_ctl start exited %d: %s%s" % (r.returncode, r.stderr.strip(),
                                                             self._log_tail()))

    def stop(self, timeout=60):
        """Stop the server by its pid: SIGINT (fast shutdown: clients are disconnected, work
        in progress rolled back) and wait for the pid to end. Not running: nothing to do."""
        self._ours()
        pid = self.pid()
        if pid is None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not alive(pid):
                    return
                time.sleep(0.05)
            print("pgcluster: server %d still running after %s" % (pid, sig.name),
                  file=sys.stderr)
        raise ClusterError("server %d did not end" % pid)

    def restart(self, timeout=60):
        """Stop, then start on the same port and folder (a database restarted under load)."""
        self._ours()
        port = self.port
        if port is None:
            raise ClusterError("%s: never started, no port to restart on" % self.dir)
        self.stop(timeout)
        return self.start(port=port, timeout=timeout)

    # ---- databases ----
    def dsn(self, name="postgres"):
        return "postgresql://%s@%s:%d/%s" % (ROLE, self.host, self.port, name)

    def psql(self, sql, dbname="postgres"):
        """Run SQL with psql over TCP as the ordinatus role; returns its unaligned output."""
        if self.port is None:
            raise ClusterError("%s: not started" % self.dir)
        r = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                            "-U", ROLE, "-d", dbname, "-c", sql],
                           env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise ClusterError("psql %r: %s" % (sql, r.stderr.strip()))
        return r.stdout

    def create_database(self, name):
        if not NAME_RE.match(name):
            raise ClusterError("database name %r: lower-case letters, digits and _ only" % name)
        self.psql('CREATE DATABASE "%s"' % name)
        return self.dsn(name)

    def drop_database(self, name):
        """Drop it even while a killed gateway's connections linger (WITH (FORCE))."""
        if not NAME_RE.match(name):
            raise ClusterError("database name %r: lower-case letters, digits and _ only" % name)
        self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def remove(self):
        """Stop the server and delete DIR."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    usage = ("usage: pgcluster.py start|stop|restart DIR | createdb|dropdb|dsn DIR NAME")
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    try:
        cl = Cluster(args[0])
        if cmd == "start" and len(args) == 1:
            print(cl.start())
        elif cmd == "stop" and len(args) == 1:
            cl.stop()
        elif cmd == "restart" and len(args) == 1:
            print(cl.restart())
        elif cmd == "createdb" and len(args) == 2:
            print(cl.create_database(args[1]))
        elif cmd == "dropdb" and len(args) == 2:
            cl.drop_database(args[1])
        elif cmd == "dsn" and len(args) == 2:
            print(cl.dsn(args[1]))
        else:
            print(usage, file=sys.stderr)
            return 2
    except (ClusterError, subprocess.TimeoutExpired) as e:
        print("pgcluster: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
