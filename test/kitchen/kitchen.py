#!/usr/bin/env python3
"""The project's kitchen: disposable Debian 12 hosts with a real systemd.

There is no Docker daemon on the project's machines, so kitchen-salt cannot
run here. Instead a host is a debootstrapped Debian 12 root, booted with
``systemd-nspawn -b`` and entered with ``nsenter``. It shares the machine's
network namespace: a port opened inside answers on the machine's 127.0.0.1,
so two hosts must use different ports.

What is cached (under ``CACHE``, outside the repo) and reused:

* ``rootfs-bookworm``: the debootstrap result (about 1 minute, 300 MB);
* ``golden-bookworm``: that root plus Salt in ``/opt/salt`` (about 1 minute);
* ``wheels/``: the IcePy wheel built from PyPI's sdist (about 8 minutes).

A host is a copy of the golden root under ``CACHE/hosts/<name>`` with this
checkout bind-mounted read-only at ``/srv/formula`` (Salt's file_roots),
``/srv/pillar`` for its pillar and the wheel cache at ``/srv/wheels``.

Used as a library by the tests (``Host``) and as a command::

    kitchen.py prepare                               # cache the root and the wheel
    kitchen.py converge [--name N] [--pillar FILE]   # build/boot/apply/verify
    kitchen.py destroy  [--name N]
    kitchen.py shell    [--name N] -- CMD...
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("OMERO_WEB_KITCHEN_CACHE", "/var/cache/omero-web-formula")
ROOTFS = os.path.join(CACHE, "rootfs-bookworm")
GOLDEN = os.path.join(CACHE, "golden-bookworm")
WHEELS = os.path.join(CACHE, "wheels")
HOSTS = os.path.join(CACHE, "hosts")
SALT_REQUIREMENT = os.environ.get("OMERO_WEB_KITCHEN_SALT", "salt==3007.*")
MIRROR = "http://deb.debian.org/debian"
# Packages every kitchen host gets from debootstrap: a booting systemd, and
# the python3 that Salt and the formula's virtualenv use.
BASE_PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates"
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}


def log(msg):
    print(">> " + msg, file=sys.stderr, flush=True)


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_host_tools():
    """Install the machine-side tools: debootstrap and systemd-nspawn."""
    missing = [t for t in ("debootstrap", "systemd-nspawn", "nsenter") if not shutil.which(t)]
    if missing:
        log("installing debootstrap and systemd-container on this machine")
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "install", "-y", "-qq", "debootstrap", "systemd-container", "util-linux"],
             stdout=subprocess.DEVNULL)


def ensure_rootfs():
    if os.path.isdir(ROOTFS):
        return
    ensure_host_tools()
    tmp = ROOTFS + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(CACHE, exist_ok=True)
    log("debootstrap Debian 12 into %s (about 1-2 minutes)" % ROOTFS)
    proc = subprocess.Popen(
        ["debootstrap", "--variant=minbase", "--include=" + BASE_PACKAGES,
         "bookworm", tmp, MIRROR],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    count = 0
    for line in proc.stdout:
        count += 1
        if line.startswith("I: Retrieving") or line.startswith("I: Base system"):
            continue
        if line.startswith("I: ") and count % 25 == 0 or line.startswith(("E:", "W:")):
            log("debootstrap: " + line.strip())
    if proc.wait() != 0:
        raise RuntimeError("debootstrap failed")
    os.rename(tmp, ROOTFS)


def _copy_tree(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    _run(["cp", "-a", "--reflink=auto", src, dst])


def _install_ca_bundle(root):
    # HTTPS from these machines goes through an intercepting proxy whose CA
    # is only in the machine's bundle: give it to the host too.
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(bundle):
        target = os.path.join(root, "etc/ssl/certs/ca-certificates.crt")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(target):
            os.unlink(target)
        shutil.copyfile(bundle, target)


def ensure_golden():
    """The debootstrap root plus Salt, shared by every kitchen host."""
    stamp = os.path.join(GOLDEN, "etc/omero-web-kitchen-golden")
    if os.path.exists(stamp) and open(stamp).read().strip() == SALT_REQUIREMENT:
        return
    ensure_rootfs()
    tmp = GOLDEN + ".tmp"
    _copy_tree(ROOTFS, tmp)
    _install_ca_bundle(tmp)
    log("installing %s into the golden root's /opt/salt (about 1 minute)" % SALT_REQUIREMENT)
    nspawn = ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", tmp,
              "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1"]
    # Tools the tests use inside (ps, curl), and fresh package lists.
    _run(nspawn + ["bash", "-c", "apt-get update -qq && apt-get install -y -qq procps curl"],
         env=CLEAN_ENV, stdout=subprocess.DEVNULL)
    _run(nspawn + ["python3", "-m", "venv", "/opt/salt"])
    _run(nspawn + ["/opt/salt/bin/pip", "install", "-q", SALT_REQUIREMENT],
         env=CLEAN_ENV)
    for tool in ("salt-call", "salt-minion"):
        link = os.path.join(tmp, "usr/local/bin", tool)
        if not os.path.lexists(link):
            os.symlink("/opt/salt/bin/" + tool, link)
    # A masterless minion: the checkout is the file_roots, /srv/pillar the pillar.
    os.makedirs(os.path.join(tmp, "etc/salt/minion.d"), exist_ok=True)
    with open(os.path.join(tmp, "etc/salt/minion.d/kitchen.conf"), "w") as fh:
        fh.write("file_client: local\n"
                 "file_roots:\n  base:\n    - /srv/formula\n"
                 "pillar_roots:\n  base:\n    - /srv/pillar\n"
                 "state_output: changes\n")
    # No apt recommends: a host gets what the formula asks for, as on a server.
    with open(os.path.join(tmp, "etc/apt/apt.conf.d/90kitchen"), "w") as fh:
        fh.write('APT::Install-Recommends "false";\n')
    with open(os.path.join(tmp, "etc/omero-web-kitchen-golden"), "w") as fh:
        fh.write(SALT_REQUIREMENT + "\n")
    shutil.rmtree(GOLDEN, ignore_errors=True)
    os.rename(tmp, GOLDEN)


def ensure_icepy_wheel(python_tag="cp311"):
    """Path of the IcePy 3.6.5 wheel for the hosts' python (built if missing)."""
    os.makedirs(WHEELS, exist_ok=True)
    for name in sorted(os.listdir(WHEELS)):
        if name.startswith("zeroc_ice-3.6.5-%s-" % python_tag) and name.endswith(".whl"):
            return os.path.join(WHEELS, name)
    log("building the IcePy 3.6.5 wheel from the PyPI sdist (about 8 minutes, once)")
    script = os.path.join(REPO, "test/kitchen/build-icepy-wheel.sh")
    python = shutil.which("python3.11") or sys.executable
    out = subprocess.run(["bash", script, python, WHEELS], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


class Host:
    """One disposable Debian 12 systemd host, booted with systemd-nspawn."""

    def __init__(self, name="omero-web-kitchen", repo=REPO):
        self.name = name
        self.repo = repo
        self.root = os.path.join(HOSTS, name)
        self.pillar_dir = os.path.join(CACHE, "pillars", name)
        self.pidfile = self.root + ".pid"
        self.nspawn_pid = None

    # -- lifecycle ---------------------------------------------------------
    def create(self, fresh=True):
        ensure_golden()
        os.makedirs(HOSTS, exist_ok=True)
        if fresh or not os.path.isdir(self.root):
            self.stop()
            log("copying the golden root to %s" % self.root)
            _copy_tree(GOLDEN, self.root)
        os.makedirs(self.pillar_dir, exist_ok=True)
        for d in ("srv/formula", "srv/pillar", "srv/wheels"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        with open(os.path.join(self.root, "etc/hostname"), "w") as fh:
            fh.write(self.name + "\n")
        # A masterless minion: the checkout is the file_roots (the wheel
        # cache too, so that pillar can name the wheel as salt://<file>),
        # /srv/pillar the pillar.
        os.makedirs(os.path.join(self.root, "etc/salt/minion.d"), exist_ok=True)
        with open(os.path.join(self.root, "etc/salt/minion.d/kitchen.conf"), "w") as fh:
            fh.write("file_client: local\n"
                     "file_roots:\n  base:\n    - /srv/formula\n    - /srv/wheels\n"
                     "pillar_roots:\n  base:\n    - /srv/pillar\n"
                     "state_output: changes\n")
        return self

    def running_pid(self):
        try:
            pid = int(open(self.pidfile).read())
        except (OSError, ValueError):
            return None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                cmdline = fh.read().split(b"\0")
        except OSError:
            return None
        if b"systemd-nspawn" in cmdline[0] and self.root.encode() in cmdline:
            return pid
        return None

    def boot(self, timeout=60):
        pid = self.running_pid()
        if pid:
            self.nspawn_pid = pid
            return self
        log("booting %s with systemd-nspawn" % self.name)
        logf = open(self.root + ".console.log", "ab")
        cmd = ["systemd-nspawn", "-q", "-b", "--register=no", "--keep-unit",
               "-M", self.name, "-D", self.root,
               "--bind-ro=%s:/srv/formula" % self.repo,
               "--bind=%s:/srv/pillar" % self.pillar_dir,
               "--bind-ro=%s:/srv/wheels" % WHEELS]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.nspawn_pid = proc.pid
        with open(self.pidfile, "w") as fh:
            fh.write(str(proc.pid))
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("systemd-nspawn exited with %s; see %s.console.log"
                                   % (proc.returncode, self.root))
            if self._init_pid():
                res = self.run(["systemctl", "is-system-running"], check=False)
                state = res.stdout.strip()
                if state in ("running", "degraded"):
                    return self
            time.sleep(0.5)
        raise RuntimeError("%s did not boot in %ss (state %r)" % (self.name, timeout, state))

    def _init_pid(self):
        """PID (on this machine) of the host's systemd: nspawn's child."""
        if not self.nspawn_pid:
            return None
        try:
            out = subprocess.run(["pgrep", "-P", str(self.nspawn_pid)],
                                 stdout=subprocess.PIPE, text=True).stdout.split()
        except FileNotFoundError:
            return None
        return int(out[0]) if out else None

    def stop(self, timeout=30):
        pid = self.running_pid()
        if not pid:
            return
        log("stopping %s (systemd-nspawn pid %d)" % (self.name, pid))
        self.nspawn_pid = pid
        init = self._init_pid()
        # SIGRTMIN+3 asks the host's systemd for a clean poweroff.
        if init:
            os.kill(init, signal.SIGRTMIN + 3)
        deadline = time.time() + timeout
        while time.time() < deadline and self.running_pid():
            time.sleep(0.5)
        if self.running_pid():
            os.kill(pid, signal.SIGKILL)
            time.sleep(1)
        self.nspawn_pid = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.pillar_dir, ignore_errors=True)
        for f in (self.pidfile, self.root + ".console.log"):
            if os.path.exists(f):
                os.unlink(f)

    # -- using it ----------------------------------------------------------
    def run(self, cmd, check=True, input=None, timeout=1800, env=None):
        """Run a command inside the host (as root) with a clean environment."""
        init = self._init_pid()
        if not init:
            raise RuntimeError("%s is not running" % self.name)
        if isinstance(cmd, str):
            cmd = ["bash", "-c", cmd]
        full_env = dict(CLEAN_ENV, **(env or {}))
        argv = ["nsenter", "-t", str(init), "-a", "env", "-i"]
        argv += ["%s=%s" % kv for kv in full_env.items()] + list(cmd)
        res = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError("in %s: %s exited %d\nstdout: %s\nstderr: %s" % (
                self.name, " ".join(cmd), res.returncode, res.stdout[-4000:], res.stderr[-4000:]))
        return res

    def write_pillar(self, pillar, name="omero_web"):
        """Write ``pillar`` (a dict, or YAML text) as the host's only pillar."""
        import yaml
        text = pillar if isinstance(pillar, str) else yaml.safe_dump(pillar, sort_keys=False)
        with open(os.path.join(self.pillar_dir, name + ".sls"), "w") as fh:
            fh.write(text)
        with open(os.path.join(self.pillar_dir, "top.sls"), "w") as fh:
            fh.write("base:\n  '*':\n    - %s\n" % name)

    def salt_call(self, *args, check=False, timeout=1800):
        """salt-call --local ... --out=json; returns (parsed json, CompletedProcess)."""
        argv = ["salt-call", "--local", "--out=json", "--retcode-passthrough",
                "--log-level=quiet"] + list(args)
        res = self.run(argv, check=False, timeout=timeout)
        try:
            data = json.loads(res.stdout) if res.stdout.strip() else None
        except ValueError:
            data = None
        if check and res.returncode != 0:
            raise RuntimeError("salt-call %s failed (%d):\n%s\n%s" % (
                " ".join(args), res.returncode, res.stdout[-6000:], res.stderr[-3000:]))
        return data, res

    def apply(self, sls="omero_web", test=False, timeout=1800):
        """Sync custom modules, then state.apply; returns an ApplyResult."""
        self.salt_call("saltutil.sync_all", check=True)
        args = ["state.apply", sls]
        if test:
            args.append("test=True")
        start = time.time()
        data, res = self.salt_call(*args, timeout=timeout)
        return ApplyResult(data, res, time.time() - start)

    def http_get(self, url, headers=None, timeout=10):
        """GET from this machine (the hosts share its network namespace)."""
        req = urllib.request.Request(url, headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            resp = opener.open(req, timeout=timeout)
            return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode("utf-8", "replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class ApplyResult:
    """A state.apply run: its per-state results and a summary."""

    def __init__(self, data, proc, seconds):
        self.proc = proc
        self.seconds = seconds
        self.raw = data
        local = (data or {}).get("local")
        self.states = local if isinstance(local, dict) else {}
        self.errors = local if isinstance(local, list) else []
        if not isinstance(local, (dict, list)) and proc.returncode != 0:
            self.errors = [proc.stdout[-4000:] + proc.stderr[-4000:]]

    @property
    def changed(self):
        return {k: v for k, v in self.states.items() if v.get("changes")}

    @property
    def failed(self):
        return {k: v for k, v in self.states.items() if v.get("result") is False}

    @property
    def predicted(self):
        """States a test=True run says it would change (result None or changes)."""
        return {k: v for k, v in self.states.items()
                if v.get("result") is None or v.get("changes")}

    @property
    def ok(self):
        return not self.errors and not self.failed and self.proc.returncode == 0

    @staticmethod
    def state_id(key):
        """'pkg_|-omero_web-..._|-name_|-installed' -> 'omero_web-...'."""
        parts = key.split("_|-")
        return parts[1] if len(parts) == 4 else key

    def summary(self):
        lines = ["states run: %d, changed: %d, failed: %d, time: %.1f s" % (
            len(self.states), len(self.changed), len(self.failed), self.seconds)]
        for key, st in sorted(self.failed.items()):
            lines.append("FAILED %s: %s" % (self.state_id(key), str(st.get("comment"))[:500]))
        for err in self.errors:
            lines.append("ERROR %s" % str(err)[:2000])
        return "\n".join(lines)


def kitchen_pillar(extra=None):
    """pillar.example's values, adapted to the kitchen: the locally built wheel."""
    import yaml
    with open(os.path.join(REPO, "pillar.example")) as fh:
        pillar = yaml.safe_load(fh)
    wheel = ensure_icepy_wheel()
    pillar["omero_web"].setdefault("ice", {})["wheel"] = "/srv/wheels/" + os.path.basename(wheel)
    if extra:
        _deep_merge(pillar["omero_web"], extra)
    return pillar


def _deep_merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def wait_http(url, timeout=120, expect=200):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == expect:
                    return resp.status
                last = resp.status
        except Exception as err:  # noqa: BLE001 - keep polling, report the last error
            last = err
        time.sleep(1)
    raise RuntimeError("%s did not answer %s within %ss (last: %s)" % (url, expect, timeout, last))


def _with_progress(func, what, every=15):
    """Run func(), printing a line every `every` seconds until it returns."""
    import threading
    done = threading.Event()
    start = time.time()

    def tick():
        while not done.wait(every):
            log("%s... %d s" % (what, time.time() - start))
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        return func()
    finally:
        done.set()


def cmd_converge(args):
    start = time.time()
    host = Host(args.name)
    host.create(fresh=not os.path.isdir(host.root))
    host.boot()
    pillar = kitchen_pillar()
    if args.pillar:
        import yaml
        with open(args.pillar) as fh:
            _deep_merge(pillar["omero_web"], (yaml.safe_load(fh) or {}).get("omero_web", {}))
    host.write_pillar(pillar)
    log("applying the formula: salt-call --local state.apply omero_web "
        "(first run: packages, virtualenv and omero-web, a minute or two)")
    result = _with_progress(host.apply, "applying")
    web = pillar["omero_web"]
    port = web.get("nginx", {}).get("port", 80)
    prefix = web.get("prefix") or ""
    url = "http://127.0.0.1:%s%s/webclient/login/" % (port, prefix)
    print(result.summary())
    if not result.ok:
        print("the apply failed; the host is left running for inspection: "
              "test/kitchen/kitchen.py shell -- journalctl -u omero-web")
        return 1
    wait_http(url, timeout=120)
    status, _, body = host.http_get(url)
    title = "OMERO.web - Login" in body
    print("OMERO.web answers through nginx at %s (HTTP %s%s)" % (
        url, status, ", login page" if title else ""))
    print("total time: %.0f s; tear down with: test/kitchen/kitchen destroy" % (time.time() - start))
    return 0


def cmd_prepare(args):
    ensure_host_tools()
    ensure_golden()
    print(ensure_icepy_wheel())
    return 0


def cmd_destroy(args):
    Host(args.name).destroy()
    print("destroyed %s" % args.name)
    return 0


def cmd_shell(args):
    host = Host(args.name)
    host.nspawn_pid = host.running_pid()
    res = host.run(args.cmd or ["bash", "-c", "systemctl --no-pager status omero-web"], check=False)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    return res.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("converge", help="build or reuse the host, apply the formula, check it serves")
    p.add_argument("--name", default="omero-web-kitchen")
    p.add_argument("--pillar", help="YAML file merged over pillar.example's values")
    p.set_defaults(func=cmd_converge)
    p = sub.add_parser("prepare", help="build the cached Debian 12 root with Salt and the IcePy wheel")
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("destroy", help="stop the host and delete its root")
    p.add_argument("--name", default="omero-web-kitchen")
    p.set_defaults(func=cmd_destroy)
    p = sub.add_parser("shell", help="run a command inside the host")
    p.add_argument("--name", default="omero-web-kitchen")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_shell)
    args = parser.parse_args(argv)
    if getattr(args, "cmd", None) and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if os.geteuid() != 0:
        parser.error("run as root (debootstrap, systemd-nspawn and nsenter need it)")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
