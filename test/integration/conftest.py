"""Fixtures for the real-host suite: one kitchen host per test session.

The host is a Debian 12 root booted with systemd-nspawn (test/kitchen). The
suite applies several pillar scenarios to it in sequence (test files run in
name order: bad pillar on the fresh host first, then pillar.example, then
variants), so a session pays for one host build and one first converge.
Set OMERO_WEB_KEEP_HOST=1 to leave the host running after the session, or
OMERO_WEB_REUSE_HOST=<name> to run against an already running kitchen host.
"""
import copy
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kitchen"))
import kitchen  # noqa: E402

class KitchenHost(kitchen.Host):
    """A kitchen host that remembers which pillar it was last converged with."""

    current = None

    def converge(self, overrides=None, check=True):
        """Apply pillar.example (+ overrides) unless it is already applied."""
        pillar = kitchen.kitchen_pillar(copy.deepcopy(overrides or {}))
        key = json.dumps(pillar, sort_keys=True)
        if self.current == key:
            return None
        self.write_pillar(pillar)
        result = self.apply()
        if check:
            assert result.ok, result.summary()
        self.current = key
        self.pillar = pillar["omero_web"]
        return result

    # -- helpers the tests share ------------------------------------------------
    def base_url(self):
        web = self.pillar
        return "http://127.0.0.1:%s%s" % (web["nginx"]["port"], web.get("prefix") or "")

    def omero(self, *args, check=True):
        """Run the omero CLI inside the host as the OMERO.web user."""
        web = self.pillar
        cmd = ["runuser", "-u", web["user"], "--", "env", "OMERODIR=" + web["omerodir"],
               web["venv"] + "/bin/omero"] + list(args)
        return self.run(cmd, check=check)

    def config(self, key):
        out = self.omero("config", "get", key).stdout.strip()
        return json.loads(out) if out[:1] in "[{" else out

    def unit_prop(self, unit, prop):
        return self.run(["systemctl", "show", "-p", prop, "--value", unit]).stdout.strip()


@pytest.fixture(scope="session")
def host():
    reuse = os.environ.get("OMERO_WEB_REUSE_HOST")
    # OMERO_WEB_IT_HOST and OMERO_WEB_PORT_OFFSET let two suites run side by side
    h = KitchenHost(reuse or os.environ.get("OMERO_WEB_IT_HOST", "omero-web-it"))
    if reuse and h.running_pid():
        # Development: attach to a running host (e.g. `kitchen converge`).
        h.nspawn_pid = h.running_pid()
    else:
        h.create(fresh=True)
        h.boot()
    yield h
    if not (reuse or os.environ.get("OMERO_WEB_KEEP_HOST")):
        h.destroy()


@pytest.fixture(scope="module")
def own_host(request):
    """
    A fresh kitchen host of the test module's own, for scenarios that need
    a start the shared ``host`` cannot give (an old release, a hand-made
    install): named OMERO_WEB_IT_HOST + the module's HOST_SUFFIX, so that
    lanes run such modules side by side.
    """
    name = os.environ.get("OMERO_WEB_IT_HOST", "omero-web-it") + request.module.HOST_SUFFIX
    h = KitchenHost(name)
    h.create(fresh=True)
    h.boot()
    yield h
    if not os.environ.get("OMERO_WEB_KEEP_HOST"):
        h.destroy()
