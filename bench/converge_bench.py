#!/usr/bin/env python3
"""Converge benchmark on the real-host kitchen (issues 4 and 7).

Prints, for pillar.example plus Redis sessions on a fresh kitchen host
(Debian 12, systemd-nspawn, this machine's cores):

* first converge wall time (the IcePy wheel is prebuilt and cached: not counted);
* no-op re-apply wall time (`salt-call --local state.apply omero_web` on the
  converged host): median, min and max of --runs runs;
* `test=True` on the converged host: wall time and the number of changes it
  reports (must be 0);
* growth: no-op re-apply with 10 and with 100 extra managed omero.web.*
  properties (median of --runs each) and the difference;
* the number of `omero` processes (the venv's omero CLI or python) that a
  no-op apply spawns, counted with strace on execve inside the host;
* the slowest states of a no-op run (Salt's own per-state `duration`).

Each salt-call is a fresh process, as a user's re-apply is. Figures are
printed, never asserted: performance claims come from this script.

    python3 bench/converge_bench.py [--runs 5] [--keep]
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "kitchen"))
import kitchen  # noqa: E402

# pillar.example already uses Redis sessions; this makes it explicit.
REDIS = {"sessions": {"backend": "redis", "redis_url": "redis://127.0.0.1:6379/0"}}


def extra_properties(n):
    return {"omero.web.bench.property_%03d" % i: "value-%d" % i for i in range(n)}


def timed_apply(host, test=False):
    """One state.apply (modules already synced), as a user's re-apply."""
    args = ["state.apply", "omero_web"] + (["test=True"] if test else [])
    start = time.time()
    data, res = host.salt_call(*args)
    result = kitchen.ApplyResult(data, res, time.time() - start)
    if not result.ok:
        raise SystemExit("apply failed:\n" + result.summary())
    return result


def stats(values):
    return "median %.2f s (min %.2f, max %.2f, n=%d)" % (
        statistics.median(values), min(values), max(values), len(values))


def count_omero_processes(host):
    """execve()s of the omero CLI / venv python during one no-op apply."""
    host.run("command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive "
             "apt-get install -y -qq strace >/dev/null")
    host.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", "/root/bench.trace",
              "salt-call", "--local", "--log-level=quiet", "--out=quiet",
              "state.apply", "omero_web"])
    venv = host.pillar_venv
    trace = host.run(["cat", "/root/bench.trace"]).stdout
    execs = [l for l in trace.splitlines()
             if "execve(" in l and "= 0" in l and ('"%s/bin/' % venv) in l]
    # omero: the CLI, or the venv's python running the module's omero-py
    # scripts (python -c); pip's own checks (python -m pip) are counted apart.
    omero = [l for l in execs if '"-m", "pip"' not in l]
    pip = [l for l in execs if '"-m", "pip"' in l]
    return omero, pip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the host running")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")

    host = kitchen.Host("omero-web-bench")
    kitchen.ensure_golden()
    pillar = kitchen.kitchen_pillar(REDIS)
    host.pillar_venv = pillar["omero_web"]["venv"]
    print("machine: %s cores, %s; host: Debian 12 systemd-nspawn; salt %s" % (
        os.cpu_count(), time.strftime("%Y-%m-%d"), kitchen.SALT_REQUIREMENT))
    host.create(fresh=True)
    host.boot()
    try:
        host.write_pillar(pillar)
        host.salt_call("saltutil.sync_all", check=True)
        first = timed_apply(host)
        print("first converge: %.1f s (%d states, %d changed)" % (
            first.seconds, len(first.states), len(first.changed)))

        def settle():
            # After a (re)start, gunicorn's workers boot for several seconds
            # and compete for the CPU: time only a settled host.
            kitchen.wait_http("http://127.0.0.1:%s%s/webclient/login/" % (
                pillar["omero_web"]["nginx"]["port"], pillar["omero_web"]["prefix"]), timeout=120)
            time.sleep(15)
        settle()

        noop = [timed_apply(host) for _ in range(args.runs)]
        changed = sum(len(r.changed) for r in noop)
        print("no-op re-apply: %s; changes reported: %d" % (stats([r.seconds for r in noop]), changed))

        dry = [timed_apply(host, test=True) for _ in range(args.runs)]
        predicted = max(len(r.predicted) for r in dry)
        print("test=True on converged host: %s; changes reported (max over runs): %d" % (
            stats([r.seconds for r in dry]), predicted))

        growth, config_ms = {}, {}
        for n in (10, 100):
            over = dict(REDIS, config=extra_properties(n))  # merged over pillar.example's config
            host.write_pillar(kitchen.kitchen_pillar(over))
            timed_apply(host)  # converge the new properties (and restart once)
            settle()
            runs = [timed_apply(host) for _ in range(args.runs)]
            growth[n] = [r.seconds for r in runs]
            # Salt's own duration of the config state: the part that grows
            # with N, without the machine's noise on the whole run.
            config_ms[n] = [float(st.get("duration") or 0) for r in runs
                            for key, st in r.states.items() if "omero_web-config-" in key]
            print("no-op re-apply with %d extra properties: %s; config state median %.0f ms" % (
                n, stats(growth[n]), statistics.median(config_ms[n])))
        print("growth 10 -> 100 properties: %+.2f s (whole-apply medians), %+.0f ms (config state medians)" % (
            statistics.median(growth[100]) - statistics.median(growth[10]),
            statistics.median(config_ms[100]) - statistics.median(config_ms[10])))

        host.write_pillar(pillar)
        timed_apply(host)
        omero, pip = count_omero_processes(host)
        print("omero processes spawned by a no-op apply: %d" % len(omero))
        for line in omero:
            print("    " + line[:200])
        print("venv pip processes of a no-op apply (the pip.installed check): %d" % len(pip))

        slow = sorted(noop[-1].states.values(), key=lambda s: -float(s.get("duration") or 0))[:8]
        print("slowest states of a no-op run:")
        for st in slow:
            print("  %8.0f ms  %s" % (float(st.get("duration") or 0), st.get("__id__")))
    finally:
        if not args.keep:
            host.destroy()


if __name__ == "__main__":
    main()
