#!/usr/bin/env python3
"""
Benchmark of the ``omero.config_managed`` state (issue 3, "Speed").

For N = 10 and N = 100 managed properties (N-1 ``properties`` plus one
``appends`` key, omero.web.middleware), on a fresh OMERODIR, it prints the wall
time and the number of omero processes spawned by:

* the initial apply (everything is new; the middleware append starts from
  OMERO.web's built-in default list, which costs one extra process),
* a no-op run (nothing differs),
* a run that changes every key.

How processes are counted:

* internally: the execution module's ``__context__["omero.processes"]``
  counter (incremented by ``_omero_run`` for every process it starts);
* externally: the benchmark runs a second time under
  ``strace -f --seccomp-bpf -e trace=execve``; every ``execve`` of a program
  in ``<venv>/bin/`` (``omero``, ``python``) counts as an omero process,
  including anything those processes start themselves. Phases are delimited
  by marker ``execve`` calls (``/bin/true bench-phase <name>``) the worker
  makes between phases. Wall times come from the run WITHOUT strace.

The modules are loaded from this checkout (``_modules/``, ``_states/``)
through Salt's real loader and the state function is called directly (no
``state.single`` compile overhead). Needs root (omero runs as ``--user``),
an OMERO.web venv (default: the functional tests' cached venv; run
``pytest test/functional`` once to build it) and strace.

Usage::

    python3 bench/config_bench.py [--venv DIR] [--user NAME] [--sizes 10,100]
"""

import argparse
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_VENV = "/var/cache/omero-web-formula/venv-functional"
DEFAULT_USER = "omerotest"
MIDDLEWARE = "omero.web.middleware"
PHASES = ("initial apply", "no-op", "change every key")


# ---------------------------------------------------------------- worker


def load_salt(venv, user, workdir):
    import salt.config  # pylint: disable=import-outside-toplevel
    import salt.loader  # pylint: disable=import-outside-toplevel

    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "omero-bench",
            "root_dir": str(workdir),
            "cachedir": str(workdir / "cache"),
            "extension_modules": str(workdir / "cache" / "extmods"),
            "pki_dir": str(workdir / "pki"),
            "sock_dir": str(workdir / "sock"),
            "file_client": "local",
            "module_dirs": [str(REPO / "_modules")],
            "states_dirs": [str(REPO / "_states")],
            "test": False,
        }
    )
    opts["grains"] = salt.loader.grains(opts)
    opts["pillar"] = {"omero_web": {"user": user, "venv": str(venv)}}
    context = {}
    utils = salt.loader.utils(opts, context=context)
    funcs = salt.loader.minion_mods(opts, context=context, utils=utils)
    serializers = salt.loader.serializers(opts)
    states = salt.loader.states(opts, funcs, utils, serializers, context=context)
    if "omero.config_managed" not in states:
        raise SystemExit("the omero state module did not load")
    return opts, funcs, states, context


def desired(n, generation):
    props = {}
    for i in range(n - 1):
        kind = i % 4
        if kind == 0:
            value = f"value-{generation}-{i}"
        elif kind == 1:
            value = 1000 * generation + i
        elif kind == 2:
            value = [f"item-{generation}", i, {"flag": bool(generation)}]
        else:
            value = {"generation": generation, "index": i}
        props[f"omero.web.bench.key{i:03d}"] = value
    appends = {MIDDLEWARE: [{"index": 0.1 + generation, "class": f"bench.Middleware{generation}"}]}
    return props, appends


def marker(name):
    subprocess.run(["/bin/true", "bench-phase", name], check=True)


def worker(args):
    # cmd.run_all(runas=...) reads the user's environment with
    # `su - USER -c <sys.executable>`; a real minion's python is executable by
    # everyone, a pyenv python under /root (0700) is not.
    if sys.executable.startswith("/root/") and os.access("/usr/bin/python3", os.X_OK):
        sys.executable = "/usr/bin/python3"
    user = pwd.getpwnam(args.user)
    work = pathlib.Path(tempfile.mkdtemp(prefix="omero-bench-", dir="/var/tmp"))
    work.chmod(0o755)
    results = []
    try:
        opts, _, states, context = load_salt(pathlib.Path(args.venv), args.user, work / "salt")
        managed = states["omero.config_managed"]
        for n in args.sizes:
            omerodir = work / f"omerodir-{n}"
            omerodir.mkdir()
            os.chown(omerodir, user.pw_uid, user.pw_gid)
            plan = [
                ("initial apply", desired(n, 1)),
                ("no-op", desired(n, 1)),
                ("change every key", desired(n, 2)),
            ]
            for phase, (props, appends) in plan:
                context.pop("omero.defaults", None)  # a new run: nothing cached
                before = context.get("omero.processes", 0)
                marker(f"{n}:{phase}")
                start = time.perf_counter()
                ret = managed(name="bench", properties=props, appends=appends, omerodir=str(omerodir))
                elapsed = time.perf_counter() - start
                if ret["result"] is not True:
                    raise SystemExit(f"N={n} {phase}: {ret['comment']}")
                results.append(
                    {
                        "n": n,
                        "phase": phase,
                        "seconds": elapsed,
                        "changes": len(ret["changes"]),
                        "context_processes": context.get("omero.processes", 0) - before,
                    }
                )
        marker("end")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pathlib.Path(args.out).write_text(json.dumps(results))


