#!/usr/bin/env python3
"""System calls per static-file request: the formula's nginx against the walkthrough's (issue 12, part 4).

Requests/s on a 2-core machine shared with other work spread widely from one
round to the next; the system calls an nginx worker makes per request do not.
On a converged kitchen host, with the walkthrough's literal nginx served on
another port of the same nginx (bench/walkthrough_nginx.py), ``strace -c``
counts the calls of the host's nginx workers while Debian's ``wrk`` (1
thread, 4 connections, loopback only, ``--duration`` seconds, at most 10)
fetches one static file without asking for gzip, first through one file,
then through the other. It prints, per request: all calls, and the file
lookups (openat, newfstatat, close) that ``gzip_static`` adds for such a
client and ``open_file_cache`` (``nginx:open_file_cache``) saves.

    OMERO_WEB_PORT_OFFSET=3000 python3 bench/nginx_syscalls.py --host kt-pages
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import walkthrough_nginx  # noqa: E402

FILE_CALLS = ("openat", "newfstatat", "fstat", "statx", "close")


def nginx_workers(host):
    """PIDs (this machine's) of the nginx workers inside the kitchen host."""
    init = subprocess.run(["pgrep", "-P", str(host.nspawn_pid)], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.split()[0]
    namespace = os.readlink("/proc/%s/ns/pid" % init)
    workers = []
    for pid in subprocess.run(["pgrep", "-f", "^nginx: worker process"], stdout=subprocess.PIPE,
                              text=True).stdout.split():
        try:
            if os.readlink("/proc/%s/ns/pid" % pid) == namespace:
                workers.append(pid)
        except OSError:
            continue  # a worker of a reload that has just ended
    if not workers:
        raise SystemExit("no nginx worker found in %s" % host.name)
    return workers


def counted(workers, url, duration):
    """(requests, {syscall: calls}) of the workers during one wrk run."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        cmd = ["strace", "-c", "-f", "-o", out.name]
        for pid in workers:
            cmd += ["-p", pid]
        tracer = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)  # attached
            run = subprocess.run(["wrk", "-t1", "-c4", "-d%ds" % duration, url], stdout=subprocess.PIPE,
                                 text=True, timeout=duration + 30, check=True).stdout
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
        table = out.read()
    requests = int(re.search(r"([0-9]+) requests in", run).group(1))
    calls = {}
    for line in table.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(fields) >= 5 and fields[-1] not in ("total", "syscall") and fields[3].isdigit():
            calls[fields[-1]] = int(fields[3])
    return requests, calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("OMERO_WEB_IT_HOST", "omero-web-kitchen"))
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (max 10)")
    parser.add_argument("--static", default="3rdparty/jquery-3.6.2.min.js",
                        help="the static file, under the static URL")
    args = parser.parse_args()
    for tool in ("wrk", "strace"):
        if not shutil.which(tool):
            raise SystemExit("%s is not installed: apt-get install %s" % (tool, tool))
    duration = min(max(args.duration, 1), 10)
    host, web = walkthrough_nginx.host_and_pillar(args.host)
    path = (web.get("prefix") or "") + "/static/" + args.static
    ports = {"formula": web["nginx"]["port"], "walkthrough": web["nginx"]["port"] + 10}
    print("strace -c on the nginx workers of %s; wrk 1 thread, 4 connections, %d s, loopback; "
          "%s without gzip" % (args.host, duration, path))
    print("\n%-12s %9s %14s %s" % ("nginx", "requests", "calls/request", "file lookups per request"))
    with walkthrough_nginx.served(host, web, ports["walkthrough"]):
        time.sleep(2)  # the reload's old workers are gone
        workers = nginx_workers(host)
        for side, port in ports.items():
            requests, calls = counted(workers, "http://127.0.0.1:%d%s" % (port, path), duration)
            lookups = " ".join("%s %.2f" % (name, calls.get(name, 0) / requests)
                               for name in FILE_CALLS if name in calls)
            print("%-12s %9d %14.2f %s" % (side, requests, sum(calls.values()) / requests, lookups))


if __name__ == "__main__":
    main()
