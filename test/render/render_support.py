"""
Render the formula as each supported OS would, without applying anything.

Every render is one ``salt-call --local state.show_sls`` of
``omero_web,omero_web.clean,omero_web._mapdata`` with:

* a minion config whose ``grains:`` key overrides the OS grains (os, os_family,
  osfinger, selinux, ...), so the real parameters/ layers are exercised;
* ``file_roots`` = the repository root, ``pillar_roots`` = a directory with a
  top.sls and ``pillar.example``'s content (optionally changed per variant);
* one ``extension_modules`` directory shared by all renders, filled once by
  ``saltutil.sync_all`` (the custom modules must be synced, as on a minion).

All renders run once per session, in parallel (salt-call start-up is about
2 s each); the tests only look at the results.
"""

import copy
import json
import os
import pathlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
SLS = "omero_web,omero_web.clean,omero_web._mapdata"

#: Grains of the five supported OS lines (Rocky and Alma for EL9).
OSES = {
    "centos7": {
        "os": "CentOS",
        "os_family": "RedHat",
        "osfinger": "CentOS Linux-7",
        "osmajorrelease": 7,
        "osrelease": "7.9.2009",
        "selinux": {"enabled": True, "enforced": "Enforcing"},
    },
    "rocky9": {
        "os": "Rocky",
        "os_family": "RedHat",
        "osfinger": "Rocky Linux-9",
        "osmajorrelease": 9,
        "osrelease": "9.4",
        "selinux": {"enabled": True, "enforced": "Enforcing"},
    },
    "alma9": {
        "os": "AlmaLinux",
        "os_family": "RedHat",
        "osfinger": "AlmaLinux-9",
        "osmajorrelease": 9,
        "osrelease": "9.4",
        # SELinux disabled on this one: no SELinux states although RedHat.
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "debian12": {
        "os": "Debian",
        "os_family": "Debian",
        "osfinger": "Debian-12",
        "osmajorrelease": 12,
        "osrelease": "12",
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "ubuntu2204": {
        "os": "Ubuntu",
        "os_family": "Debian",
        "osfinger": "Ubuntu-22.04",
        "osmajorrelease": 22,
        "osrelease": "22.04",
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "ubuntu2404": {
        "os": "Ubuntu",
        "os_family": "Debian",
        "osfinger": "Ubuntu-24.04",
        "osmajorrelease": 24,
        "osrelease": "24.04",
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "ubuntu2604": {
        "os": "Ubuntu",
        "os_family": "Debian",
        "osfinger": "Ubuntu-26.04",
        "osmajorrelease": 26,
        "osrelease": "26.04",
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "debian13": {
        "os": "Debian",
        "os_family": "Debian",
        "osfinger": "Debian-13",
        "osmajorrelease": 13,
        "osrelease": "13",
        "selinux": {"enabled": False, "enforced": "Disabled"},
    },
    "rocky10": {
        "os": "Rocky",
        "os_family": "RedHat",
        "osfinger": "Rocky Linux-10",
        "osmajorrelease": 10,
        "osrelease": "10.0",
        "selinux": {"enabled": True, "enforced": "Enforcing"},
    },
    "alma10": {
        "os": "AlmaLinux",
        "os_family": "RedHat",
        "osfinger": "AlmaLinux-10",
        "osmajorrelease": 10,
        "osrelease": "10.0",
        "selinux": {"enabled": True, "enforced": "Enforcing"},
    },
}

#: Platforms with no published IcePy wheel: their renders name a wheel built
#: with test/kitchen/build-icepy-wheel.sh, as a site there must.
BUILT_WHEELS = {
    "debian13": "/srv/wheels/zeroc_ice-3.6.5-cp313-cp313-linux_x86_64.whl",
    "ubuntu2604": "/srv/wheels/zeroc_ice-3.6.5-cp314-cp314-linux_x86_64.whl",
}
COMMON_GRAINS = {"num_cpus": 2, "kernel": "Linux", "init": "systemd"}

#: A key to delete from pillar.example in a variant's overlay.
DELETE = "__delete__"

#: A load balancer's pillar: two members, the second drained.
LB_PILLAR = {
    "port": 8090,
    "server_name": "omero.example.org",
    "members": [{"name": "web1", "address": "10.0.0.11", "port": 80},
                {"name": "web2.example.org", "address": "fd00::12", "port": 8080}],
    "drain": ["web2.example.org"],
    "max_fails": 3,
    "fail_timeout": 15,
}
#: name -> (OS, overlay merged into pillar.example's omero_web[, sls]). The
#: OS renders use pillar.example as it is, and render SLS (the formula, its
#: clean.sls and the map dump); the variants render omero_web only, unless
#: they say otherwise.
VARIANTS = {
    name: (name, {"ice": {"wheel": BUILT_WHEELS[name]}} if name in BUILT_WHEELS else {}, SLS)
    for name in OSES
}
VARIANTS.update(
    {
        "prefix_unset": ("debian12", {"prefix": DELETE}),
        "sessions_file": ("debian12", {"sessions": {"backend": "file"}}),
        "redis_remote": (
            "debian12",
            {"sessions": {"redis_url": "redis://:s3cret@redis.example.org:6379/0"}},
            "omero_web,omero_web._mapdata",
        ),
        # a local Redis on another port / a unix socket / TLS (rediss://)
        "redis_port": (
            "debian12",
            {"sessions": {"redis_url": "redis://127.0.0.1:6380/0"}},
            "omero_web.redis,omero_web._mapdata",
        ),
        "redis_port_el9": (
            "rocky9",
            {"sessions": {"redis_url": "redis://localhost:6381/0"}},
            "omero_web.redis,omero_web._mapdata",
        ),
        "redis_port_centos7": (
            "centos7",
            {"sessions": {"redis_url": "redis://127.0.0.1:6380/0"}, "selinux": {"manage": False}},
            "omero_web.redis,omero_web._mapdata",
        ),
        "redis_socket": (
            "ubuntu2404",
            {"sessions": {"redis_url": "unix:///run/redis/redis-server.sock?db=0"}},
            "omero_web.redis,omero_web._mapdata",
        ),
        "redis_tls": (
            "debian12",
            {"sessions": {"redis_url": "rediss://127.0.0.1:6380/0"}},
            "omero_web.redis,omero_web._mapdata",
        ),
        # test=True on a host without redis.conf (this machine)
        "redis_dry_run_fresh": (
            "debian12",
            {"sessions": {"redis_url": "redis://127.0.0.1:6380/0"}},
            "omero_web.redis,omero_web._mapdata test=True",
        ),
        "redis_dry_run_fresh_6379": (
            "debian12", {}, "omero_web.redis,omero_web._mapdata test=True",
        ),
        # the load balancer of a multi-node site (issue 14): two members from
        # the pillar, one drained; none at all; members from an empty mine
        "loadbalancer": (
            "debian12",
            {"loadbalancer": LB_PILLAR, "config": {"omero.web.secret_key": "k" * 50}},
            "omero_web.loadbalancer,omero_web.loadbalancer.clean,omero_web._mapdata",
        ),
        "loadbalancer_no_member": ("debian12", {}, "omero_web.loadbalancer"),
        "loadbalancer_empty_mine": (
            "debian12",
            {"loadbalancer": {"mine_target": "web*"}, "config": {"omero.web.secret_key": "k" * 50}},
            "omero_web.loadbalancer",
        ),
        "gevent": (
            "debian12",
            {"gunicorn": {"worker_class": "gevent", "threads": DELETE,
                          "worker_connections": 1000}},
        ),
        "cors_allow_all": ("debian12", {"cors": {"allow_all": True, "whitelist": DELETE}}),
        "nginx_off": ("debian12", {"nginx": {"enabled": False}}),
        "location_only": ("debian12", {"nginx": {"location_only": True}}),
        "location_only_el9": ("rocky9", {"nginx": {"location_only": True}}),
        "tls": (
            "ubuntu2404",
            {"nginx": {"tls": {"cert": "salt://certs/omero.crt",
                               "key": "/etc/ssl/private/omero.key"}}},
        ),
        "clear_disabled": ("debian12", {"sessions": {"clear": {"enabled": False}}}),
        "logdir": ("debian12", {"logdir": "/var/log/omero-web"}),
        "public_behind_proxy": ("rocky9", {"public": {"enabled": True}, "proxy": {"https": True}}),
        "wheel_local": (
            "debian12",
            {"ice": {"wheel": "/srv/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"}},
        ),
        "wheel_salt": (
            "debian12",
            {"ice": {"wheel": "salt://wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"}},
        ),
        "selinux_unmanaged": ("centos7", {"selinux": {"manage": False}}),
        "clean_pkgs": ("centos7", {"clean": {"pkgs": True}}, "omero_web.clean"),
        "bad_workers": ("debian12", {"gunicorn": {"workers": -1}}, "omero_web.config"),
        # no wheel known for the platform, none in pillar: the render says so
        "no_wheel_ubuntu2604": ("ubuntu2604", {}, "omero_web.venv"),
        "typo_key": ("debian12", {"gunicron": {"workers": 2}}, "omero_web.config"),
        "tofs": (
            "rocky9",
            {"tofs": {"source_dirs": ["salt://site/omero_web"], "files_switch": ["os_family"],
                      "source_files": {"omero_web-service-file-managed": ["my.service.jinja"]}}},
        ),
        "tofs_prefix": (
            "debian12",
            {"tofs": {"path_prefix": "site-files", "dirs": {"files": "alt", "default": "common"},
                      "files_switch": ["os_family"]}},
        ),
        # test=True on a host without the venv (this machine)
        "dry_run_fresh": ("debian12", {}, "omero_web.venv test=True"),
    }
)


def pillar_example():
    with open(REPO / "pillar.example") as handle:
        return yaml.safe_load(handle)


def _overlay(base, extra):
    for key, value in extra.items():
        if value == DELETE:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value
    return base


def variant_pillar(name):
    pillar = pillar_example()
    _overlay(pillar["omero_web"], copy.deepcopy(VARIANTS[name][1]))
    return pillar


class Render:
    """One ``state.show_sls`` result."""

    def __init__(self, name, data, stderr):
        self.name = name
        self.stderr = stderr
        self.errors = data if isinstance(data, list) else []
        self.high = data if isinstance(data, dict) else {}
        self.states = {}
        for state_id, body in self.high.items():
            for module, entries in body.items():
                if module.startswith("__"):
                    continue
                args = {}
                fun = None
                for entry in entries:
                    if isinstance(entry, str):
                        fun = entry
                    elif isinstance(entry, dict):
                        args.update(entry)
                self.states[state_id] = {
                    "fun": "{}.{}".format(module, fun),
                    "args": args,
                    "sls": body["__sls__"],
                }

    @property
    def ok(self):
        return bool(self.high) and not self.errors

    def applied(self):
        """IDs of the states of omero_web (not clean, not _mapdata)."""
        return {
            sid
            for sid, state in self.states.items()
            if not state["sls"].endswith(".clean") and state["sls"] != "omero_web._mapdata"
        }

    def cleaned(self):
        return {sid for sid, state in self.states.items() if state["sls"].endswith("clean")}

    def state(self, sid):
        assert sid in self.states, "{}: no state {} (has: {})".format(
            self.name, sid, sorted(self.states))
        return self.states[sid]

    def args(self, sid):
        return self.state(sid)["args"]

    def funs(self, ids=None):
        ids = self.applied() if ids is None else ids
        return {self.states[sid]["fun"] for sid in ids}

    @property
    def mapdata(self):
        context = self.args("omero_web-_mapdata-file-managed")["context"]
        return context["map"]["values"]

    def text(self):
        return json.dumps(self.high, sort_keys=True)


def _write_config(confdir, cachedir, extmods, pillar_dir, grains):
    confdir.mkdir(parents=True, exist_ok=True)
    config = {
        "id": "render-test",
        "file_client": "local",
        "file_roots": {"base": [str(REPO)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "cachedir": str(cachedir),
        "extension_modules": str(extmods),
        "pki_dir": str(confdir / "pki"),
        "sock_dir": str(confdir / "sock"),
        "log_file": str(confdir / "minion.log"),
        "log_level_logfile": "warning",
        "grains": grains,
        # No need to look at the real host's grains modules.
        "grains_cache": False,
    }
    with open(confdir / "minion", "w") as handle:
        yaml.safe_dump(config, handle)


def _salt_call(confdir, *args, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALT_", "PIP_"))}
    cmd = ["salt-call", "--local", "-c", str(confdir), "--out=json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    try:
        data = json.loads(proc.stdout)["local"] if proc.stdout.strip() else None
    except ValueError:
        data = None
    return proc, data


def _render(base, extmods, name):
    os_name = VARIANTS[name][0]
    sls = VARIANTS[name][2] if len(VARIANTS[name]) > 2 else "omero_web"
    root = base / name
    pillar_dir = root / "pillar"
    pillar_dir.mkdir(parents=True)
    with open(pillar_dir / "top.sls", "w") as handle:
        handle.write("base:\n  '*':\n    - omero_web\n")
    with open(pillar_dir / "omero_web.sls", "w") as handle:
        yaml.safe_dump(variant_pillar(name), handle, sort_keys=False)
    grains = dict(COMMON_GRAINS, **OSES[os_name])
    _write_config(root / "conf", root / "cache", extmods, pillar_dir, grains)
    proc, data = _salt_call(root / "conf", "state.show_sls", *sls.split())
    if data is None:
        data = ["salt-call failed (rc {}): {}".format(proc.returncode, proc.stderr[-3000:])]
    return Render(name, data, proc.stderr)


@pytest.fixture(scope="session")
def render_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("render")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def extmods(render_root):
    """The custom modules, synced once for every render."""
    path = render_root / "extmods"
    conf = render_root / "sync"
    _write_config(conf / "conf", conf / "cache", path, conf, dict(COMMON_GRAINS, **OSES["debian12"]))
    proc, data = _salt_call(conf / "conf", "saltutil.sync_all")
    assert proc.returncode == 0 and data, proc.stderr
    assert "modules.omero_web" in data["modules"] or (path / "modules" / "omero_web.py").exists()
    return path


@pytest.fixture(scope="session")
def renders(render_root, extmods):
    """name -> Render, for every entry of VARIANTS (rendered in parallel)."""
    workers = max(2, min(4, (os.cpu_count() or 2) + 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(_render, render_root, extmods, name) for name in VARIANTS}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="session")
def unsynced_render(render_root):
    """A render without the custom modules: map.jinja must say to sync."""
    root = render_root / "unsynced"
    pillar_dir = root / "pillar"
    pillar_dir.mkdir(parents=True)
    with open(pillar_dir / "top.sls", "w") as handle:
        handle.write("base: {}\n")
    _write_config(root / "conf", root / "cache", root / "extmods", pillar_dir,
                  dict(COMMON_GRAINS, **OSES["debian12"]))
    proc, data = _salt_call(root / "conf", "state.show_sls", "omero_web.user")
    return Render("unsynced", data if data is not None else [proc.stderr], proc.stderr)
