#!/usr/bin/env python3
"""The project's kitchen: disposable Debian systemd hosts (Debian 12 or 13).

Which Salt runs on which kitchen OS, checked 2026-12-02 on this project's
machine kind (golden root: ``pip install`` into /opt/salt, ``salt-call
--version``; then ``kitchen converge`` of pillar.example, its ports moved to
9110-9112, twice: the first apply, then the no-op one):

==========================  ==========  ===========================  ==========================
OS (python)                 --salt      pip installs                 changed: 1st / 2nd apply
==========================  ==========  ===========================  ==========================
debian12 bookworm (3.11.2)  3006        salt==3006.* -> 3006.29      31 of 32 / 0 of 32, 0 failed
debian12 bookworm (3.11.2)  3007        salt==3007.* -> 3007.16      31 of 32 / 0 of 32, 0 failed
debian12 bookworm (3.11.2)  3008        salt==3008.4 (see below)     31 of 32 / 0 of 32, 0 failed
debian13 trixie (3.13.5)    3006        salt==3006.* -> 3006.29      31 of 32 / 0 of 32, 0 failed
debian13 trixie (3.13.5)    3007        salt==3007.* -> 3007.16      31 of 32 / 0 of 32, 0 failed
debian13 trixie (3.13.5)    3008        salt==3008.4 (see below)     31 of 32 / 0 of 32, 0 failed
==========================  ==========  ===========================  ==========================

* Every pair works, so the kitchen refuses none (``UNSUPPORTED`` is empty).
  Salt 3006.29 applies the formula on Python 3.13 like the others; it (and
  3007.16) only print DeprecationWarnings there (``datetime.utcnow()``).
* 3008 means salt==3008.4, not 3008.*: salt 3008.5 pins certifi>=2026.10.23,
  which the package index here does not serve (it has 2026.10.19.post1).
  salt 3008 needs timelib, which PyPI has only as an sdist: the golden root
  gets gcc and python3-dev while pip compiles it, then purges them.
* Debian 13 on the formula needs ``lookup: {python: {version: "3.13"}}``
  until the formula has parameters for it (``kitchen_pillar`` adds it while
  ``omero_web/parameters/osfinger/Debian-13.yaml`` is missing): without it
  the IcePy state looks in python3.11's site-packages and reinstalls on
  every apply.
* Timings: debootstrap trixie 60 s; golden root 40-50 s (3006, 3007),
  110 s (3008: gcc); cp313 IcePy wheel 455 s (build root copy, apt, compile
  on 2 cores, check in the plain root).

There is no Docker daemon on the project's machines, so kitchen-salt cannot
run here. Instead a host is a debootstrapped Debian root, booted with
``systemd-nspawn -b`` and entered with ``nsenter``. It shares the machine's
network namespace: a port opened inside answers on the machine's 127.0.0.1,
so two hosts must use different ports.

What is cached (under ``CACHE``, outside the repo) and reused, per Debian
suite (bookworm = debian12, trixie = debian13) and Salt release:

* ``rootfs-<suite>``: the debootstrap result (about 1 minute, 300 MB);
* ``golden-<suite>-salt<release>``: that root plus Salt in ``/opt/salt``
  (about 1 minute), e.g. ``golden-bookworm-salt3007``;
* ``wheels/``: the IcePy wheels built from PyPI's sdist, one per python
  (cp311 for bookworm, cp313 for trixie), each built inside a throwaway copy
  of its suite's root (about 6-8 minutes, once; one build at a time).

A host is a copy of a golden root under ``CACHE/hosts/<name>`` with this
checkout bind-mounted read-only at ``/srv/formula`` (Salt's file_roots),
``/srv/pillar`` for its pillar and the wheel cache at ``/srv/wheels``.

Used as a library by the tests (``Host``, ``kitchen_pillar``) and as a
command (``test/kitchen/kitchen`` is the front door)::

    kitchen.py prepare  [--os OS]... [--salt REL]...   # cache roots and wheels
    kitchen.py converge [--name N] [--os OS] [--salt REL] [--pillar FILE]
    kitchen.py destroy  [--name N]
    kitchen.py shell    [--name N] -- CMD...

Environment: OMERO_WEB_KITCHEN_OS (debian12 | debian13, default debian12),
OMERO_WEB_KITCHEN_SALT (3006 | 3007 | 3008 or a pip requirement such as
``salt==3007.16``, default 3007), OMERO_WEB_KITCHEN_NAME (default host name,
omero-web-kitchen), OMERO_WEB_KITCHEN_CACHE, OMERO_WEB_KITCHEN_MIRROR (the
Debian archive debootstrap uses), OMERO_WEB_KITCHEN_MIN_FREE_MB (free space
required before each debootstrap, copy or build).

Every failure a user can meet ends with one line on stderr,
``kitchen: error: ...``, and a non-zero exit; long output (debootstrap, pip,
the compiler) goes to a log file under ``CACHE/logs`` that the line names.
"""
import argparse
import collections
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.abspath(os.environ.get("OMERO_WEB_KITCHEN_CACHE", "/var/cache/omero-web-formula"))
WHEELS = os.path.join(CACHE, "wheels")
HOSTS = os.path.join(CACHE, "hosts")
LOGS = os.path.join(CACHE, "logs")
MIRROR = os.environ.get("OMERO_WEB_KITCHEN_MIRROR", "http://deb.debian.org/debian")
# Free space wanted before each debootstrap, copy or build: a root is about
# 300 MB, a golden root 700 MB, a converged host about 1.3 GB, an IcePy build
# root about 1.5 GB while it compiles.
MIN_FREE_MB = os.environ.get("OMERO_WEB_KITCHEN_MIN_FREE_MB", "2048")
DEFAULT_HOST_NAME = os.environ.get("OMERO_WEB_KITCHEN_NAME", "omero-web-kitchen")