# ---------------------------------------------------------------- driver


EXECVE = re.compile(r'execve\("([^"]+)", \[(.*?)\]')


def count_from_strace(log, venv):
    counts = {}
    phase = None
    prefix = os.path.join(venv, "bin") + os.sep
    for line in log.splitlines():
        match = EXECVE.search(line)
        if not match:
            continue
        path, argv = match.groups()
        if '"bench-phase"' in argv:
            phase = re.findall(r'"([^"]*)"', argv)[-1]
            counts.setdefault(phase, 0)
        elif phase and path.startswith(prefix):
            counts[phase] += 1
    return counts


def run_worker(args, out, strace_log=None):
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--out",
        out,
        "--venv",
        args.venv,
        "--user",
        args.user,
        "--sizes",
        ",".join(map(str, args.sizes)),
    ]
    if strace_log:
        cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-s", "256", "-e", "trace=execve", "-o", strace_log] + cmd
    subprocess.run(cmd, check=True)
    return json.loads(pathlib.Path(out).read_text())


def time_one_cli_call(args):
    user = pwd.getpwnam(args.user)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        os.chmod(tmp, 0o755)
        omerodir = os.path.join(tmp, "omerodir")
        os.mkdir(omerodir)
        os.chown(omerodir, user.pw_uid, user.pw_gid)
        env = {"OMERODIR": omerodir, "HOME": user.pw_dir, "PATH": f"{args.venv}/bin:/usr/bin:/bin"}
        times = []
        for value in range(3):
            start = time.perf_counter()
            subprocess.run(
                [os.path.join(args.venv, "bin", "omero"), "config", "set", "omero.web.bench", str(value)],
                env=env,
                cwd="/",
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
        return sorted(times)[1]  # median of 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=DEFAULT_VENV)
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--sizes", default="10,100", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (omero runs as --user)")
    if not os.access(os.path.join(args.venv, "bin", "omero"), os.X_OK):
        raise SystemExit(f"no omero in {args.venv}: run `pytest test/functional` once, or pass --venv")
    try:
        pwd.getpwnam(args.user)
    except KeyError:
        raise SystemExit(f"no user {args.user}: run `pytest test/functional` once, or pass --user")
    if not shutil.which("strace"):
        raise SystemExit("strace is needed to count processes externally")

    with tempfile.TemporaryDirectory() as tmp:
        timed = run_worker(args, os.path.join(tmp, "timed.json"))
        log = os.path.join(tmp, "strace.log")
        traced = run_worker(args, os.path.join(tmp, "traced.json"), strace_log=log)
        external = count_from_strace(pathlib.Path(log).read_text(), args.venv)

    version = subprocess.run(
        [os.path.join(args.venv, "bin", "python"), "-c", "import importlib.metadata as m; print(m.version('omero-web'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    cli_seconds = time_one_cli_call(args)
    print(f"omero.config_managed benchmark: omero-web {version}, venv {args.venv}, user {args.user}")
    print(
        f"reference: one `omero config set` process takes {cli_seconds:.2f}s here (median of 3);"
        " one CLI call per key would cost N of them per run"
    )
    print("load average during the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("N managed = N-1 properties + 1 appended list (omero.web.middleware), fresh OMERODIR per N")
    print("wall time: run without strace; processes: __context__ counter / strace execve count")
    print()
    header = f"{'N':>4}  {'run':<18} {'changes':>7}  {'wall time':>9}  {'omero processes (context / strace)':>34}"
    print(header)
    print("-" * len(header))
    for row, traced_row in zip(timed, traced):
        key = f"{row['n']}:{row['phase']}"
        procs = f"{row['context_processes']} / {external.get(key, 0)}"
        print(
            f"{row['n']:>4}  {row['phase']:<18} {row['changes']:>7}  {row['seconds']:>8.3f}s  {procs:>34}"
        )
        if traced_row["context_processes"] != external.get(key, 0):
            print(f"      (traced run's context counter: {traced_row['context_processes']})")


if __name__ == "__main__":
    main()
