"""Issue 14: one site of two OMERO.web nodes behind the formula's load
balancer, from one salt-master.

Three minions (kitchen hosts; they share this machine's network, so each
listens on its own ports and loopback reaches the others):

* ``<prefix>-lb``: Redis (the site's session store, with a password) and
  ``omero_web.loadbalancer``: nginx with an upstream of the web nodes, taken
  from the Salt mine (``mine.get <prefix>-web*``);
* ``<prefix>-web1``, ``<prefix>-web2``: OMERO.web (``omero_web``), sessions in
  the first minion's Redis (``sessions:redis_external``), one secret key,
  each publishing its nginx through ``mine_functions: {omero_web.lb_member: []}``.

What a user runs: ``salt '*' saltutil.sync_all``, ``salt -L web1,web2
mine.update``, then one ``salt '*' state.apply`` (the top file gives each
minion its role). Then: requests through the load balancer reach both nodes
(each node's access log shows them), a session made through node 1 is
honoured by node 2, a login form from node 1 posts to node 2 without a CSRF
failure, and a second apply changes nothing anywhere. Last, a rolling
change (``salt-run state.orchestrate omero_web.orch.rolling``) of the
gunicorn worker count: a bounded probe through the load balancer sees no
failed request, and both nodes end on the new count.

OMERO_WEB_MASTER_PREFIX names the minions (``h14`` gives h14-lb, h14-web1,
h14-web2), OMERO_WEB_MASTER_PORT_OFFSET shifts every port. Tests run in file
order and share the module's master and hosts.
"""
import copy
import http.cookiejar
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from master_harness import (
    APPLY_TIMEOUT, PORT_OFFSET, PREFIX, REPO, MasterSite, MinionApply, gunicorn_master, kitchen)
from probe import Probe

pytestmark = pytest.mark.kitchen

BASE = PREFIX.rstrip("-")
LB, WEB1, WEB2 = BASE + "-lb", BASE + "-web1", BASE + "-web2"
WEBS = (WEB1, WEB2)
# Not pillar.example's placeholder (refused for a multi-node site).
SECRET_KEY = "loadbalanced-site-test-secret-key-not-for-production"
REDIS_PASSWORD = "lb-site-test-redis-password"
LB_PORT = 8190 + PORT_OFFSET
REDIS_PORT = 6390 + PORT_OFFSET
NODE_PORTS = {WEB1: (8191 + PORT_OFFSET, 4191 + PORT_OFFSET),   # nginx, gunicorn
              WEB2: (8192 + PORT_OFFSET, 4192 + PORT_OFFSET)}
REDIS_URL = "redis://:%s@127.0.0.1:%d/0" % (REDIS_PASSWORD, REDIS_PORT)
WORKERS, NEW_WORKERS = 2, 3
# The probe through the load balancer during the rolling change: bounded.
ROLLING_TIMEOUT = 900
# bench/rolling.py: the file the rolling change's probe figures are written to.
BENCH_FIGURES = os.environ.get("OMERO_WEB_BENCH_FIGURES")


def web_pillar(name, workers=WORKERS):
    nginx_port, gunicorn_port = NODE_PORTS[name]
    return {
        "omero_web": {
            "server_list": [["localhost", 4064, "omero"]],
            "sessions": {"backend": "redis", "redis_external": True, "redis_url": REDIS_URL},
            # a fixed count: three hosts share one 2-core machine
            "gunicorn": {"workers": workers, "port": gunicorn_port},
            "nginx": {"port": nginx_port, "server_name": "localhost"},
            "service": {"healthcheck": {"timeout": 180}},
            # what the node publishes in the mine (the hosts share loopback)
            "loadbalancer": {"publish_address": "127.0.0.1"},
            "config": {"omero.web.secret_key": SECRET_KEY},
        },
        "mine_functions": {"omero_web.lb_member": []},
    }


