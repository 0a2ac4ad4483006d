"""What the master suite's conftest and tests share (one import name: no clash
with other suites' conftest modules).

The master's site pillars are in ``pillar/``; ``SITES`` maps each minion id to
its site sls. ``MinionHost`` is a kitchen host turned into a salt-minion of a
master (the golden root is masterless: its ``kitchen.conf`` is replaced).
"""
import copy
import json
import os
import sys
from urllib.parse import urlsplit

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "kitchen"))
import kitchen  # noqa: E402

PILLAR_FIXTURES = os.path.join(HERE, "pillar")
MASTER_ID = "omero-web-master"
SITES = {
    # minion id -> its pillar sls in PILLAR_FIXTURES
    "omero-web-site-a": "site_a",
    "omero-web-site-b": "site_b",
}
# Redis's own port: what a redis:// URL without a port means.
DEFAULT_REDIS_PORT = 6379
# Generous: both hosts converge at once on a 2-core machine.
APPLY_TIMEOUT = int(os.environ.get("OMERO_WEB_MASTER_APPLY_TIMEOUT", "2400"))

MINION_UNIT = """\
# salt-minion as a service (pip installs no unit file); as Salt's own unit.
[Unit]
Description=The Salt Minion
After=network.target

[Service]
Type=simple
KillMode=process
LimitNOFILE=8192
ExecStart=/usr/local/bin/salt-minion
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

def log(msg):
    print(">> " + msg, file=sys.stderr, flush=True)


class MinionHost(kitchen.Host):
    """A kitchen host whose salt-minion talks to a salt-master."""

    def make_minion(self, master_config):
        """Before boot: replace the golden root's masterless config by a minion's."""
        etc = os.path.join(self.root, "etc")
        masterless = os.path.join(etc, "salt/minion.d/kitchen.conf")
        if os.path.exists(masterless):
            os.unlink(masterless)
        with open(os.path.join(etc, "salt/minion.d/master.conf"), "w") as fh:
            yaml.safe_dump({
                "id": self.name,
                "master": "127.0.0.1",
                "master_port": master_config["ret_port"],
                "publish_port": master_config["publish_port"],
                "acceptance_wait_time": 5,
                "log_level_logfile": "info",
            }, fh, sort_keys=False)
        with open(os.path.join(etc, "salt/minion_id"), "w") as fh:
            fh.write(self.name)
        unit_dir = os.path.join(etc, "systemd/system")
        with open(os.path.join(unit_dir, "salt-minion.service"), "w") as fh:
            fh.write(MINION_UNIT)
        wants = os.path.join(unit_dir, "multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        link = os.path.join(wants, "salt-minion.service")
        if not os.path.lexists(link):
            os.symlink("/etc/systemd/system/salt-minion.service", link)
        return self

    # -- helpers the tests share ------------------------------------------------
    def omero(self, *args, check=True):
        """The omero CLI inside the host, as the OMERO.web user (never root)."""
        web = self.pillar
        cmd = ["runuser", "-u", web["user"], "--", "env", "OMERODIR=" + web["omerodir"],
               web["venv"] + "/bin/omero"] + list(args)
        return self.run(cmd, check=check)

    def base_url(self):
        return "http://127.0.0.1:%s%s" % (self.pillar["nginx"]["port"], self.pillar["prefix"] or "")


def site_pillar(minion_id, wheel_path=None):
    """The site's effective omero_web pillar: defaults.yaml <- common <- kitchen <- site.

    What the master's top.sls gives that minion, merged over the formula's
    defaults (so that "absent" compares equal to the default value).
    """
    with open(os.path.join(REPO, "omero_web/parameters/defaults.yaml")) as fh:
        merged = copy.deepcopy(yaml.safe_load(fh)["values"])
    layers = ["omero_web_common", SITES[minion_id]]
    for name in layers:
        with open(os.path.join(PILLAR_FIXTURES, name + ".sls")) as fh:
            kitchen._deep_merge(merged, yaml.safe_load(fh)["omero_web"])
    if wheel_path:
        merged["ice"]["wheel"] = wheel_path
    return merged


def salt_json(ret):
    """The salt CLI's JSON ({minion: return}) or a readable failure."""
    data = ret.data
    if not isinstance(data, dict):
        try:
            data = json.loads(ret.stdout)
        except (TypeError, ValueError):
            raise AssertionError("salt returned no JSON (rc %s):\nstdout: %s\nstderr: %s" % (
                ret.returncode, str(ret.stdout)[-4000:], str(ret.stderr)[-4000:]))
    return data


def local_redis_port(minion_id):
    """The TCP port of the site's local Redis (its sessions:redis_url), or None."""
    sessions = site_pillar(minion_id)["sessions"]
    if sessions["backend"] != "redis":
        return None
    url = urlsplit(sessions["redis_url"])
    if url.scheme != "redis" or url.hostname not in ("127.0.0.1", "localhost"):
        return None
    return url.port or DEFAULT_REDIS_PORT


# Where each site's own Redis listens: the formula sets it in the host's
# redis.conf from the site pillar. Site A's is not 6379 (pillar/site_a.sls).
SITE_REDIS_PORT = {m: local_redis_port(m) for m in SITES if local_redis_port(m)}
