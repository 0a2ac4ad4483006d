"""What the master suite's conftest and tests share (one import name: no clash
with other suites' conftest modules).

The master's site pillars are in ``pillar/``; ``SITES`` maps each minion id to
its site sls. ``MinionHost`` is a kitchen host turned into a salt-minion of a
master (the golden root is masterless: its ``kitchen.conf`` is replaced).
"""
import copy
import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "kitchen"))
import kitchen  # noqa: E402

PILLAR_FIXTURES = os.path.join(HERE, "pillar")
# Several runs side by side on one machine (the hosts share its network):
# OMERO_WEB_MASTER_PREFIX names the minions (<prefix>-a, <prefix>-b; top.sls
# targets them) and OMERO_WEB_MASTER_PORT_OFFSET shifts every port the site
# pillars give (nginx, gunicorn, site A's Redis).
PREFIX = os.environ.get("OMERO_WEB_MASTER_PREFIX", "omero-web-site")
FIXTURE_PREFIX = "omero-web-site"  # how the fixtures (top.sls) name the minions
PORT_OFFSET = int(os.environ.get("OMERO_WEB_MASTER_PORT_OFFSET", "0"))
MASTER_ID = PREFIX + "-master"
SITES = {
    # minion id -> its pillar sls in PILLAR_FIXTURES
    PREFIX + "-a": "site_a",
    PREFIX + "-b": "site_b",
}
# Redis's own port: what a redis:// URL without a port means.
DEFAULT_REDIS_PORT = 6379
# Bounds (seconds) of what a step can take; a step that takes longer fails
# with a message saying which minions did not return. A first apply of
# fresh hosts (packages, venv) on a 2-core machine takes a few minutes.
APPLY_TIMEOUT = int(os.environ.get("OMERO_WEB_MASTER_APPLY_TIMEOUT", "900"))
# A CLI call that does not wait for minions: publish, key listing, job lookup.
CLI_TIMEOUT = 120
# How often the master's job cache is asked for the returns of a job.
POLL_EVERY = 3

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


class MasterSite:
    """What a master test module serves (its module attribute ``MASTER_SITE``;
    the conftest's fixtures read it): the minions and each one's effective
    omero_web pillar, the master's pillar files, state files besides the
    formula (a top.sls for a highstate), and the ports the hosts will take.
    This one is the two-site test's (``pillar/``, ``SITES``)."""

    def __init__(self):
        self.ids = sorted(SITES)

    def pillar_files(self):
        return {name: pillar_file(name) for name in os.listdir(PILLAR_FIXTURES)
                if name.endswith(".sls")}

    def state_files(self):
        return {}

    def pillar(self, minion_id, wheel_path=None):
        return site_pillar(minion_id, wheel_path)

    def ports(self):
        """{port: what} the hosts listen on (they share this machine's network)."""
        wanted = {}
        for name in self.ids:
            pillar = self.pillar(name)
            wanted[pillar["nginx"]["port"]] = "%s nginx" % name
            wanted[pillar["gunicorn"]["port"]] = "%s gunicorn" % name
            if name in SITE_REDIS_PORT:
                wanted[SITE_REDIS_PORT[name]] = "%s redis" % name
        return wanted


def pillar_file(name):
    """A pillar fixture as the master serves it: minion ids with PREFIX, the
    site's own ports shifted by PORT_OFFSET (only the ports it sets)."""
    with open(os.path.join(PILLAR_FIXTURES, name)) as fh:
        text = fh.read()
    if name == "top.sls":
        return text.replace(FIXTURE_PREFIX, PREFIX)
    doc = yaml.safe_load(text)
    web = doc.get("omero_web") or {}
    if PORT_OFFSET:
        for section in ("nginx", "gunicorn"):
            if "port" in web.get(section, {}):
                web[section]["port"] += PORT_OFFSET
        url = web.get("sessions", {}).get("redis_url")
        if url:
            web["sessions"]["redis_url"] = kitchen.shift_ports(
                {"sessions": {"redis_url": url}, "nginx": {}, "gunicorn": {}},
                PORT_OFFSET)["sessions"]["redis_url"]
        return "# Generated from test/master/pillar/%s (ports + %d)\n%s" % (
            name, PORT_OFFSET, yaml.safe_dump(doc, sort_keys=False))
    return text


def site_layers(minion_id):
    """The omero_web pillar layers top.sls gives the minion (fixtures only), in order."""
    return [yaml.safe_load(pillar_file(name + ".sls"))["omero_web"]
            for name in ("omero_web_common", SITES[minion_id])]


