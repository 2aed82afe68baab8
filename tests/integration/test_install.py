"""make install as an operator runs it: `make install DESTDIR=...` puts the binary, ordinatus(8),
the systemd unit and the sample configuration where they belong under PREFIX, the installed
binary runs, the unit has the hardening and drain settings (and passes systemd-analyze verify
where systemd is installed), the man page formats without a warning and names every command and
option the usage texts list, and a second install keeps the operator's ordinatus.conf."""
import os
import re
import shutil
import stat
import subprocess
import tempfile

from gwtest import BIN, VERSION, Checks

c = Checks("install")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BIN_ABS = os.path.abspath(BIN)


def make_install(**vars):
    """make install with the binary under test; its own BUILD folder, so that the flags stamp
    of the tree's build folders is left alone"""
    build = tempfile.mkdtemp(prefix="ordinatus-install-build-")
    try:
        args = ["make", "-s", "--no-print-directory", "install", "BUILD=" + build,
                "INSTALL_BIN=" + BIN_ABS] + ["%s=%s" % kv for kv in vars.items()]
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


tmp = tempfile.mkdtemp(prefix="ordinatus-install-")
try:
    dest = os.path.join(tmp, "stage")
    r = make_install(DESTDIR=dest)
    c.eq(r.returncode, 0, "make install DESTDIR=... succeeds: %s" % r.stderr[-500:])
    pre = dest + "/usr/local"
    files = {
        "bin/ordinatus": 0o755,
        "share/man/man8/ordinatus.8": 0o644,
        "lib/systemd/system/ordinatus.service": 0o644,
        "etc/ordinatus/ordinatus.conf.sample": 0o644,
        "etc/ordinatus/ordinatus.conf": 0o644,
    }
    for rel, want in files.items():
        path = os.path.join(pre, rel)
        if c.check(os.path.isfile(path), "installed: PREFIX/%s" % rel):
            c.eq(oct(mode(path)), oct(want), "mode of PREFIX/%s" % rel)
    extra = sorted(os.path.relpath(os.path.join(d, f), pre) for d, _, fs in os.walk(dest)
                   for f in fs)
    c.eq(extra, sorted(files), "nothing else is installed")

    # ---- the installed binary runs ----
    v = subprocess.run([pre + "/bin/ordinatus", "--version"], capture_output=True, text=True)
    c.eq((v.returncode, v.stdout.strip()), (0, "ordinatus " + VERSION),
         "the installed binary runs --version")

    # ---- the unit: installed paths (never DESTDIR), hardening, restart, drain ----
    with open(pre + "/lib/systemd/system/ordinatus.service") as f:
        unit = f.read()
    u = unit_settings(unit)
    c.check(dest not in unit, "the unit names installed paths, not the staging DESTDIR")
    c.check("@" not in "".join(u.get("ExecStart", [])), "ExecStart has no placeholder left")
    start = " ".join(u.get("ExecStart", []))
    c.check(start.startswith("/usr/local/bin/ordinatus serve ") and
            "--config /usr/local/etc/ordinatus/ordinatus.conf" in start,
            "ExecStart runs the installed binary with the installed --config: %r" % start)
    c.check(u.get("DynamicUser") == ["yes"] or bool(u.get("User")), "a dedicated user")
    for key, want in [("StateDirectory", "ordinatus"), ("ProtectSystem", "strict"),
                      ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                      ("ProtectHome", "yes"), ("Restart", "on-failure"),
                      ("KillSignal", "SIGTERM")]:
        c.eq(u.get(key), [want], "unit %s" % key)
    stop = u.get("TimeoutStopSec", ["0"])[0]
    c.check(stop.isdigit() and int(stop) > 20, "TimeoutStopSec %s is above the 20 s drain" % stop)
    c.check(u.get("RestartPreventExitStatus") == ["2"],
            "a usage error (exit 2) is not restarted in a loop")

    # ---- systemd-analyze verify, on a real PREFIX (it checks the binary and man page exist) ----
    if shutil.which("systemd-analyze"):
        real = os.path.join(tmp, "prefix")
        r = make_install(PREFIX=real)
        c.eq(r.returncode, 0, "make install PREFIX=... succeeds")
        # man-db's seccomp sandbox refuses the semaphore calls of libfaketime (make
        # check-dates): the page is checked the same without it
        env = dict(os.environ, MANPATH=real + "/share/man", MAN_DISABLE_SECCOMP="1")
        r = subprocess.run(["systemd-analyze", "verify",
                            real + "/lib/systemd/system/ordinatus.service"],
                           capture_output=True, text=True, env=env, timeout=60)
        c.eq((r.returncode, r.stderr.strip()), (0, ""), "systemd-analyze verify passes")
    else:
        print("install: systemd-analyze is not installed; unit verification skipped")

    # ---- the man page: no groff warning, renders with man -l, names every command/option ----
    page = pre + "/share/man/man8/ordinatus.8"
    g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                       text=True)
    c.eq((g.returncode, g.stderr), (0, ""), "groff -man -ww has no warning")
    m = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="0",
                                MAN_DISABLE_SECCOMP="1"))
    c.eq(m.returncode, 0, "man -l renders it")
    text = re.sub(r".\x08", "", m.stdout)
    c.check("ordinatus.conf" in text and "/usr/local/etc/ordinatus" in text,
            "the man page names the installed configuration file")
    usage = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  ([a-z]+) ", usage, re.M)
    c.check(len(commands) >= 6, "the usage lists the commands: %r" % commands)
    options = set(re.findall(r"--[a-z][a-z-]+", usage))
    for cmd in commands:
        c.check(re.search(r"^ {7}%s\b" % cmd, text, re.M) is not None or
                re.search(r"^ {7}ordinatus %s\b" % cmd, text, re.M) is not None,
                "the man page describes the command %s" % cmd)
        h = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True)
        c.eq(h.returncode, 0, "ordinatus %s --help" % cmd)
        options |= set(re.findall(r"--[a-z][a-z-]+", h.stdout))
    for opt in sorted(options):
        c.check(opt in text, "the man page documents %s" % opt)
    # every option of serve is a key of the configuration file: the man page lists them all
    serve_help = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    for opt in sorted(set(re.findall(r"--[a-z][a-z-]+", serve_help)) - {"--config", "--help"}):
        key = opt[2:].replace("-", "_")
        c.check(key in text, "the man page lists the configuration key %s" % key)
        c.check(key in open(pre + "/etc/ordinatus/ordinatus.conf.sample").read(),
                "the sample configuration mentions %s" % key)

    # ---- a second install keeps the operator's ordinatus.conf, refreshes the sample ----
    conf = pre + "/etc/ordinatus/ordinatus.conf"
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:9999\n")
    with open(pre + "/etc/ordinatus/ordinatus.conf.sample", "w") as f:
        f.write("old\n")
    r = make_install(DESTDIR=dest)
    c.eq(r.returncode, 0, "make install again")
    c.eq(open(conf).read(), "listen = 127.0.0.1:9999\n", "the operator's ordinatus.conf is kept")
    c.check(open(pre + "/etc/ordinatus/ordinatus.conf.sample").read() != "old\n",
            "the sample is refreshed")
    r = subprocess.run(["make", "-s", "--no-print-directory", "uninstall", "DESTDIR=" + dest],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    left = sorted(os.path.relpath(os.path.join(d, f), pre) for d, _, fs in os.walk(dest)
                  for f in fs)
    c.eq(left, ["etc/ordinatus/ordinatus.conf"], "uninstall leaves only the operator's file")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
c.done()
