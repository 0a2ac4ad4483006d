#!/usr/bin/env python3
"""Failed requests and the unavailability window while OMERO.web changes (issue 14).

On a converged kitchen host (``test/kitchen/kitchen converge --name HOST``),
a bounded probe (test/kitchen/probe.py: one loopback GET of the login page
through nginx every ``--interval`` s, ``--max-requests`` at most, a 5 s
timeout counts as a failure) runs while each of these happens, and the
figures are printed:

* ``systemctl restart`` (what every configuration change did before);
* a restart-class apply (gunicorn:workers changes: a new gunicorn master);
* gunicorn's own reload (SIGHUP, the unit's ExecReload before issue 14);
* a reload-class apply (server_list changes: the unit's reload script).

Each row: requests, failed, the unavailability window (start of the first
failed request to the end of the last) and the slowest answer.

    OMERO_WEB_PORT_OFFSET=7000 python3 bench/availability.py --host kt-i14
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "kitchen"))
import kitchen  # noqa: E402
from probe import Probe  # noqa: E402

SETTLE = 3.0  # seconds of probing before and after each change


def probed(url, args, change):
    probe = Probe(url, max_requests=args.max_requests, max_seconds=args.max_seconds,
                  interval=args.interval, timeout=5.0)
    with probe:
        time.sleep(SETTLE)
        change()
        time.sleep(SETTLE)
    slowest = max(end - start for start, end, _ in probe.requests)
    return len(probe.requests), len(probe.failed), probe.window, slowest, probe.bound_reached


def apply_with(host, overrides):
    def change():
        host.write_pillar(kitchen.kitchen_pillar(overrides))
        result = host.apply()
        if not result.ok:
            raise SystemExit("the apply failed:\n" + result.summary())
    return change


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("OMERO_WEB_IT_HOST", "omero-web-kitchen"))
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--max-requests", type=int, default=3000, help="per change (at most 5000)")
    parser.add_argument("--max-seconds", type=float, default=180, help="per change (at most 300)")
    args = parser.parse_args()
    args.max_requests, args.max_seconds = min(args.max_requests, 5000), min(args.max_seconds, 300)
    host = kitchen.Host(args.host)
    host.nspawn_pid = host.running_pid()
    if not host.nspawn_pid:
        raise SystemExit("%s is not running: test/kitchen/kitchen converge --name %s" % (args.host, args.host))
    web = kitchen.kitchen_pillar()["omero_web"]
    service = web["service"]["name"]
    url = "http://127.0.0.1:%s%s/webclient/login/" % (web["nginx"]["port"], web.get("prefix") or "")
    apply_with(host, {})()  # pillar.example, converged
    kitchen.wait_http(url, timeout=120)

    def main_pid():
        return host.run(["systemctl", "show", "-p", "MainPID", "--value", service]).stdout.strip()

    changes = [
        ("systemctl restart (before issue 14: every change)",
         lambda: host.run(["systemctl", "restart", service])),
        ("restart-class apply (gunicorn:workers 3)", apply_with(host, {"gunicorn": {"workers": 3}})),
        ("gunicorn SIGHUP (the unit's reload before issue 14)",
         lambda: host.run(["kill", "-HUP", main_pid()])),
        ("reload-class apply (server_list)",
         apply_with(host, {"gunicorn": {"workers": 3},
                           "server_list": [["omero-bench.example.org", 4064, "bench"]]})),
    ]
    print("probe: GET %s every %.2f s (5 s timeout), %.0f s before and after each change; "
          "host %s, %d cores, %s" % (url, args.interval, SETTLE, args.host, os.cpu_count(),
                                     time.strftime("%Y-%m-%d")))
    print("%-52s %9s %7s %9s %11s" % ("change", "requests", "failed", "window s", "slowest s"))
    for what, change in changes:
        count, failed, window, slowest, bounded = probed(url, args, change)
        print("%-52s %9d %7d %9.2f %11.2f%s" % (what, count, failed, window, slowest,
                                                 "  (probe bound reached)" if bounded else ""))
        kitchen.wait_http(url, timeout=120)
    apply_with(host, {})()  # back to pillar.example


if __name__ == "__main__":
    main()