OsRelease = collections.namedtuple(
    "OsRelease", "name suite label python_version python_tag osfinger")
OS_RELEASES = {
    "debian12": OsRelease("debian12", "bookworm", "Debian 12", "3.11", "cp311", "Debian-12"),
    "debian13": OsRelease("debian13", "trixie", "Debian 13", "3.13", "cp313", "Debian-13"),
}
DEFAULT_OS = "debian12"

# --salt / OMERO_WEB_KITCHEN_SALT short forms and the pip requirement each
# installs in the golden root's /opt/salt.
SALT_RELEASES = {
    "3006": "salt==3006.*",
    "3007": "salt==3007.*",
    # Not 3008.*: salt 3008.5 pins certifi>=2026.10.23, which the package
    # index these machines use does not serve (it has 2026.10.19.post1);
    # 3008.4 (certifi>=2026.10.19) installs.
    "3008": "salt==3008.4",
}
DEFAULT_SALT = "3007"
# Debian packages a Salt release needs only while pip installs it, removed
# again afterwards (a golden root stays a server without a compiler).
SALT_INSTALL_BUILD_PACKAGES = {
    # salt 3008 depends on timelib, which PyPI serves only as an sdist: its C
    # extension is compiled during `pip install`.
    "3008": ["gcc", "python3-dev"],
}
# (os, salt release) pairs that do not work, and why (see the findings above).
UNSUPPORTED = {}

# Packages every kitchen host gets from debootstrap: a booting systemd, and
# the python3 that Salt and the formula's virtualenv use.
BASE_PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates"
# What an IcePy build root adds to its suite's root: the compiler, python's
# headers, and the headers of the libraries IcePy links (IceSSL: OpenSSL;
# Ice's protocol compression: bzip2).
ICEPY_BUILD_PACKAGES = ["g++", "python3-dev", "libssl-dev", "libbz2-dev"]
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}
# The machine's tools the kitchen runs, and the Debian package of each.
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "nsenter": "util-linux",
    "pgrep": "procps",
}


class KitchenError(RuntimeError):
    """A failure the user can act on: reported as one line, no traceback."""


def log(msg):
    print(">> " + msg, file=sys.stderr, flush=True)


# -- choices: OS and Salt release ---------------------------------------------

def selected_os(name=None):
    """The kitchen OS name: ``name``, else $OMERO_WEB_KITCHEN_OS, else debian12."""
    chosen = name or os.environ.get("OMERO_WEB_KITCHEN_OS") or DEFAULT_OS
    if chosen not in OS_RELEASES:
        raise KitchenError("unknown kitchen OS %r (--os or OMERO_WEB_KITCHEN_OS); choose one of %s"
                           % (chosen, ", ".join(sorted(OS_RELEASES))))
    return chosen


def salt_requirement(release=None):
    """The pip requirement for Salt: a short form (3006, 3007, 3008) or a requirement."""
    chosen = release or os.environ.get("OMERO_WEB_KITCHEN_SALT") or DEFAULT_SALT
    if chosen in SALT_RELEASES:
        return SALT_RELEASES[chosen]
    if re.match(r"^salt\s*(==|>=|<=|~=|<|>|!=|$)", chosen):
        return chosen
    raise KitchenError("unknown Salt release %r (--salt or OMERO_WEB_KITCHEN_SALT); use %s or a pip "
                       "requirement such as salt==3007.16" % (chosen, ", ".join(sorted(SALT_RELEASES))))


def salt_label(requirement):
    """What a golden root's directory calls its Salt: salt3007, or salt==3007.16 -> salt3007.16."""
    for short, req in SALT_RELEASES.items():
        if req == requirement:
            return "salt" + short
    return "salt" + re.sub(r"[^0-9A-Za-z.*,]+", "_", requirement[len("salt"):]).strip("_").replace("*", "x")


def salt_release_of(requirement):
    """The short release (3006...) a requirement names, if any, for UNSUPPORTED."""
    match = re.search(r"(3\d{3})", requirement)
    return match.group(1) if match else None


def check_supported(os_name, requirement):
    reason = UNSUPPORTED.get((os_name, salt_release_of(requirement)))
    if reason:
        raise KitchenError("%s is not supported on %s in the kitchen: %s"
                           % (requirement, OS_RELEASES[os_name].label, reason))


def rootfs_dir(os_name):
    return os.path.join(CACHE, "rootfs-" + OS_RELEASES[os_name].suite)


def golden_dir(os_name, requirement):
    return os.path.join(CACHE, "golden-%s-%s" % (OS_RELEASES[os_name].suite, salt_label(requirement)))


