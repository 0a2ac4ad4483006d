"""Issue 5: one salt-master, two minions, `salt '*' state.apply omero_web`.

The master (pytest-salt-factories, on this machine) serves this checkout as
its file_roots and test/master/pillar as its pillar_roots; top.sls gives each
minion its own site:

* omero-web-site-a: root URL, Redis sessions on its own Redis (on 6380, its
  redis_url's port, which the formula sets in redis.conf), sync workers with
  threads, a CORS whitelist, gunicorn 4081, nginx 8081;
* omero-web-site-b: prefix /omero, file sessions, gevent workers
  (worker_connections), no CORS, gunicorn 4082, nginx 8082.

Both come from the same two commands a user runs on a master:
``salt '*' saltutil.sync_all`` and ``salt '*' state.apply omero_web``.
Then each site is checked through its own nginx port, the two OMERO.web
configurations are compared (they differ exactly where the pillars differ),
and a second apply must change nothing on either minion (nor a test=True
run predict anything).

The first apply runs while 127.0.0.1:6379 is taken (this test listens on it
when nothing else does; OMERO_WEB_MASTER_HOLD_REDIS_PORT=0 turns that off):
Debian's redis-server then fails to start on 6379 while it installs, and
site A's Redis must still end up on 6380.

Tests run in file order and share the module's master and hosts.
"""
import contextlib
import json
import os
import re
import socket
import subprocess

import pytest

from master_harness import (
    APPLY_TIMEOUT, DEFAULT_REDIS_PORT, PORT_OFFSET, SITE_REDIS_PORT, SITES, MinionApply,
    gunicorn_master, kitchen, salt_json, site_layers, site_pillar)

pytestmark = pytest.mark.kitchen

SITE_A, SITE_B = sorted(SITES)

# Where the two site pillars differ (leaf paths of the effective pillar, i.e.
# defaults.yaml <- common <- site) and the omero.web.* properties each
# difference must show up in. nginx settings are not OMERO.web properties.
PILLAR_TO_PROPERTIES = {
    "server_list": {"omero.web.server_list"},
    # ...and nginx's server block: / redirects to the prefix, other paths 404.
    "prefix": {"omero.web.prefix", "omero.web.static_url", "omero.web.nginx_server_extra_config"},
    "sessions.backend": {"omero.web.caches", "omero.web.session_engine"},
    "sessions.redis_url": {"omero.web.caches"},
    "gunicorn.worker_class": {"omero.web.wsgi_worker_class"},
    "gunicorn.threads": {"omero.web.wsgi_threads"},
    "gunicorn.worker_connections": {"omero.web.wsgi_worker_connections"},
    "gunicorn.port": {"omero.web.application_server.port"},
    # CORS: the whitelist property and django-cors-headers' middleware.
    "cors.enabled": {"omero.web.cors_origin_whitelist", "omero.web.middleware"},
    "cors.whitelist": {"omero.web.cors_origin_whitelist"},
    "nginx.port": set(),
    # omero.web.allowed_hosts follows the server name (plus loopback)
    "nginx.server_name": {"omero.web.allowed_hosts"},
}


# -- helpers ---------------------------------------------------------------------

def salt_all(salt_jobs, *args, timeout=120):
    """`salt -L SITES ARGS` on the master, bounded: ({minion: ret}, seconds)."""
    return salt_jobs.run(sorted(SITES), *args, timeout=timeout)


def apply_all(salt_jobs, *extra):
    data, seconds = salt_all(salt_jobs, "state.apply", "omero_web", *extra, timeout=APPLY_TIMEOUT)
    runs = {m: MinionApply(m, data.get(m, "no return from %s" % m), seconds) for m in SITES}
    print("\n".join(r.summary() for r in runs.values()))
    return runs


def leaf_paths(a, b, prefix=""):
    """Dotted paths where two nested dicts differ (a missing key counts)."""
    diffs = set()
    for key in set(a) | set(b):
        path = prefix + key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs |= leaf_paths(va, vb, path + ".")
        elif va != vb:
            diffs.add(path)
    return diffs


def web_config(host):
    """`omero config get` (all properties) as the OMERO.web user: the omero.web.* ones."""
    out = host.omero("config", "get").stdout
    props = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.startswith("omero.web."):
            continue
        try:
            props[key] = json.loads(value)
        except ValueError:
            props[key] = value
    return props


# -- fixtures --------------------------------------------------------------------

@pytest.fixture(scope="module")
def synced(minions, salt_jobs):
    """`salt '*' saltutil.sync_all`: the formula's modules from the master's file_roots."""
    data, seconds = salt_all(salt_jobs, "saltutil.sync_all", timeout=300)
    print("saltutil.sync_all: %.1f s: %s" % (seconds, json.dumps(data, sort_keys=True)))
    return data


