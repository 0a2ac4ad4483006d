#!/usr/bin/env python3
"""
The whole suite as lanes that run side by side (test/run-tests calls this).

Every lane is one pytest run with its own kitchen hosts (own names, own port
offset: the hosts share this machine's network), its own log, and, for the
Salt-release lanes, its own Python with that Salt. A machine of the
project's kind has 2 cores; the lanes mostly wait on packages, services and
health checks, so a few at a time finish well before the same runs one by
one would.

    test/lanes.py                 # CI: every lane
    test/lanes.py --list          # what each lane runs
    test/lanes.py --only LANE...  # some lanes
    test/lanes.py --full          # also the whole integration suite on Debian 13
                                  # and on each Salt release (a longer local run)

Exit status: 0 when every lane passed. Logs: /var/tmp/omero-web-tests/<lane>.log.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("OMERO_WEB_KITCHEN_CACHE", "/var/cache/omero-web-formula")
LOGS = os.environ.get("OMERO_WEB_TEST_LOGS", "/var/tmp/omero-web-tests")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-ra"]

#: The real-host scenarios Debian 13 and every Salt release must pass each CI
#: run: bad pillar on a fresh host (with the exact fresh-host dry run),
#: pillar.example, idempotency and exact dry runs, the root prefix.
CORE = [
    "test/integration/test_10_bad_pillar_on_fresh_host.py",
    "test/integration/test_20_pillar_example.py",
    "test/integration/test_30_idempotency.py",
    "test/integration/test_40_root_prefix_file_sessions.py",
]
#: ... of which a Salt release needs at least: pillar.example applied for
#: real from a fresh host (exact dry run first), idempotent.
APPLY = [
    "test/integration/test_10_bad_pillar_on_fresh_host.py::test_dry_run_on_fresh_host_predicts_the_first_converge",
    "test/integration/test_30_idempotency.py",
]


#: The day-two scenarios (issue 11): each starts from a host of its own.
DAY_TWO = sorted(str(p.relative_to(REPO)) for p in pathlib.Path(REPO, "test", "integration").glob("test_9*.py"))
NOT_DAY_TWO = ["--ignore=" + path for path in DAY_TWO]


def salt_python(release):
    """A Python with Salt ``release`` and the test requirements (built once, cached)."""
    import kitchen  # pylint: disable=import-outside-toplevel

    venv = os.path.join(CACHE, "ci", "python-salt" + release)
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "requirement")
    wanted = kitchen.SALT_RELEASES[release]
    if os.path.exists(stamp) and open(stamp).read().strip() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
    requirements = [line.strip() for line in open(os.path.join(REPO, "test", "requirements.txt"))
                    if line.strip() and not line.startswith("#") and not line.startswith("salt")]
    subprocess.run([python, "-m", "pip", "install", "-q", wanted] + requirements, check=True)
    with open(stamp, "w") as handle:
        handle.write(wanted + "\n")
    return python


def lanes(full=False):
    """name -> (description, argv builder, environment)."""
    d13 = {"OMERO_WEB_KITCHEN_OS": "debian13", "OMERO_WEB_KITCHEN_SALT": "3008",
           "OMERO_WEB_IT_HOST": "omero-web-it-d13", "OMERO_WEB_PORT_OFFSET": "10000"}
    s3006 = {"OMERO_WEB_KITCHEN_OS": "debian12", "OMERO_WEB_KITCHEN_SALT": "3006",
             "OMERO_WEB_IT_HOST": "omero-web-it-s3006", "OMERO_WEB_PORT_OFFSET": "20000"}
    # Offsets at least 5000 apart: no port of one lane's hosts (80, 443,
    # 4080, 6379, 8443 and the tests' own +10/+11) meets another's. The
    # integration lane is shifted too: the master lane holds 127.0.0.1:6379
    # during its first apply (its Redis must cope with a taken default port).
    integration = {"OMERO_WEB_PORT_OFFSET": "5000"}
    day2 = {"OMERO_WEB_IT_HOST": "omero-web-it-day2", "OMERO_WEB_PORT_OFFSET": "15000"}
    # Below 32768: a listening port in Linux's ephemeral range (32768-60999)
    # can be taken for a moment by any outgoing connection.
    master_lb = {"OMERO_WEB_MASTER_PREFIX": "omero-web-lb", "OMERO_WEB_MASTER_PORT_OFFSET": "12000"}
    result = {
        "integration": ("Debian 12, Salt 3007: the real-host suite on one shared host",
                        lambda: PYTEST + ["test/integration"] + NOT_DAY_TWO, integration),
        "day2": ("Debian 12, Salt 3007: upgrade/downgrade, adoption, app changes (own hosts)",
                 lambda: PYTEST + DAY_TWO, day2),
        "main": ("Debian 12, Salt 3007: unit, render, functional, front door",
                 lambda: PYTEST + ["test/unit", "test/render", "test/functional",
                                   "test/frontdoor"], {}),
        "master": ("Debian 12, Salt 3007: a salt-master and two site minions",
                   lambda: PYTEST + ["test/master/test_master_two_minions.py"], {}),
        "master-lb": ("Debian 12, Salt 3007: a load-balanced site (Redis + load balancer, two web "
                      "minions), rolling change",
                      lambda: PYTEST + ["test/master/test_master_loadbalanced_site.py"], master_lb),
        "debian13": ("Debian 13, Salt 3008: the core real-host scenarios",
                     lambda: PYTEST + (["test/integration"] + NOT_DAY_TWO if full else CORE), d13),
        "salt3006": ("Debian 12, Salt 3006: pillar.example from a fresh host, exact dry run, idempotent",
                     lambda: PYTEST + (["test/integration"] + NOT_DAY_TWO if full else APPLY), s3006),
        "modules-salt3006": ("Salt 3006's own Python: unit, render, functional",
                             lambda: [salt_python("3006"), "-m", "pytest", "-q", "-ra",
                                      "test/unit", "test/render", "test/functional"], {}),
        "modules-salt3008": ("Salt 3008's own Python: unit, render, functional",
                             lambda: [salt_python("3008"), "-m", "pytest", "-q", "-ra",
                                      "test/unit", "test/render", "test/functional"], {}),
    }
    return result


#: Which lanes start together: a lane starts when one before it ends, at most
#: this many at once.
PARALLEL = int(os.environ.get("OMERO_WEB_TEST_LANES", "3"))
ORDER = ["integration", "day2", "master", "master-lb", "main", "debian13", "salt3006",
         "modules-salt3006", "modules-salt3008"]


def run(names, full):
    os.makedirs(LOGS, exist_ok=True)
    table = lanes(full)
    results = {}
    lock = threading.Lock()
    slots = threading.Semaphore(PARALLEL)

    def lane(name):
        description, argv, env = table[name]
        log = os.path.join(LOGS, name + ".log")
        start = time.time()
        with slots:
            with lock:
                print(">> lane %s starts: %s" % (name, description), flush=True)
            with open(log, "w") as handle:
                try:
                    command = argv()
                    proc = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                          env=dict(os.environ, **env))
                    code = proc.returncode
                except (OSError, subprocess.CalledProcessError) as exc:
                    handle.write("lane setup failed: %s\n" % exc)
                    code = 2
        with lock:
            results[name] = (code, time.time() - start, log)
            print(">> lane %s %s in %.0f s (%s)" % (name, "passed" if code == 0 else "FAILED",
                                                    time.time() - start, log), flush=True)

    threads = [threading.Thread(target=lane, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
        time.sleep(2)  # keep the order: earlier lanes take the slots first
    for thread in threads:
        thread.join()
    print("\n== lanes ==")
    for name in names:
        code, seconds, log = results[name]
        tail = _summary_line(log)
        print("%-18s %-6s %5.0f s  %s" % (name, "ok" if code == 0 else "FAILED", seconds, tail))
    failed = [name for name in names if results[name][0] != 0]
    for name in failed:
        print("\n== %s: the end of %s ==" % (name, results[name][2]))
        with open(results[name][2], errors="replace") as handle:
            print("".join(handle.readlines()[-150:]))
    return 1 if failed else 0


def _summary_line(log):
    try:
        with open(log, errors="replace") as handle:
            # pytest's closing line ("N passed, N failed ... in S s"), not a
            # logged "--- Logging error ---" of a daemon stopping
            lines = [line.strip() for line in handle
                     if re.search(r"\d+ (passed|failed|errors?)\b.* in [0-9.]+s", line)]
        return lines[-1] if lines else ""
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=ORDER, help="run these lanes only")
    parser.add_argument("--full", action="store_true",
                        help="the whole integration suite on Debian 13 and Salt 3006 too")
    parser.add_argument("--list", action="store_true", help="say what each lane runs")
    args = parser.parse_args()
    names = args.only or ORDER
    if args.list:
        for name in names:
            description, _, env = lanes(args.full)[name]
            print("%-18s %s %s" % (name, description, " ".join("%s=%s" % kv for kv in env.items())))
        return 0
    return run(names, args.full)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(REPO, "test", "kitchen"))
    sys.exit(main())