# The default hosts' Salt requirement, for reports (bench/converge_bench.py);
# not validated here (salt_requirement() does, with a one-line error).
_SALT_FROM_ENV = os.environ.get("OMERO_WEB_KITCHEN_SALT") or DEFAULT_SALT
SALT_REQUIREMENT = SALT_RELEASES.get(_SALT_FROM_ENV, _SALT_FROM_ENV)


# -- checks before the work: each failure is one line --------------------------

def require_root():
    if os.geteuid() != 0:
        raise KitchenError("run as root: debootstrap, systemd-nspawn and nsenter need it")


def require_free_space(before_what, path=CACHE):
    """Fail early, with a number, instead of in the middle of a copy."""
    try:
        needed = int(MIN_FREE_MB)
    except ValueError:
        raise KitchenError("OMERO_WEB_KITCHEN_MIN_FREE_MB must be a number of megabytes, got %r"
                           % MIN_FREE_MB)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    stat = os.statvfs(existing)
    free = stat.f_bavail * stat.f_frsize // (1024 * 1024)
    if free < needed:
        raise KitchenError("only %d MB free in %s; the kitchen needs at least %d MB there before %s "
                           "(free some space, or set OMERO_WEB_KITCHEN_CACHE to a bigger file system)"
                           % (free, existing, needed, before_what))


def require_archive(suite):
    """debootstrap needs the Debian archive: check it answers before starting."""
    url = "%s/dists/%s/Release" % (MIRROR.rstrip("/"), suite)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=20) as resp:
            if resp.status == 200:
                return
            problem = "HTTP %s" % resp.status
    except urllib.error.HTTPError as err:
        problem = "HTTP %s" % err.code
    except (urllib.error.URLError, OSError, ValueError) as err:
        problem = str(getattr(err, "reason", err))
    raise KitchenError("cannot reach the Debian package archive at %s (%s: %s); debootstrap needs it: "
                       "check this machine's network, or set OMERO_WEB_KITCHEN_MIRROR to a reachable mirror"
                       % (MIRROR, url, problem))


def _listening_sockets():
    """{port: [socket inode]} of the TCP sockets listening in this network namespace."""
    listening = collections.defaultdict(list)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A":  # 0A: TCP_LISTEN
                listening[int(fields[1].rpartition(":")[2], 16)].append(fields[9])
    return listening


def _socket_owners(inodes):
    """PIDs holding any of the socket inodes (from /proc/*/fd)."""
    wanted = {"socket:[%s]" % inode for inode in inodes}
    owners = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
            if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)) in wanted for fd in fds):
                owners.add(int(pid))
        except OSError:
            continue
    return owners


def _descends_from(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open("/proc/%d/stat" % pid) as fh:
                pid = int(fh.read().rpartition(")")[2].split()[1])  # field 4: ppid
        except (OSError, ValueError, IndexError):
            return False
    return False


def pillar_ports(web):
    """[(port, pillar key)] the formula will listen on, from the effective pillar."""
    ports = []
    nginx = web.get("nginx") or {}
    if nginx.get("enabled", True):
        ports.append((int(nginx.get("port", 80)), "nginx:port"))
        tls = nginx.get("tls") or {}
        if tls.get("cert"):
            ports.append((int(tls.get("port", 443)), "nginx:tls:port"))
    ports.append((int((web.get("gunicorn") or {}).get("port", 4080)), "gunicorn:port"))
    sessions = web.get("sessions") or {}
    if sessions.get("backend") == "redis":
        url = urllib.parse.urlsplit(sessions.get("redis_url") or "")
        if url.scheme == "redis" and url.hostname in ("127.0.0.1", "localhost", "::1"):
            ports.append((url.port or 6379, "sessions:redis_url"))
    return ports


def require_ports_free(web, host):
    """The host shares this machine's network: the pillar's ports must be free,
    unless the listener is this very host (a second converge)."""
    listening = _listening_sockets()
    own_pid = host.running_pid()
    taken = []
    for port, key in pillar_ports(web):
        if port not in listening:
            continue
        owners = _socket_owners(listening[port])
        if own_pid and owners and all(_descends_from(pid, own_pid) for pid in owners):
            continue
        taken.append((port, key))
    if len(taken) == 1:
        raise KitchenError("port %d is already in use on this machine (%s); free it or pass --pillar "
                           "with another port" % taken[0])
    if taken:
        raise KitchenError("ports %s are already in use on this machine; free them or pass --pillar "
                           "with other ports" % ", ".join("%d (%s)" % item for item in taken))


# -- running things, with their output in a log ---------------------------------

def _log_path(what):
    os.makedirs(LOGS, exist_ok=True)
    return os.path.join(LOGS, re.sub(r"[^0-9A-Za-z.-]+", "-", what).strip("-") + ".log")


# systemd-nspawn's own notice after every run here (no systemd on this
# machine to clean its propagation directory): never the reason of a failure.
NSPAWN_NOISE = "Attempted to remove disk file system under"


def _last_message(lines):
    """The line of a failed command's output that most likely says why."""
    for pattern in (r"fatal error:", r"^(E:|ERROR|error:|fatal|\S+Error\b)", r"\S"):
        for line in reversed(lines):
            if re.search(pattern, line.strip()):
                return line.strip()[:300]
    return "no output"


def run_logged(cmd, what, show=None, env=None, cwd=None):
    """Run cmd with its output in CACHE/logs/<what>.log; show(line) picks progress lines.

    On failure: one KitchenError line naming the log and the output's last error.
    """
    path = _log_path(what)
    tail = collections.deque(maxlen=200)
    with open(path, "w") as logf:
        logf.write("$ %s\n" % " ".join(cmd))
        logf.flush()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    env=env if env is not None else CLEAN_ENV, cwd=cwd)
        except OSError as err:
            raise KitchenError("%s: cannot run %s: %s" % (what, cmd[0], err))
        for line in proc.stdout:
            logf.write(line)
            if NSPAWN_NOISE not in line:
                tail.append(line.rstrip("\n"))
            if show and show(line):
                log(re.sub(r"^>>\s*", "", line.strip()))
        returncode = proc.wait()
    if returncode != 0:
        raise KitchenError("%s failed (exit %d): %s; full output in %s"
                           % (what, returncode, _last_message(list(tail)), path))
    return list(tail)


