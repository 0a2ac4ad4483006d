"""
The unit's ExecReload (omero_web/files/default/omero-web-reload.py.jinja)
against a stand-in gunicorn master that acts on SIGTTIN/SIGTTOU as gunicorn
does (one more worker / the oldest worker stops): the old workers stop only
once every new one has loaded (its heartbeat file set to the monotonic
clock), and when the new ones do not load in time the script fails.

On a real host, with OMERO.web's gunicorn and a probe of the login page:
test/integration/test_85_reload_not_restart.py.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from unit_support import installed_script


# A master with 2 workers; each new worker "loads" for BOOT seconds, then
# beats like gunicorn's WorkerTmp.notify (mtime := time.monotonic()).
FAKE_MASTER = r"""
import os, signal, sys, tempfile, time
boot, log = float(sys.argv[1]), sys.argv[2]
workers = []

def spawn():
    fd, name = tempfile.mkstemp(prefix="wgunicorn-")
    os.unlink(name)
    pid = os.fork()
    if pid == 0:
        if boot >= 0:
            time.sleep(boot)
            while True:
                os.utime(fd, (time.monotonic(), time.monotonic()))
                time.sleep(0.2)
        time.sleep(3600)
    os.close(fd)
    workers.append(pid)

def note(what):
    with open(log, "a") as fh:
        fh.write(what + "\n")

def ttin(*_):
    note("TTIN")
    spawn()

def ttou(*_):
    note("TTOU")
    os.kill(workers.pop(0), signal.SIGKILL)

signal.signal(signal.SIGTTIN, ttin)
signal.signal(signal.SIGTTOU, ttou)
signal.signal(signal.SIGCHLD, lambda *_: os.waitpid(-1, os.WNOHANG))
boot_now, boot = boot, 0.0
spawn(); spawn()
boot = boot_now
note("READY")
while True:
    time.sleep(0.1)
"""


@pytest.fixture
def script(tmp_path):
    return installed_script("omero-web-reload.py.jinja", tmp_path / "omero-web-reload")


def master(tmp_path, boot):
    """A running stand-in master: (process, its log, its first workers)."""
    log = tmp_path / "signals.log"
    proc = subprocess.Popen([sys.executable, "-c", FAKE_MASTER, str(boot), str(log)])
    deadline = time.time() + 10
    while time.time() < deadline and not (log.exists() and "READY" in log.read_text()):
        time.sleep(0.05)
    time.sleep(0.5)  # the first workers' first heartbeat
    return proc, log, children(proc.pid)


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return set(map(int, out.split()))


@pytest.fixture
def stop_afterwards():
    procs = []
    yield procs.append
    for proc in procs:
        for worker in children(proc.pid):
            os.kill(worker, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_old_workers_stop_once_every_new_one_has_loaded(script, tmp_path, stop_afterwards):
    proc, log, old = master(tmp_path, boot=1.5)
    stop_afterwards(proc)
    start = time.time()
    res = subprocess.run([str(script), str(proc.pid), "20"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "2 new workers loaded OMERO.web" in res.stdout
    assert time.time() - start >= 1.5, "it did not wait for the new workers to load"
    assert log.read_text().split() == ["READY", "TTIN", "TTIN", "TTOU", "TTOU"]
    time.sleep(0.3)
    now = children(proc.pid)
    assert len(now) == 2 and not now & old, (old, now)


def test_new_workers_that_do_not_load_in_time_fail_the_reload(script, tmp_path, stop_afterwards):
    proc, log, _ = master(tmp_path, boot=-1)  # new workers never beat
    stop_afterwards(proc)
    res = subprocess.run([str(script), str(proc.pid), "2"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "0 of 2 new workers loaded OMERO.web within 2 s" in res.stderr
    # back to the configured count all the same
    assert log.read_text().split() == ["READY", "TTIN", "TTIN", "TTOU", "TTOU"]


def test_a_master_without_workers_is_an_error(script, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        res = subprocess.run([str(script), str(proc.pid), "2"], capture_output=True, text=True, timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert res.returncode == 1 and "has no workers" in res.stderr