def lb_pillar():
    return {
        "omero_web": {
            # the site's session store: a local Redis on its own port, with a password
            "sessions": {"backend": "redis", "redis_url": REDIS_URL},
            "loadbalancer": {"port": LB_PORT, "mine_target": BASE + "-web*",
                             "max_fails": 1, "fail_timeout": 5},
            "config": {"omero.web.secret_key": SECRET_KEY},
        },
    }


class LoadBalancedSite(MasterSite):
    """The master's pillar and top file for the three minions."""

    def __init__(self, workers=WORKERS):
        super().__init__()
        self.ids = [LB, WEB1, WEB2]
        self.workers = workers

    def layers(self):
        return {LB: lb_pillar(), WEB1: web_pillar(WEB1, self.workers),
                WEB2: web_pillar(WEB2, self.workers)}

    def pillar_files(self):
        files = {"top.sls": yaml.safe_dump({"base": {
            minion: ["kitchen", "site-" + minion.rsplit("-", 1)[1]] for minion in self.ids}})}
        for minion, layer in self.layers().items():
            files["site-%s.sls" % minion.rsplit("-", 1)[1]] = yaml.safe_dump(layer, sort_keys=False)
        return files

    def state_files(self):
        return {"top.sls": yaml.safe_dump({"base": {
            LB: ["omero_web.redis", "omero_web.loadbalancer"],
            WEB1: ["omero_web"],
            WEB2: ["omero_web"],
        }})}

    def pillar(self, minion_id, wheel_path=None):
        with open(os.path.join(REPO, "omero_web/parameters/defaults.yaml")) as fh:
            merged = copy.deepcopy(yaml.safe_load(fh)["values"])
        kitchen._deep_merge(merged, self.layers()[minion_id]["omero_web"])
        if wheel_path:
            merged["ice"]["wheel"] = wheel_path
        return merged

    def ports(self):
        wanted = {LB_PORT: LB + " load balancer", REDIS_PORT: LB + " redis"}
        for name, (nginx_port, gunicorn_port) in NODE_PORTS.items():
            wanted[nginx_port] = name + " nginx"
            wanted[gunicorn_port] = name + " gunicorn"
        return wanted


MASTER_SITE = LoadBalancedSite()


# -- helpers ---------------------------------------------------------------------

def salt_on(salt_jobs, minions, *args, timeout=120):
    data, _ = salt_jobs.run(sorted(minions), *args, timeout=timeout)
    return data


def highstate(salt_jobs, *extra):
    """`salt '*' state.apply` (the top file's roles), bounded: {minion: MinionApply}."""
    data, seconds = salt_jobs.run(sorted(MASTER_SITE.ids), "state.apply", *extra,
                                  timeout=APPLY_TIMEOUT)
    runs = {m: MinionApply(m, data.get(m, "no return from %s" % m), seconds) for m in MASTER_SITE.ids}
    print("\n".join(r.summary() for r in runs.values()))
    return runs


def lb_url(path="/webclient/login/"):
    return "http://127.0.0.1:%d%s" % (LB_PORT, path)


def node_url(name, path="/webclient/login/"):
    return "http://127.0.0.1:%d%s" % (NODE_PORTS[name][0], path)


def access_log_lines(host, marker):
    out = host.run(["bash", "-c", "grep -c -- %s /var/log/nginx/access.log || true" % marker]).stdout
    return int(out.strip() or 0)