def nspawn(root, setenv=(), options=()):
    """systemd-nspawn running one command in root (no boot, no registration:
    this machine has no systemd/dbus to register with); append the command."""
    return (["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", root,
             "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1",
             "--setenv=PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]
            + ["--setenv=" + kv for kv in setenv] + list(options))


@contextlib.contextmanager
def cache_lock(name):
    """Serialise work on one cache entry between kitchen processes (two test
    sessions, two minions). The IcePy build takes one lock for all pythons:
    the machine has 2 cores, never two builds at once."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "." + name + ".lock"), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another kitchen process working on %s" % name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_host_tools():
    """Install the machine-side tools: debootstrap, systemd-nspawn, nsenter, pgrep."""
    _ensure_machine_packages(sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool)}))


def _copy_tree(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    run_logged(["cp", "-a", "--reflink=auto", src, dst], "copy " + os.path.basename(dst))


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


# -- the cached roots -----------------------------------------------------------

def ensure_rootfs(os_name=None):
    """The debootstrapped root of the OS (cached); returns its path."""
    release = OS_RELEASES[selected_os(os_name)]
    root = rootfs_dir(release.name)
    if os.path.isdir(root):
        return root
    with cache_lock("rootfs-" + release.suite):
        if os.path.isdir(root):
            return root
        ensure_host_tools()
        require_free_space("debootstrap of %s (%s)" % (release.label, release.suite))
        require_archive(release.suite)
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(CACHE, exist_ok=True)
        log("debootstrap %s (%s) into %s (about 1-2 minutes)" % (release.label, release.suite, root))
        start = time.time()
        count = [0]

        def progress(line):
            # One debootstrap line in 25, skipping the per-package noise.
            count[0] += 1
            if line.startswith(("E:", "W:")):
                return True
            return (line.startswith("I: ") and count[0] % 25 == 0
                    and not line.startswith(("I: Retrieving", "I: Base system")))
        run_logged(["debootstrap", "--variant=minbase", "--include=" + BASE_PACKAGES,
                    release.suite, tmp, MIRROR], "debootstrap " + release.suite, show=progress)
        os.rename(tmp, root)
        log("debootstrap %s done in %.0f s" % (release.suite, time.time() - start))
    return root


def ensure_golden(os_name=None, salt=None):
    """The OS's root plus Salt in /opt/salt, shared by every kitchen host of
    that (OS, Salt) pair; returns its path."""
    os_name = selected_os(os_name)
    requirement = salt_requirement(salt)
    check_supported(os_name, requirement)
    golden = golden_dir(os_name, requirement)
    stamp = os.path.join(golden, "etc/omero-web-kitchen-golden")
    if _golden_requirement(stamp) == requirement:
        return golden
    with cache_lock(os.path.basename(golden)):
        if _golden_requirement(stamp) == requirement:
            return golden
        rootfs = ensure_rootfs(os_name)
        require_free_space("copying %s to a golden root" % os.path.basename(rootfs))
        start = time.time()
        tmp = golden + ".tmp"
        _copy_tree(rootfs, tmp)
        _install_ca_bundle(tmp)
        log("installing %s into the golden root's /opt/salt (%s, about 1 minute)"
            % (requirement, OS_RELEASES[os_name].label))
        what = os.path.basename(golden)
        # Tools the tests use inside (ps, curl), and fresh package lists.
        run_logged(nspawn(tmp) + ["bash", "-c", "apt-get update -qq && apt-get install -y -qq procps curl"],
                   what + " apt-get")
        run_logged(nspawn(tmp) + ["python3", "-m", "venv", "/opt/salt"], what + " venv")
        build_packages = SALT_INSTALL_BUILD_PACKAGES.get(salt_release_of(requirement), [])
        if build_packages:
            run_logged(nspawn(tmp) + ["apt-get", "install", "-y", "-qq"] + build_packages,
                       what + " apt-get build packages")
        run_logged(nspawn(tmp) + ["/opt/salt/bin/pip", "install", "-q", requirement], what + " pip install")
        if build_packages:
            run_logged(nspawn(tmp) + ["apt-get", "purge", "-y", "-qq", "--auto-remove"] + build_packages,
                       what + " apt-get purge build packages")
        version = [line for line in run_logged(
            nspawn(tmp) + ["/opt/salt/bin/salt-call", "--local", "--version"], what + " salt-call --version")
            if line.startswith("salt-call ")][-1].strip()
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
        # First line: what was asked for (the cache key); second: what pip installed.
        with open(os.path.join(tmp, "etc/omero-web-kitchen-golden"), "w") as fh:
            fh.write("%s\n%s\n" % (requirement, version))
        shutil.rmtree(golden, ignore_errors=True)
        os.rename(tmp, golden)
        log("golden root %s ready (%s) in %.0f s" % (what, version, time.time() - start))
    return golden


def _golden_requirement(stamp):
    try:
        with open(stamp) as fh:
            return fh.readline().strip()
    except OSError:
        return None


def golden_salt_version(golden):
    """'salt-call 3007.16 (Chlorine)' as recorded when the golden root was built."""
    try:
        with open(os.path.join(golden, "etc/omero-web-kitchen-golden")) as fh:
            return fh.read().splitlines()[1]
    except (OSError, IndexError):
        return "unknown"


# -- the IcePy wheel --------------------------------------------------------------

def _wheel_in(directory, python_tag):
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if name.startswith("zeroc_ice-3.6.5-%s-" % python_tag) and name.endswith(".whl"):
                return os.path.join(directory, name)
    return None


def ensure_icepy_wheel(python_tag=None):
    """Path of the IcePy 3.6.5 wheel for ``python_tag`` (default: the selected
    OS's python), built inside that OS's root if it is not cached."""
    python_tag = python_tag or OS_RELEASES[selected_os()].python_tag
    wheel = _wheel_in(WHEELS, python_tag)
    if wheel:
        return wheel
    builders = [r.name for r in OS_RELEASES.values() if r.python_tag == python_tag]
    if not builders:
        raise KitchenError("no kitchen OS has python %s (%s)" % (python_tag, ", ".join(
            "%s: %s" % (r.name, r.python_tag) for r in OS_RELEASES.values())))
    with cache_lock("icepy-build"):
        return _wheel_in(WHEELS, python_tag) or build_icepy_wheel(builders[0], WHEELS)


def build_icepy_wheel(os_name, outdir):
    """Build the IcePy wheel for the OS's python inside a throwaway copy of its
    root (g++ and python3-dev added there), check that it imports and
    initialises there, then move it into outdir. Returns the wheel's path.

    The machine itself needs no compiler, and may not have that python at all.
    """
    release = OS_RELEASES[os_name]
    rootfs = ensure_rootfs(os_name)
    require_free_space("building the IcePy wheel for %s" % release.python_tag)
    builder = os.path.join(CACHE, "icepy-build-" + release.suite)
    what = "icepy-%s" % release.python_tag
    start = time.time()
    log("building the IcePy 3.6.5 wheel for %s (python %s) from the PyPI sdist inside a copy of %s "
        "(about 6-8 minutes, once)" % (release.python_tag, release.python_version,
                                       os.path.basename(rootfs)))
    try:
        _copy_tree(rootfs, builder)
        _install_ca_bundle(builder)
        run_logged(nspawn(builder) + ["bash", "-c", "apt-get update -qq && apt-get install -y -qq "
                                      "--no-install-recommends " + " ".join(ICEPY_BUILD_PACKAGES)],
                   what + " apt-get", env=dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive"))
        shutil.copy(os.path.join(REPO, "test/kitchen/build-icepy-wheel.sh"),
                    os.path.join(builder, "root/build-icepy-wheel.sh"))
        # On disk, not in the build root's /tmp (a tmpfs under nspawn).
        os.makedirs(os.path.join(builder, "root/tmp"), exist_ok=True)
        out = run_logged(nspawn(builder, setenv=["TMPDIR=/root/tmp"]) + [
            "bash", "/root/build-icepy-wheel.sh", "/usr/bin/python3", "/root/wheel"],
            what + " build", show=lambda line: line.startswith(">>"))
        printed = [line.strip() for line in out if line.strip().endswith(".whl")]
        built = os.path.join(builder, printed[-1].lstrip("/")) if printed else None
        if not built or not os.path.exists(built):
            raise KitchenError("the IcePy build printed no wheel that exists (last line %r); see %s"
                               % (out[-1] if out else "", _log_path(what + " build")))
        # The wheel must work where it will be used: in the suite's plain root
        # (no compiler, no -dev packages), import and initialise Ice. The root
        # is entered with a throwaway overlay: the cached root stays as it is.
        inner = "/srv/wheel/" + os.path.basename(built)
        run_logged(nspawn(rootfs, options=["--volatile=overlay",
                                           "--bind-ro=%s:/srv/wheel" % os.path.dirname(built)]) + [
            "bash", "-c",
            "python3 -m venv /root/verify && /root/verify/bin/pip install -q --no-index --no-deps %s && "
            "/root/verify/bin/python -c 'import Ice, IcePy; c = Ice.initialize(); "
            "c.stringToProxy(\"test:tcp -h 127.0.0.1 -p 4064\"); c.destroy(); "
            "print(\"Ice\", Ice.stringVersion(), \"imports and initialises\")'" % inner],
            what + " check")
        os.makedirs(outdir, exist_ok=True)
        target = os.path.join(outdir, os.path.basename(built))
        shutil.copyfile(built, target + ".tmp")
        os.rename(target + ".tmp", target)  # never a half-written wheel in the cache
    finally:
        shutil.rmtree(builder, ignore_errors=True)
    log("IcePy wheel %s built and checked in %.0f s" % (os.path.basename(target), time.time() - start))
    return target


# -- a second python (test_93_new_python) ----------------------------------------

#: CPython built from source for the kitchen's Debian 12 hosts, under its own
#: prefix: another major.minor than their python3 (test/kitchen/build-python.sh),
#: and an IcePy wheel built with it on this machine (Debian 12: the cache's
#: cp313 wheel comes from Debian 13 and needs its newer glibc).
SECOND_PYTHON = {"prefix": "/opt/python3.13", "executable": "/opt/python3.13/bin/python3.13",
                 "version": "3.13", "wheel_dir": "/opt/python3.13-wheels"}


#: What build-python.sh and build-icepy-wheel.sh need on this machine.
SECOND_PYTHON_BUILD_PACKAGES = ["gcc", "g++", "make", "curl", "xz-utils", "libssl-dev", "zlib1g-dev",
                                "libffi-dev", "libbz2-dev", "liblzma-dev", "libsqlite3-dev"]


def _ensure_machine_packages(packages):
    """apt-get install those of ``packages`` this machine does not have."""
    missing = [pkg for pkg in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True).stdout.strip() != "install ok installed"]
    if missing:
        log("installing %s on this machine (apt-get)" % " ".join(missing))
        env = dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive")
        run_logged(["apt-get", "update", "-qq"], "apt-get update on this machine", env=env)
        run_logged(["apt-get", "install", "-y", "-qq"] + missing, "apt-get install " + " ".join(missing),
                   env=env)


def ensure_second_python():
    """``(tree, wheel)``: the cached build of SECOND_PYTHON (a tree to copy
    to a host's ``prefix``) and its IcePy wheel, built on this machine if
    missing (Python: 4 minutes on 2 idle cores, 11 under load; the wheel
    about as long)."""
    out = os.path.join(CACHE, "python3.13-bookworm")
    tree = out + SECOND_PYTHON["prefix"]
    wheels = out + "-wheels"
    with cache_lock("python-build"):
        if not os.path.isdir(tree) or not _wheel_in(wheels, "cp313"):
            _ensure_machine_packages(SECOND_PYTHON_BUILD_PACKAGES)
        if not os.path.isdir(tree):
            log("building CPython 3.13 for %s (test/kitchen/build-python.sh)" % SECOND_PYTHON["prefix"])
            run_logged(["bash", os.path.join(REPO, "test/kitchen/build-python.sh"), out],
                       "python3.13-build", show=lambda line: line.startswith(">>"))
        if not _wheel_in(wheels, "cp313"):
            log("building the IcePy wheel for %s" % SECOND_PYTHON["executable"])
            run_logged(["bash", os.path.join(REPO, "test/kitchen/build-icepy-wheel.sh"),
                        os.path.join(tree, "bin/python3.13"), wheels],
                       "python3.13-icepy-build", show=lambda line: line.startswith(">>"))
    return tree, _wheel_in(wheels, "cp313")


# -- hosts -------------------------------------------------------------------------

def _host_paths(name):
    """(root, pillar dir) of the host called name."""
    return os.path.join(HOSTS, name), os.path.join(CACHE, "pillars", name)


class Host:
    """One disposable Debian systemd host, booted with systemd-nspawn.

    ``os`` (debian12, debian13) and ``salt`` (3006, 3007, 3008 or a pip
    requirement) default to $OMERO_WEB_KITCHEN_OS and $OMERO_WEB_KITCHEN_SALT.
    """

    def __init__(self, name=DEFAULT_HOST_NAME, repo=REPO, os=None, salt=None):  # noqa: A002
        self.name = name
        self.repo = repo
        self.os_name = selected_os(os)
        self.release = OS_RELEASES[self.os_name]
        self.salt_requirement = salt_requirement(salt)
        self.root, self.pillar_dir = _host_paths(name)
        self.pidfile = self.root + ".pid"
        self.nspawn_pid = None

    # -- lifecycle ---------------------------------------------------------
    def built_as(self):
        """(suite, salt requirement) an existing host root was made from, or None."""
        try:
            with open(os.path.join(self.root, "etc/os-release")) as fh:
                fields = dict(line.rstrip("\n").split("=", 1) for line in fh if "=" in line)
            suite = fields.get("VERSION_CODENAME", "").strip('"')
        except OSError:
            return None
        return suite, _golden_requirement(os.path.join(self.root, "etc/omero-web-kitchen-golden"))

    def require_same_build(self):
        """A host kept between converges must be the OS and Salt asked for."""
        built = self.built_as()
        if built and built != (self.release.suite, self.salt_requirement):
            raise KitchenError(
                "host %s exists as %s with %s, not %s with %s; destroy it first "
                "(test/kitchen/kitchen destroy --name %s) or choose another --name"
                % (self.name, built[0], built[1], self.release.suite, self.salt_requirement, self.name))

    def create(self, fresh=True):
        golden = ensure_golden(self.os_name, self.salt_requirement)
        os.makedirs(HOSTS, exist_ok=True)
        os.makedirs(WHEELS, exist_ok=True)  # bind-mounted at /srv/wheels
        if fresh or not os.path.isdir(self.root):
            self.stop()
            require_free_space("copying the golden root to host %s" % self.name)
            log("copying %s to %s" % (os.path.basename(golden), self.root))
            _copy_tree(golden, self.root)
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
        log("booting %s (%s) with systemd-nspawn" % (self.name, self.release.label))
        console = self.root + ".console.log"
        logf = open(console, "ab")
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
                raise KitchenError("systemd-nspawn for %s exited with %s; see %s"
                                   % (self.name, proc.returncode, console))
            if self._init_pid():
                res = self.run(["systemctl", "is-system-running"], check=False)
                state = res.stdout.strip()
                if state in ("running", "degraded"):
                    return self
            time.sleep(0.5)
        raise KitchenError("%s did not boot in %ss (state %r); see %s" % (self.name, timeout, state, console))

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
            raise KitchenError("%s is not running" % self.name)
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

    def install_second_python(self):
        """Copy SECOND_PYTHON and its IcePy wheel into the host; returns the
        wheel's path there."""
        tree, wheel = ensure_second_python()
        target = os.path.join(self.root, SECOND_PYTHON["prefix"].lstrip("/"))
        if not os.path.exists(os.path.join(self.root, SECOND_PYTHON["executable"].lstrip("/"))):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _copy_tree(tree, target)
        inside = os.path.join(SECOND_PYTHON["wheel_dir"], os.path.basename(wheel))
        os.makedirs(os.path.join(self.root, SECOND_PYTHON["wheel_dir"].lstrip("/")), exist_ok=True)
        shutil.copy(wheel, os.path.join(self.root, inside.lstrip("/")))
        return inside

    def kitchen_pillar(self, extra=None):
        """kitchen_pillar() for this host's OS (the wheel for its python)."""
        return kitchen_pillar(extra, os=self.os_name)

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


# -- pillar ------------------------------------------------------------------------

def _load_yaml(path, what):
    import yaml
    try:
        with open(path) as fh:
            return yaml.safe_load(fh) or {}
    except OSError as err:
        raise KitchenError("cannot read %s %s: %s" % (what, path, err.strerror))
    except yaml.YAMLError as err:
        raise KitchenError("%s %s is not valid YAML: %s" % (
            what, path, " ".join(str(err).split())))


def kitchen_pillar(extra=None, os=None):  # noqa: A002 - kitchen_pillar(os="debian13")
    """pillar.example's values, adapted to the kitchen OS (default: the
    selected one): the locally built wheel for its python."""
    release = OS_RELEASES[selected_os(os)]
    pillar = _load_yaml(REPO + "/pillar.example", "pillar.example")
    web = pillar["omero_web"]
    wheel = ensure_icepy_wheel(release.python_tag)
    web.setdefault("ice", {})["wheel"] = "/srv/wheels/" + wheel.rpartition("/")[2]
    if not _formula_has_parameters(release):
        # Until the formula has its own parameters for this OS, tell it which
        # python the OS has (python:version locates the venv's site-packages).
        _deep_merge(web, {"lookup": {"python": {"version": release.python_version}}})
    shift_ports(web, port_offset())
    if extra:
        _deep_merge(web, extra)
    return pillar


def port_offset():
    """OMERO_WEB_PORT_OFFSET: added to pillar.example's ports, so that several
    kitchen hosts (they share this machine's network) can run side by side."""
    value = os.environ.get("OMERO_WEB_PORT_OFFSET", "0")
    if not value.isdigit() or int(value) > 50000:
        raise KitchenError("OMERO_WEB_PORT_OFFSET must be a number of at most 50000, got %r" % value)
    return int(value)


def shift_ports(web, offset):
    """pillar.example's nginx, gunicorn and Redis ports, plus ``offset``."""
    if not offset:
        return web
    nginx = web.setdefault("nginx", {})
    nginx["port"] = int(nginx.get("port", 80)) + offset
    gunicorn = web.setdefault("gunicorn", {})
    gunicorn["port"] = int(gunicorn.get("port", 4080)) + offset
    sessions = web.setdefault("sessions", {})
    url = sessions.get("redis_url")
    if url and url.startswith("redis://127.0.0.1:"):
        port = int(url.split(":")[2].split("/")[0])
        sessions["redis_url"] = url.replace(":%d/" % port, ":%d/" % (port + offset), 1)
    return web


def _formula_has_parameters(release):
    return os.path.exists(os.path.join(REPO, "omero_web/parameters/osfinger", release.osfinger + ".yaml"))


def effective_pillar(overrides=None):
    """The formula's defaults <- pillar.example <- overrides: where it will listen."""
    merged = {}
    defaults = os.path.join(REPO, "omero_web/parameters/defaults.yaml")
    if os.path.exists(defaults):
        _deep_merge(merged, (_load_yaml(defaults, "the formula's defaults").get("values") or {}))
    _deep_merge(merged, _load_yaml(os.path.join(REPO, "pillar.example"), "pillar.example")["omero_web"])
    return _deep_merge(merged, overrides or {})


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
    raise KitchenError("%s did not answer %s within %ss (last: %s)" % (url, expect, timeout, last))


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


# -- commands ------------------------------------------------------------------------

def cmd_converge(args):
    """Everything a fresh machine needs, in order: checks, host tools, root,
    golden root with Salt, wheel, host, apply, and a check that it serves."""
    start = time.time()
    host = Host(args.name, os=args.os, salt=args.salt)
    check_supported(host.os_name, host.salt_requirement)
    overrides = {}
    if args.pillar:
        overrides = _load_yaml(args.pillar, "--pillar file").get("omero_web") or {}
    host.require_same_build()
    require_ports_free(effective_pillar(overrides), host)
    ensure_host_tools()
    golden = ensure_golden(host.os_name, host.salt_requirement)
    ensure_icepy_wheel(host.release.python_tag)
    host.create(fresh=not os.path.isdir(host.root))
    host.boot()
    pillar = kitchen_pillar(overrides, os=host.os_name)
    host.write_pillar(pillar)
    log("applying the formula on %s (%s, %s): salt-call --local state.apply omero_web "
        "(first run: packages, virtualenv and omero-web, a minute or two)"
        % (host.name, host.release.label, golden_salt_version(golden)))
    try:
        result = _with_progress(host.apply, "applying")
    except RuntimeError as err:
        raise KitchenError("%s; the host is left running for inspection: test/kitchen/kitchen shell "
                           "--name %s -- journalctl -b" % (str(err).splitlines()[0], host.name))
    print(result.summary())
    if not result.ok:
        raise KitchenError("the apply failed (%d failed states, %d errors, summary above); the host is "
                           "left running for inspection: test/kitchen/kitchen shell --name %s -- "
                           "journalctl -u omero-web" % (len(result.failed), len(result.errors), host.name))
    web = pillar["omero_web"]
    port = web.get("nginx", {}).get("port", 80)
    prefix = web.get("prefix") or ""
    url = "http://127.0.0.1:%s%s/webclient/login/" % (port, prefix)
    wait_http(url, timeout=120)
    status, _, body = host.http_get(url)
    if status != 200 or "OMERO.web - Login" not in body:
        raise KitchenError("%s answered HTTP %s without OMERO.web's login page" % (url, status))
    print("OMERO.web answers through nginx at %s (HTTP %s, login page)" % (url, status))
    print("total time: %.0f s; tear down with: test/kitchen/kitchen destroy%s" % (
        time.time() - start, "" if args.name == DEFAULT_HOST_NAME else " --name " + args.name))
    return 0


def cmd_prepare(args):
    """Cache what hosts need, for each (OS, Salt) pair asked for: CI calls it
    once (e.g. prepare --os debian12 --os debian13) before the suites."""
    os_names = [selected_os(name) for name in (args.os or [None])]
    requirements = [salt_requirement(release) for release in (args.salt or [None])]
    for os_name in os_names:  # refuse an unsupported pair before building anything
        for requirement in requirements:
            check_supported(os_name, requirement)
    ensure_host_tools()
    for os_name in os_names:
        for requirement in requirements:
            ensure_golden(os_name, requirement)
        print(ensure_icepy_wheel(OS_RELEASES[os_name].python_tag))
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


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too."""

    def error(self, message):
        self.exit(2, "kitchen: error: %s (see %s --help)\n" % (message, self.prog))


def _save_details(text):
    """Keep a traceback out of the terminal but not lost."""
    try:
        path = _log_path("last-error")
        with open(path, "w") as fh:
            fh.write(text)
        return path
    except OSError:
        return None


def main(argv=None):
    parser = OneLineArgumentParser(prog="kitchen", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    oses = sorted(OS_RELEASES)
    salts = "/".join(sorted(SALT_RELEASES))
    p = sub.add_parser("converge", help="build or reuse the host, apply the formula, check it serves")
    p.add_argument("--name", default=DEFAULT_HOST_NAME)
    p.add_argument("--os", choices=oses, help="default: $OMERO_WEB_KITCHEN_OS or %s" % DEFAULT_OS)
    p.add_argument("--salt", help="%s or a pip requirement; default: $OMERO_WEB_KITCHEN_SALT or %s"
                   % (salts, DEFAULT_SALT))
    p.add_argument("--pillar", help="YAML file (omero_web: ...) merged over pillar.example's values")
    p.set_defaults(func=cmd_converge)
    p = sub.add_parser("prepare", help="build the cached roots with Salt and the IcePy wheels")
    p.add_argument("--os", action="append", choices=oses, help="repeatable; default as converge")
    p.add_argument("--salt", action="append", help="repeatable (%s); default as converge" % salts)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("destroy", help="stop the host and delete its root")
    p.add_argument("--name", default=DEFAULT_HOST_NAME)
    p.set_defaults(func=cmd_destroy)
    p = sub.add_parser("shell", help="run a command inside the host")
    p.add_argument("--name", default=DEFAULT_HOST_NAME)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_shell)
    args = parser.parse_args(argv)
    if getattr(args, "cmd", None) and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    try:
        require_root()
        return args.func(args)
    except KitchenError as err:
        print("kitchen: error: %s" % " ".join(str(err).split()), file=sys.stderr)
    except KeyboardInterrupt:
        print("kitchen: error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line, the traceback in a file
        path = _save_details(traceback.format_exc())
        print("kitchen: error: unexpected %s: %s%s" % (
            type(err).__name__, " ".join(str(err).split())[:300],
            " (traceback in %s)" % path if path else ""), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