@contextlib.contextmanager
def default_redis_port_taken():
    """127.0.0.1:6379 taken for the duration: by this test if nothing else holds it.

    Yields how it is taken (for the log). The kitchen hosts share this
    machine's network namespace, so a Redis a host starts on 6379 fails.
    """
    if os.environ.get("OMERO_WEB_MASTER_HOLD_REDIS_PORT", "1") == "0":
        yield "not held (OMERO_WEB_MASTER_HOLD_REDIS_PORT=0)"
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", DEFAULT_REDIS_PORT))
        sock.listen(1)
    except OSError as err:
        sock.close()
        yield "taken by another process (%s)" % err
        return
    try:
        yield "held by this test"
    finally:
        sock.close()


@pytest.fixture(scope="module")
def first_apply(synced, salt_jobs):
    with default_redis_port_taken() as how:
        print("first apply with 127.0.0.1:%d %s" % (DEFAULT_REDIS_PORT, how))
        runs = apply_all(salt_jobs)
    for run in runs.values():
        run.default_redis_port = how
    return runs


@pytest.fixture(scope="module")
def converged(minions, first_apply):
    bad = [r.summary() for r in first_apply.values() if not r.ok]
    if bad:
        pytest.fail("the first `salt '*' state.apply omero_web` failed:\n" + "\n".join(bad))
    for host in minions.values():
        kitchen.wait_http(host.base_url() + "/webclient/login/", timeout=180)
    return minions


@pytest.fixture(params=sorted(SITES))
def site(request, converged):
    return converged[request.param]


# -- the harness -----------------------------------------------------------------

def test_both_minions_accepted_and_answer(minions, salt_jobs, salt_key_cli):
    keys = salt_json(salt_key_cli.run("--list=all", "--out=json"))
    assert set(SITES) <= set(keys["minions"]), keys
    data, _ = salt_all(salt_jobs, "test.ping", timeout=30)
    assert data == {m: True for m in SITES}


def test_sync_all_brings_the_formula_modules(synced, salt_jobs):
    assert set(synced) == set(SITES), synced
    data, _ = salt_all(salt_jobs, "sys.list_modules", timeout=60)
    states, _ = salt_all(salt_jobs, "sys.list_state_modules", timeout=60)
    for minion in SITES:
        assert {"omero", "omero_web"} <= set(data[minion]), (minion, data[minion])
        assert "omero" in states[minion], (minion, states[minion])


#: The minion's omero_web pillar as JSON, its secret key replaced by its
#: length: `pillar.get omero_web` would put the secret in the master's job
#: cache, which the secret test below proves the formula never does. One
#: line: the salt CLI reads a key=value argument with a newline as a path.
PILLAR_WITHOUT_SECRET = "".join([
    "{%- set web = salt['pillar.get']('omero_web', {}) %}",
    "{%- set config = {} %}",
    "{%- for key, value in web.get('config', {}).items() %}",
    "{%- do config.update({key: value if key != 'omero.web.secret_key'",
    " else 'SECRET of %d characters' % value|length}) %}",
    "{%- endfor %}",
    "{%- set shown = {} %}",
    "{%- for key, value in web.items() %}",
    "{%- do shown.update({key: config if key == 'config' else value}) %}",
    "{%- endfor %}",
    "{{ shown | json }}",
])


def test_each_minion_gets_its_own_site_pillar(minions, salt_jobs, pillar_tree):
    data, _ = salt_all(salt_jobs, "slsutil.renderer", "string=" + PILLAR_WITHOUT_SECRET,
                       "default_renderer=jinja|json", timeout=60)
    for minion, sls in SITES.items():
        expected = {}
        for layer in site_layers(minion):
            kitchen._deep_merge(expected, layer)
        kitchen._deep_merge(expected, {"ice": {"wheel": pillar_tree["wheel"]}})
        secret = expected["config"]["omero.web.secret_key"]
        expected["config"]["omero.web.secret_key"] = "SECRET of %d characters" % len(secret)
        assert data[minion] == expected, minion


# -- the formula, from the master ------------------------------------------------

def test_first_apply_succeeds_on_both_minions(first_apply):
    for run in first_apply.values():
        assert run.ok, run.summary()
        assert run.changed, "a first apply on a fresh host changes something"


def test_login_page_through_its_own_nginx(site):
    status, _, body = site.http_get(site.base_url() + "/webclient/login/")
    assert status == 200, (site.name, status)
    assert "OMERO.web - Login" in body


