#!/usr/bin/env python3
"""Requests/s and p99 latency: the formula's nginx against the walkthrough's (issue 12, part 4).

On a converged kitchen host, Debian's ``wrk`` (16 connections, 2 threads,
loopback only, ``--duration`` seconds per run) loads the login page
(proxied to gunicorn) and one static file through the formula's nginx and,
in the same run, through the walkthrough's literal nginx (``omero web
config nginx`` as it is, bench/walkthrough_nginx.py) on another port of the
same host: same nginx workers, same gunicorn. Runs alternate between the
two, ``--rounds`` times; the median of the rounds is printed, and each
round's figure.

Each URL is loaded twice: as wrk asks by default (no Accept-Encoding: the
same bytes from both files, the cost of the formula's additions alone) and
as a browser asks (``Accept-Encoding: gzip, deflate, br``: the formula's
nginx then compresses, the walkthrough's sends the file as it is).

    OMERO_WEB_PORT_OFFSET=2000 python3 bench/nginx_load.py --host kt-pages [--duration 5] [--rounds 3]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import walkthrough_nginx  # noqa: E402

CONNECTIONS = 16
BROWSER_ENCODING = "Accept-Encoding: gzip, deflate, br"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, duration, header=None):
    """(requests/s, p99 ms, non-2xx/3xx responses, socket errors) of one wrk run."""
    cmd = ["wrk", "-t2", "-c%d" % CONNECTIONS, "-d%ds" % duration, "--latency", "--timeout", "10s"]
    if header:
        cmd += ["-H", header]
    out = subprocess.run(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=duration + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    value, unit = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M).groups()
    bad = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return rps, float(value) * UNITS[unit], int(bad.group(1)) if bad else 0, (
        errors.group(1).strip() if errors else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("OMERO_WEB_IT_HOST", "omero-web-kitchen"))
    parser.add_argument("--walkthrough-port", type=int, default=None,
                        help="port for the walkthrough's nginx (default: the formula's + 10)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (max 30)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (max 9)")
    parser.add_argument("--static", default="3rdparty/jquery-3.6.2.min.js",
                        help="the static file, under the static URL")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    duration, rounds = min(max(args.duration, 1), 30), min(max(args.rounds, 1), 9)
    host, web = walkthrough_nginx.host_and_pillar(args.host)
    prefix = web.get("prefix") or ""
    ports = {"formula": web["nginx"]["port"], "walkthrough": args.walkthrough_port or web["nginx"]["port"] + 10}
    paths = {"login page": prefix + "/webclient/login/", "static file": prefix + "/static/" + args.static}
    print("wrk: %d connections, 2 threads, %d s per run, %d rounds, loopback; host %s; static file %s"
          % (CONNECTIONS, duration, rounds, args.host, args.static))
    results = {}
    with walkthrough_nginx.served(host, web, ports["walkthrough"]):
        for _ in range(rounds):
            for what, path in paths.items():
                for encoding in (None, BROWSER_ENCODING):
                    for side, port in ports.items():
                        figure = wrk("http://127.0.0.1:%d%s" % (port, path), duration, encoding)
                        results.setdefault((what, encoding, side), []).append(figure)
    print("\n%-12s %-22s %-12s %14s %12s %s" % ("url", "request", "nginx", "requests/s", "p99 ms", "rounds (req/s | p99 ms)"))
    worse, lagging = [], []
    for what in paths:
        for encoding in (None, BROWSER_ENCODING):
            medians = {}
            for side in ports:
                runs = results[(what, encoding, side)]
                rps = statistics.median(r[0] for r in runs)
                p99 = statistics.median(r[1] for r in runs)
                medians[side] = (rps, p99)
                bad = sum(r[2] for r in runs)
                print("%-12s %-22s %-12s %14.0f %12.2f %s%s" % (
                    what, "as wrk (no gzip asked)" if encoding is None else "as a browser (gzip)", side,
                    rps, p99, " ".join("%.0f|%.1f" % (r[0], r[1]) for r in runs),
                    "  NON-2xx/3xx: %d" % bad if bad else ""))
            label = "%s %s" % (what, "as wrk" if encoding is None else "as a browser")
            if medians["formula"][0] < medians["walkthrough"][0] or medians["formula"][1] > medians["walkthrough"][1]:
                worse.append(label)
            # rounds alternate between the two files: a real difference shows
            # in (nearly) every pair, noise in some pairs only
            pairs = list(zip(results[(what, encoding, "formula")], results[(what, encoding, "walkthrough")]))
            slower = sum(1 for f, w in pairs if f[0] < w[0])
            lagging.append("%s: %d of %d" % (label, slower, len(pairs)))
    print("\nformula's figures worse than the walkthrough's (median): %s" % (", ".join(worse) or "none"))
    print("rounds in which the formula's nginx served fewer requests/s than the walkthrough's "
          "in the run beside it:\n  " + "\n  ".join(lagging))


if __name__ == "__main__":
    main()
