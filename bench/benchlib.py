"""benchlib.py - what the Python benches share: a free loopback port, waiting for a listener,
stopping a process by its pid, and one JSON call to the gateway's API."""
import json
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    """A port nothing listens on now, on 127.0.0.1."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    """Until something accepts connections on 127.0.0.1:port (RuntimeError after timeout)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %d" % port)


def stop(proc, timeout=30):
    """SIGTERM to a process this bench started, SIGKILL if it has not ended in timeout s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def call(url, method, path, body=None, token=None, timeout=30):
    """One API call with a JSON body (or none) and a bearer token (or none): the answer."""
    req = urllib.request.Request(url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())