def test_servers_api_returns_its_own_server_list(site):
    status, _, body = site.http_get(site.base_url() + "/api/v0/servers/")
    assert status == 200, (site.name, status, body[:500])
    got = [[s["host"], s["port"], s["server"]] for s in json.loads(body)["data"]]
    assert got == [list(e) for e in site.pillar["server_list"]]


def test_the_other_prefix_is_not_served(converged):
    a, b = converged[SITE_A], converged[SITE_B]
    # Site B lives under /omero only; site A at the root, not under /omero.
    status, _, _ = b.http_get("http://127.0.0.1:%s/webclient/login/" % b.pillar["nginx"]["port"])
    assert status != 200
    status, _, _ = a.http_get("http://127.0.0.1:%s/omero/webclient/login/" % a.pillar["nginx"]["port"])
    assert status != 200


def test_gunicorn_listens_on_its_own_port_on_loopback(site):
    port = site.pillar["gunicorn"]["port"]
    _, args = gunicorn_master(site)
    assert re.search(r"--bind[= ]127\.0\.0\.1:%d\b" % port, args), args
    # On this machine (shared network namespace): only 127.0.0.1:<port>, and
    # the listening processes are the ones of this site's host.
    out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines, "nothing listens on %d" % port
    local = {l.split()[3] for l in lines}
    assert local == {"127.0.0.1:%d" % port}, local
    pids = {int(p) for p in re.findall(r"pid=(\d+)", out)}
    host_ns = _pid_ns(site._init_pid())
    assert pids and all(_pid_ns(p) == host_ns for p in pids), (site.name, pids)


def _pid_ns(pid):
    return os.readlink("/proc/%d/ns/pid" % pid)


def test_worker_class_in_the_gunicorn_command_line(site):
    _, args = gunicorn_master(site)
    gunicorn = site.pillar["gunicorn"]
    assert re.search(r"--workers[= ]%d\b" % gunicorn["workers"], args), args
    if gunicorn["worker_class"] == "gevent":
        assert re.search(r"--worker-class[= ]gevent\b", args), args
        assert re.search(r"--worker-connections[= ]%d\b" % gunicorn["worker_connections"], args), args
        assert "--threads" not in args, args
    else:
        # omero web start passes no --worker-class for sync (gunicorn's default)
        # but --threads, which only sync workers take.
        assert "gevent" not in args, args
        match = re.search(r"--worker-class[= ](\S+)", args)
        assert match is None or match.group(1) == "sync", args
        assert re.search(r"--threads[= ]%d\b" % gunicorn["threads"], args), args
        assert "--worker-connections" not in args, args


def _listeners(port):
    """{local address: {pids}} of the TCP listeners on ``port`` on this machine."""
    out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            found.setdefault(fields[3], set()).update(
                int(p) for p in re.findall(r"pid=(\d+)", line))
    return found


def test_site_a_redis_moved_to_its_port_on_first_apply(first_apply, minions):
    """Redis came with the package on 6379 (or failed to: 6379 taken); the
    formula set site A's port in redis.conf and (re)started it there."""
    run = first_apply[SITE_A]
    changed = {kitchen.ApplyResult.state_id(k): v for k, v in run.changed.items()}
    print("6379 during the first apply: %s; stop + reset-failed ran: %s" % (
        run.default_redis_port, "omero_web-redis-service-cmd-run" in changed))
    directives = "omero_web-redis-config-omero_web-redis_directives"
    assert directives in changed, sorted(changed)
    # ... and the password the formula generated for it, masked
    assert changed[directives]["changes"] == {
        "port": {"old": "6379", "new": str(SITE_REDIS_PORT[SITE_A])},
        "requirepass": {"old": None, "new": "********"}}
    assert "omero_web-redis-service-service-running" in changed, sorted(changed)
    assert not any(k.startswith("omero_web-redis") for k in (
        kitchen.ApplyResult.state_id(key) for key in first_apply[SITE_B].states))
    if run.default_redis_port.startswith(("held", "taken")):
        # the package's own start on 6379 did fail (Debian's redis.conf logs to
        # /var/log/redis/redis-server.log)
        host = minions[SITE_A]
        log = host.run(["cat", "/var/log/redis/redis-server.log"]).stdout
        failed = [line for line in log.splitlines() if ":%d" % DEFAULT_REDIS_PORT in line]
        print("\n".join(failed[:5]))
        print(host.run(["journalctl", "-u", "redis-server", "--no-pager", "-o", "cat"],
                       check=False).stdout[-3000:])
        assert any("Address already in use" in line for line in failed), log[-3000:]


