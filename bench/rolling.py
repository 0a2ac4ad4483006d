#!/usr/bin/env python3
"""Failed requests through the load balancer during a rolling change (issue 14).

Runs the multi-node master scenario (test/master/test_master_loadbalanced_site.py:
a salt-master, a load balancer + Redis minion and two web minions, converged
with one highstate), whose last step changes the web nodes' gunicorn worker
count (a restart-class change) and rolls it out with
`salt-run state.orchestrate omero_web.orch.rolling` while a bounded probe
GETs the login page through the load balancer; then prints the probe's
figures. The single-node figures for the same kind of change (every request
straight to one node while it restarts) come from bench/availability.py.

    OMERO_WEB_MASTER_PREFIX=h14 OMERO_WEB_MASTER_PORT_OFFSET=12000 python3 bench/rolling.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCENARIO = "test/master/test_master_loadbalanced_site.py"


def main():
    with tempfile.TemporaryDirectory(prefix="omero-web-rolling-") as tmp:
        figures = os.path.join(tmp, "figures.json")
        env = dict(os.environ, OMERO_WEB_BENCH_FIGURES=figures)
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", SCENARIO],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=3600)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        # pytest's closing line ("6 passed in ..."), not the log lines after it
        closing = [line for line in lines if re.search(r"\d+ (passed|failed|error)", line)]
        print("scenario: %s (%s), %.0f s" % (SCENARIO, closing[-1].strip("= ") if closing else "no result",
                                            time.time() - start))
        if not os.path.exists(figures):
            print("\n".join(lines[-60:]))
            raise SystemExit("the scenario did not reach the rolling change")
        with open(figures) as fh:
            got = json.load(fh)
    print("probe: GET the login page through the load balancer every %.2f s (5 s timeout); "
          "%d cores, %s" % (got["interval"], os.cpu_count(), time.strftime("%Y-%m-%d")))
    print("%-58s %9s %7s %9s %11s %9s" % ("change", "requests", "failed", "window s", "slowest s",
                                          "took s"))
    print("%-58s %9d %7d %9.2f %11.2f %9.0f" % (
        "rolling change, 2 nodes (gunicorn:workers 2 -> 3)", got["requests"], got["failed"],
        got["window"], got["slowest"], got["seconds"]))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