def site_pillar(minion_id, wheel_path=None):
    """The site's effective omero_web pillar: defaults.yaml <- common <- kitchen <- site.

    What the master's top.sls gives that minion, merged over the formula's
    defaults (so that "absent" compares equal to the default value).
    """
    with open(os.path.join(REPO, "omero_web/parameters/defaults.yaml")) as fh:
        merged = copy.deepcopy(yaml.safe_load(fh)["values"])
    for layer in site_layers(minion_id):
        kitchen._deep_merge(merged, layer)
    if wheel_path:
        merged["ice"]["wheel"] = wheel_path
    return merged


class SaltJobs:
    """``salt TARGET ARGS`` run so that no step can hang: the job is published
    asynchronously (``salt --async``: the CLI returns with the job id at
    once), then its returns are read from the master's job cache
    (``salt-run jobs.lookup_jid``) until every targeted minion has returned
    or the step's bound has passed. The master logs each return as it comes;
    no CLI waits for it (a waiting ``salt`` CLI once sat idle for 15 minutes
    on a return the master had already logged)."""

    def __init__(self, salt_cli, salt_run_cli):
        self.salt_cli = salt_cli
        self.salt_run_cli = salt_run_cli

    def publish(self, target, *args):
        ret = self.salt_cli.run("--async", *args, minion_tgt=target, _timeout=CLI_TIMEOUT)
        # with -L, target is a comma-separated list of minion ids
        match = re.search(r"job ID: (\d+)", str(ret.stdout))
        if not match:
            raise AssertionError("salt --async %s %s published no job (rc %s):\n%s\n%s" % (
                target, " ".join(args), ret.returncode, str(ret.stdout)[-2000:], str(ret.stderr)[-2000:]))
        return match.group(1)

    def lookup(self, jid):
        """{minion: return} of the minions that have returned so far."""
        ret = self.salt_run_cli.run("jobs.lookup_jid", jid, "--out=json", _timeout=CLI_TIMEOUT)
        data = salt_json(ret)
        return data if isinstance(data, dict) else {}

    def run(self, minions, *args, timeout=CLI_TIMEOUT, target=None):
        """``({minion: return}, seconds)`` once every one of ``minions`` has
        returned; an AssertionError naming the missing ones after ``timeout``."""
        start = time.time()
        jid = self.publish(target or ",".join(minions), "-L", *args)
        deadline = start + timeout
        data = {}
        while True:
            data = self.lookup(jid)
            if set(minions) <= set(data):
                return {m: data[m] for m in minions}, time.time() - start
            if time.time() >= deadline:
                missing = sorted(set(minions) - set(data))
                raise AssertionError(
                    "`salt %s` (jid %s): no return from %s within %d s (returned: %s); see "
                    "`salt-run jobs.lookup_jid %s` and the minions' /var/log/salt/minion" % (
                        " ".join(args), jid, ", ".join(missing), timeout, sorted(data) or "none", jid))
            time.sleep(POLL_EVERY)


class MinionApply(kitchen.ApplyResult):
    """One minion's part of a `salt '*' state.apply` run (the kitchen's
    ApplyResult: changed, failed, predicted, state_id)."""

    def __init__(self, minion, ret, seconds):  # pylint: disable=super-init-not-called
        self.minion = minion
        self.seconds = seconds
        self.states = ret if isinstance(ret, dict) else {}
        self.errors = [] if isinstance(ret, dict) else (ret if isinstance(ret, list) else [ret])

    @property
    def ok(self):
        return bool(self.states) and not self.errors and not self.failed

    @property
    def state_seconds(self):
        return sum(float(v.get("duration") or 0) for v in self.states.values()) / 1000.0

    def summary(self):
        lines = ["%s: states run: %d, changed: %d, failed: %d, state time: %.0f s "
                 "(salt command: %.0f s)" % (self.minion, len(self.states), len(self.changed),
                                             len(self.failed), self.state_seconds, self.seconds)]
        for key, st in sorted(self.failed.items()):
            lines.append("  FAILED %s (%s): %s" % (kitchen.ApplyResult.state_id(key), key.split("_|-")[0],
                                                   str(st.get("comment"))[:1500]))
        for err in self.errors:
            lines.append("  ERROR %s" % str(err)[:3000])
        return "\n".join(lines)


def gunicorn_master(host):
    """(pid inside the host, command line) of the gunicorn master of the unit."""
    service = host.pillar["service"]["name"]
    pid = host.run(["systemctl", "show", "-p", "MainPID", "--value", service]).stdout.strip()
    assert pid and pid != "0", "%s: %s has no main process" % (host.name, service)
    args = host.run(["bash", "-c", "tr '\\0' ' ' < /proc/%s/cmdline" % pid]).stdout
    assert "gunicorn" in args and "omeroweb.wsgi" in args, args
    return int(pid), args


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