def test_redis_only_on_site_a(converged):
    a, b = converged[SITE_A], converged[SITE_B]
    redis = "redis-server"  # the Debian family's unit (parameters/os_family/Debian.yaml)
    assert a.run(["systemctl", "is-active", redis], check=False).stdout.strip() == "active"
    assert a.run(["systemctl", "is-enabled", redis], check=False).stdout.strip() == "enabled"
    port = SITE_REDIS_PORT[SITE_A]
    assert port != DEFAULT_REDIS_PORT
    # a local Redis requires the password the formula generated (root's file)
    assert "NOAUTH" in a.run(["redis-cli", "-p", str(port), "ping"], check=False).stdout
    password = a.run(["cat", "/etc/omero-web/redis-password"]).stdout.strip()
    assert a.run(["redis-cli", "-p", str(port), "ping"],
                 env={"REDISCLI_AUTH": password}).stdout.strip() == "PONG"
    # ... because its redis.conf says so: the package's unit, no drop-in, no --port
    conf = a.run(["grep", "-E", "^port[[:space:]]", "/etc/redis/redis.conf"]).stdout
    assert conf.split("\n")[:-1] == ["port %d" % port], conf
    dropins = a.run(["systemctl", "show", "-p", "DropInPaths", "--value", redis]).stdout
    assert redis + ".service.d" not in dropins, dropins
    assert "--port" not in a.run(["systemctl", "show", "-p", "ExecStart", "--value", redis]).stdout
    # On this machine (shared network namespace): site A's redis-server listens
    # on 127.0.0.1:<port> (and [::1]:<port>, Debian's `bind 127.0.0.1 -::1`),
    # not on 6379.
    host_ns = _pid_ns(a._init_pid())
    listeners = _listeners(port)
    assert "127.0.0.1:%d" % port in listeners, listeners
    assert set(listeners) <= {"127.0.0.1:%d" % port, "[::1]:%d" % port, "*:%d" % port}, listeners
    pids = set().union(*listeners.values())
    assert pids and all(_pid_ns(p) == host_ns for p in pids), (listeners, host_ns)
    for pid in pids:
        with open("/proc/%d/comm" % pid) as fh:
            assert fh.read().strip() == "redis-server", pid
    on_default = set().union(*_listeners(DEFAULT_REDIS_PORT).values())
    assert not any(_pid_ns(p) == host_ns for p in on_default), "site A's Redis is on 6379"
    assert b.run(["systemctl", "is-active", redis], check=False).stdout.strip() != "active"
    installed = b.run(["dpkg-query", "-W", "-f=${Status}", "redis-server"], check=False).stdout
    assert "install ok installed" not in installed, "site B (file sessions) got redis-server"


def test_cors_per_site(converged):
    a, b = converged[SITE_A], converged[SITE_B]
    allowed = a.pillar["cors"]["whitelist"][0]
    _, headers, _ = a.http_get(a.base_url() + "/api/v0/", headers={"Origin": allowed})
    assert headers.get("Access-Control-Allow-Origin") == allowed
    _, headers, _ = a.http_get(a.base_url() + "/api/v0/", headers={"Origin": "https://other.example.net"})
    assert "Access-Control-Allow-Origin" not in headers
    _, headers, _ = b.http_get(b.base_url() + "/api/v0/", headers={"Origin": allowed})
    assert "Access-Control-Allow-Origin" not in headers