def browser():
    """An HTTP client with a cookie jar (no redirects followed)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), kitchen.NoRedirect())
    return opener, jar


def fetch(opener, url, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=60) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


#: Node 2's Django reads a session of the shared store, by its key: with the
#: site's secret key it decodes it (else Django drops it as corrupted).
READ_SESSION = """\
import importlib, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")
import django
django.setup()
from django.conf import settings
store = importlib.import_module(settings.SESSION_ENGINE).SessionStore(session_key=sys.argv[1])
print(json.dumps(dict(store.load())))
"""


def session_on(host, key):
    web = host.pillar
    out = host.run(["runuser", "-u", web["user"], "--", "env", "OMERODIR=" + web["omerodir"],
                    web["venv"] + "/bin/python", "-c", READ_SESSION, key]).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- fixtures --------------------------------------------------------------------

@pytest.fixture(scope="module")
def published(minions, salt_jobs):
    """The formula's modules on every minion, then each web node's mine record."""
    salt_on(salt_jobs, MASTER_SITE.ids, "saltutil.sync_all", timeout=300)
    salt_on(salt_jobs, WEBS, "mine.update", timeout=300)
    return salt_on(salt_jobs, [LB], "mine.get", BASE + "-web*", "omero_web.lb_member")[LB]


@pytest.fixture(scope="module")
def first_apply(published, salt_jobs):
    return highstate(salt_jobs)


@pytest.fixture(scope="module")
def converged(minions, first_apply):
    bad = [r.summary() for r in first_apply.values() if not r.ok]
    if bad:
        # the site's Redis is the first thing the web nodes need: say why it is not up
        journal = minions[LB].run(["journalctl", "-u", "redis-server", "--no-pager", "-n", "15", "-o", "cat"],
                                  check=False).stdout
        pytest.fail("the first `salt '*' state.apply` failed:\n" + "\n".join(bad)
                    + "\n%s's redis-server journal:\n%s" % (LB, journal))
    for name in WEBS:
        kitchen.wait_http(node_url(name), timeout=180)
    kitchen.wait_http(lb_url(), timeout=60)
    return minions


# -- the site --------------------------------------------------------------------

def test_web_nodes_publish_their_nginx_in_the_mine(published):
    assert published == {name: {"address": "127.0.0.1", "port": NODE_PORTS[name][0], "prefix": ""}
                         for name in WEBS}, published


def test_first_apply_gives_each_minion_its_role(first_apply, minions):
    for run in first_apply.values():
        assert run.ok, run.summary()
    lb_states = {key.split("_|-")[1] for key in first_apply[LB].states}
    assert "omero_web-loadbalancer-config-omero_web-nginx_file" in lb_states
    assert not any(sid.startswith("omero_web-venv") for sid in lb_states), sorted(lb_states)
    conf = minions[LB].run(["cat", "/etc/nginx/conf.d/omero-web-loadbalancer.conf"]).stdout
    for name in WEBS:
        assert "server 127.0.0.1:%d max_fails=1 fail_timeout=5s;" % NODE_PORTS[name][0] in conf, conf


def test_requests_through_the_load_balancer_reach_both_nodes(converged):
    marker = "lb-" + uuid.uuid4().hex
    for index in range(20):
        status, _, body = converged[LB].http_get(lb_url("/webclient/login/?%s=%d" % (marker, index)))
        assert status == 200 and "OMERO.web - Login" in body, (index, status)
    seen = {name: access_log_lines(converged[name], marker) for name in WEBS}
    # every request logged by a node (a retried one by two), each node some
    assert sum(seen.values()) >= 20 and all(seen.values()), seen


def test_a_session_made_through_node_1_is_honoured_by_node_2(converged):
    opener, jar = browser()
    omero_session = "lb-test-" + uuid.uuid4().hex
    # OMERO.web keeps the OMERO session key it is given in its Django session
    # (the OMERO server it cannot reach does not matter for that)
    status, _ = fetch(opener, node_url(WEB1, "/webclient/?bsession=" + omero_session))
    assert status in (200, 302), status
    cookie = {c.name: c.value for c in jar}.get("sessionid")
    assert cookie, "node 1 set no session cookie: %s" % [c.name for c in jar]
    # node 2's OMERO.web decodes it from the shared store (same key, same Redis)...
    stored = session_on(converged[WEB2], cookie)
    assert stored.get("connector", {}).get("omero_session_key") == omero_session, stored
    # ... and takes the cookie over HTTP: it reads the session's OMERO session,
    # cannot join it (no OMERO server) and drops it from the shared session
    status, _ = fetch(opener, node_url(WEB2, "/webclient/"))
    assert status in (200, 302), status
    assert "connector" not in session_on(converged[WEB1], cookie)


def test_a_login_form_from_node_1_posts_to_node_2(converged):
    opener, jar = browser()
    status, page = fetch(opener, node_url(WEB1))
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, page = fetch(opener, node_url(WEB2), {
        "csrfmiddlewaretoken": token, "server": "1", "username": "nobody", "password": "wrong"})
    # bad credentials (no OMERO server here): the login page again, with an
    # error; a CSRF failure would be a 403
    assert status == 200, (status, page[:2000])
    assert "OMERO.web - Login" in page and "CSRF" not in page
    assert re.search(r'class="error"|errorlist|[Ee]rror', page), page[:3000]


def test_second_apply_changes_nothing_anywhere_nor_predicts_anything(converged, salt_jobs):
    runs = highstate(salt_jobs)
    for run in runs.values():
        assert run.ok, run.summary()
        assert not run.changed, "%s: %s" % (run.minion, sorted(run.changed))
    for run in highstate(salt_jobs, "test=True").values():
        assert run.ok and not run.predicted, "%s: %s" % (run.minion, sorted(run.predicted))


# -- a rolling change through the load balancer ------------------------------------

def rolling_change(salt_master, pillar_tree, workers):
    """The master's pillar gives the web nodes ``workers`` gunicorn workers (a
    restart-class change), then `salt-run state.orchestrate omero_web.orch.rolling`
    rolls it out one node at a time, bounded: (the runner's result, seconds)."""
    for name, text in LoadBalancedSite(workers).pillar_files().items():
        with open(os.path.join(pillar_tree["path"], name), "w") as fh:
            fh.write(text)
    rolling = {"omero_web_rolling": {"loadbalancer": LB, "nodes": list(WEBS)}}
    start = time.time()
    ret = salt_master.salt_run_cli(timeout=ROLLING_TIMEOUT).run(
        "state.orchestrate", "omero_web.orch.rolling", "pillar=" + json.dumps(rolling),
        "--out=json", _timeout=ROLLING_TIMEOUT)
    return ret, time.time() - start


def test_rolling_change_drops_no_request(converged, salt_master, pillar_tree):
    probe = Probe(lb_url(), max_requests=6000, max_seconds=ROLLING_TIMEOUT, interval=0.1, timeout=5.0)
    with probe:
        time.sleep(2)
        ret, seconds = rolling_change(salt_master, pillar_tree, NEW_WORKERS)
        time.sleep(2)
    print("rolling change: %.0f s; through the load balancer: %s" % (seconds, probe.summary()))
    if BENCH_FIGURES:
        with open(BENCH_FIGURES, "w") as fh:
            json.dump({"seconds": seconds, "requests": len(probe.requests), "failed": len(probe.failed),
                       "window": probe.window, "interval": probe.interval,
                       "slowest": max(end - begin for begin, end, _ in probe.requests),
                       "orchestrate_rc": ret.returncode}, fh)
    assert ret.returncode == 0, (str(ret.stdout)[-6000:], str(ret.stderr)[-3000:])
    assert not probe.bound_reached, "the probe stopped before the rolling change ended"
    assert probe.failed == [], probe.summary()
    for name in WEBS:
        host = converged[name]
        host.pillar["gunicorn"]["workers"] = NEW_WORKERS
        _, args = gunicorn_master(host)
        assert re.search(r"--workers[= ]%d\b" % NEW_WORKERS, args), (name, args)
    conf = converged[LB].run(["cat", "/etc/nginx/conf.d/omero-web-loadbalancer.conf"]).stdout
    assert " down;" not in conf, conf

