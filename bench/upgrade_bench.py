#!/usr/bin/env python3
"""Day-two benchmark (issue 11): upgrade, downgrade and adoption on a
kitchen host of its own.

For each scenario it prints:

* the dry run's prediction against the real apply's changes (the state
  ids; they must be equal) and whether they are;
* the number of OMERO.web starts during the real apply (the service's
  "Started" journal lines) and of main PID changes;
* for the upgrade and downgrade: the seconds OMERO.web did not answer,
  from a probe loop against the login page through nginx on 127.0.0.1
  while the apply runs (every 0.2 s, at most 3000 probes or 900 s, stops
  by itself when the apply ends); a probe that does not answer 200 within
  2 s counts its interval as unavailable.

Scenarios (each on a fresh host, destroyed at the end unless --keep):
``upgrade`` (5.29.3 -> 5.33.2 -> 5.29.3 with Redis sessions, an app and
free-form config, test_90_upgrade's pillar) and ``adopt`` (the
walkthrough's hand install, then the formula: test_91_adopt's commands).

    OMERO_WEB_PORT_OFFSET=5000 python3 bench/upgrade_bench.py --host kt-i11-bench [--scenario upgrade adopt] [--keep]
"""
import argparse
import os
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "test", "kitchen"))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
import kitchen  # noqa: E402
from day_two import service_cursor, starts_since  # noqa: E402

PROBE_EVERY, PROBE_MAX, PROBE_SECONDS, PROBE_TIMEOUT = 0.2, 3000, 900, 2.0


class Probe(threading.Thread):
    """GET the login page on loopback until stopped or bounded; sum the unavailable time."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stopped = url, threading.Event()
        self.probes, self.unavailable = 0, 0.0

    def run(self):
        """Each probe that fails counts the time since the previous one as unavailable."""
        deadline = time.time() + PROBE_SECONDS
        last = time.time()
        while not self.stopped.is_set() and self.probes < PROBE_MAX and time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=PROBE_TIMEOUT) as resp:
                    ok = resp.status == 200
            except Exception:  # noqa: BLE001 - any failure is "did not answer"
                ok = False
            now = time.time()
            if not ok:
                self.unavailable += now - last
            last = now
            self.probes += 1
            self.stopped.wait(PROBE_EVERY)


def main_pid(host, service):
    return host.run(["systemctl", "show", "-p", "MainPID", "--value", service]).stdout.strip()


def measured_apply(host, pillar, label, probe_url=None):
    """Dry run, then the real apply (probed); print the figures."""
    host.write_pillar(pillar)
    dry = host.apply(test=True)
    if not dry.ok:
        raise SystemExit("%s: dry run failed:\n%s" % (label, dry.summary()))
    service = pillar["omero_web"]["service"]["name"]
    cursor, pid = service_cursor(host), main_pid(host, service)
    probe = Probe(probe_url) if probe_url else None
    if probe:
        probe.start()
    real = host.apply()
    if probe:
        probe.stopped.set()
        probe.join()
    if not real.ok:
        raise SystemExit("%s: apply failed:\n%s" % (label, real.summary()))
    predicted = sorted(map(real.state_id, dry.predicted))
    changed = sorted(map(real.state_id, real.changed))
    print("== %s" % label)
    print("  dry run predicted %d states, real apply changed %d: %s" % (
        len(predicted), len(changed), "EQUAL" if predicted == changed else "DIFFERENT"))
    for state in sorted(set(predicted) | set(changed)):
        print("    %s%s" % (state, "" if state in predicted and state in changed
                             else (" (predicted only)" if state in predicted else " (changed only)")))
    print("  OMERO.web starts during the apply: %d; main PID changed: %s" % (
        starts_since(host, cursor), "yes" if main_pid(host, service) != pid else "no"))
    if probe:
        print("  login page did not answer for %.1f s of the %.1f s apply (%d probes, loopback)" % (
            probe.unavailable, real.seconds, probe.probes))
    again = host.apply()
    print("  second apply changed %d states" % len(again.changed))


def upgrade(host):
    from test_90_upgrade import NEW, OLD, pillar_for
    first = pillar_for(OLD)
    host.pillar = first["omero_web"]
    host.write_pillar(first)
    start = time.time()
    result = host.apply()
    if not result.ok:
        raise SystemExit("first converge failed:\n" + result.summary())
    print("first converge at %s: %.1f s" % (OLD, time.time() - start))
    url = "http://127.0.0.1:%d%s/webclient/login/" % (host.pillar["nginx"]["port"], host.pillar.get("prefix") or "")
    measured_apply(host, pillar_for(NEW), "upgrade %s -> %s" % (OLD, NEW), url)
    measured_apply(host, pillar_for(OLD), "downgrade %s -> %s" % (NEW, OLD), url)


def adopt(host):
    from test_91_adopt import site_pillar, walkthrough
    pillar = site_pillar()
    web = host.pillar = pillar["omero_web"]
    redis_port = int(web["sessions"]["redis_url"].split(":")[2].split("/")[0])
    start = time.time()
    for line in walkthrough(host, web["nginx"]["port"], web["gunicorn"]["port"], redis_port):
        host.run(["bash", "-ec", line])
    print("walkthrough hand install: %.1f s" % (time.time() - start))
    url = "http://127.0.0.1:%d/omero/webclient/login/" % web["nginx"]["port"]
    kitchen.wait_http(url, timeout=90)
    measured_apply(host, pillar, "adopt the hand install", url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="omero-web-bench-upgrade")
    parser.add_argument("--scenario", nargs="+", choices=("upgrade", "adopt"), default=["upgrade", "adopt"])
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for scenario in args.scenario:
        host = kitchen.Host(args.host)
        host.create(fresh=True)
        host.boot()
        try:
            {"upgrade": upgrade, "adopt": adopt}[scenario](host)
        finally:
            if not args.keep:
                host.destroy()


if __name__ == "__main__":
    main()