def test_configs_differ_exactly_where_the_pillars_differ(converged):
    a, b = converged[SITE_A], converged[SITE_B]
    # 1. the pillar differences are the ones this test knows how to map
    pillar_diff = leaf_paths(site_pillar(SITE_A), site_pillar(SITE_B))
    assert pillar_diff == set(PILLAR_TO_PROPERTIES), pillar_diff ^ set(PILLAR_TO_PROPERTIES)
    expected = set().union(*PILLAR_TO_PROPERTIES.values())
    # 2. the live configurations (omero config get, as the OMERO.web user)
    conf_a, conf_b = web_config(a), web_config(b)
    differ = {k for k in set(conf_a) | set(conf_b) if conf_a.get(k, None) != conf_b.get(k, None)}
    assert differ == expected, "unexpected: %s, missing: %s" % (sorted(differ - expected),
                                                               sorted(expected - differ))
    # 3. and each difference has the site's value
    assert "omero.web.prefix" not in conf_a and "omero.web.static_url" not in conf_a
    assert conf_b["omero.web.prefix"] == "/omero"
    assert conf_b["omero.web.static_url"] == "/omero/static/"
    extra_a, extra_b = (c["omero.web.nginx_server_extra_config"] for c in (conf_a, conf_b))
    assert [line for line in extra_b if line not in extra_a] == [
        "location = / { return 302 /omero/; }", "location / { return 404; }"], extra_b
    assert all(line in extra_b for line in extra_a), (extra_a, extra_b)
    # the site's redis_url, with the password the formula generated for its local Redis
    password = a.run(["cat", "/etc/omero-web/redis-password"]).stdout.strip()
    assert conf_a["omero.web.caches"]["default"]["LOCATION"] == a.pillar["sessions"]["redis_url"].replace(
        "redis://", "redis://:%s@" % password)
    assert conf_a["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert "omero.web.caches" not in conf_b and "omero.web.session_engine" not in conf_b
    for conf, host in ((conf_a, a), (conf_b, b)):
        assert host.pillar["nginx"]["server_name"] in conf["omero.web.allowed_hosts"], conf
    assert conf_a["omero.web.wsgi_worker_class"] == "sync"
    assert conf_b["omero.web.wsgi_worker_class"] == "gevent"
    assert int(conf_a["omero.web.wsgi_threads"]) == 4 and "omero.web.wsgi_threads" not in conf_b
    assert int(conf_b["omero.web.wsgi_worker_connections"]) == 500
    assert "omero.web.wsgi_worker_connections" not in conf_a
    assert int(conf_a["omero.web.application_server.port"]) == 4081 + PORT_OFFSET
    assert int(conf_b["omero.web.application_server.port"]) == 4082 + PORT_OFFSET
    assert conf_a["omero.web.cors_origin_whitelist"] == a.pillar["cors"]["whitelist"]
    assert "omero.web.cors_origin_whitelist" not in conf_b
    assert not any(k.startswith("omero.web.cors") for k in conf_b), sorted(conf_b)
    cors_mw = [m for m in conf_a["omero.web.middleware"] if m not in conf_b["omero.web.middleware"]]
    assert cors_mw and all("corsheaders" in json.dumps(m) for m in cors_mw), cors_mw
    assert all(m in conf_a["omero.web.middleware"] for m in conf_b["omero.web.middleware"])
    assert conf_a["omero.web.server_list"] == a.pillar["server_list"]
    assert conf_b["omero.web.server_list"] == b.pillar["server_list"]


def test_omero_module_reads_each_config_from_the_master(converged, salt_jobs):
    """The formula's `omero` execution module, as an operator uses it from the master."""
    ports, _ = salt_all(salt_jobs, "omero.config_get", "omero.web.application_server.port", timeout=60)
    prefixes, _ = salt_all(salt_jobs, "omero.config_get", "omero.web.prefix", timeout=60)
    for minion, host in converged.items():
        assert int(ports[minion]) == host.pillar["gunicorn"]["port"], ports
        assert (prefixes[minion] or "") == host.pillar["prefix"], prefixes


def test_second_apply_changes_nothing_on_both(converged, salt_jobs):
    runs = apply_all(salt_jobs)
    for run in runs.values():
        assert run.ok, run.summary()
        assert run.changed == {}, run.summary() + "\n" + "\n".join(sorted(run.changed))


def test_dry_run_predicts_nothing_on_both(converged, salt_jobs):
    """test=True on the converged sites (site A's Redis on 6380 included)."""
    runs = apply_all(salt_jobs, "test=True")
    for run in runs.values():
        assert run.ok, run.summary()
        predicted = sorted(kitchen.ApplyResult.state_id(k) for k, v in run.states.items()
                           if v.get("result") is None or v.get("changes"))
        assert predicted == [], (run.minion, predicted)


def test_secret_key_is_in_no_return_job_cache_or_master_log(salt_master, first_apply, converged):
    """The sites' omero.web.secret_key (pillar) is masked in what the master
    keeps of the applies: the returns it printed, its job cache and its log.
    (Its minion data cache holds every minion's pillar, as for any formula.)"""
    secret = site_pillar(SITE_A)["config"]["omero.web.secret_key"]
    assert len(secret) > 20
    returns = json.dumps({m: r.states for m, r in first_apply.items()}, default=str)
    assert "omero.web.secret_key" in returns and secret not in returns
    jobs = os.path.join(salt_master.config["cachedir"], "jobs")
    assert os.path.isdir(jobs), jobs
    found = subprocess.run(["grep", "-rl", "--", secret, jobs], stdout=subprocess.PIPE, text=True).stdout.split()
    log_file = salt_master.config.get("log_file")
    if log_file and os.path.exists(log_file):
        with open(log_file, errors="replace") as handle:
            if secret in handle.read():
                found.append(log_file)
    assert found == [], found
