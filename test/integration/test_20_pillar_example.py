"""pillar.example applied for real on a systemd host, then checked as a user would.

pillar.example: prefix /omero, Redis sessions on a local Redis, sync workers
("auto" = 2 x cores + 1) with threads, CORS whitelist, WhiteNoise, nginx on
port 80, the omero-figure app.
"""
import re
import time

import pytest

import site_checks


@pytest.fixture(scope="module")
def web(host):
    result = host.converge()
    if result is not None:
        print("first converge:", result.summary())
    return host


def test_services_active_and_enabled(web):
    units = [web.pillar["service"]["name"], "nginx", "redis-server"]
    for unit in units:
        assert web.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active", unit
        assert web.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "enabled", unit


def test_login_page_through_nginx(web):
    site_checks.login_page_through_nginx(web)


def test_servers_api_returns_the_pillar_server_list(web):
    site_checks.servers_api_returns_the_pillar_server_list(web)


def test_default_nginx_server_is_gone(web):
    status, _, body = web.http_get("http://127.0.0.1:%s/" % web.pillar["nginx"]["port"],
                                   headers={"Host": "not-" + web.pillar["nginx"]["server_name"]})
    assert "Welcome to nginx" not in body
    assert web.run(["test", "-e", "/etc/nginx/sites-enabled/default"], check=False).returncode != 0


def test_static_files_are_served_by_nginx_itself(web):
    site_checks.static_files_are_served_by_nginx_itself(web)


def _gunicorn_processes(web):
    out = web.run(["ps", "-eo", "pid=,ppid=,args="]).stdout
    procs = []
    for line in out.splitlines():
        pid, ppid, args = line.strip().split(None, 2)
        if "gunicorn" in args and "omeroweb.wsgi" in args:
            procs.append((int(pid), int(ppid), args))
    return procs


def test_gunicorn_runs_the_pillar_workers_and_class_on_loopback(web):
    procs = _gunicorn_processes(web)
    pids = {p[0] for p in procs}
    masters = [p for p in procs if p[1] not in pids]
    assert len(masters) == 1, procs
    master = masters[0]
    workers = [p for p in procs if p[1] == master[0]]
    cores = int(web.run(["nproc"]).stdout)
    expected = 2 * cores + 1 if web.pillar["gunicorn"]["workers"] == "auto" else web.pillar["gunicorn"]["workers"]
    assert len(workers) == expected
    args = master[2]
    # gunicorn's default class is sync: `omero web start` only passes others.
    match = re.search(r"--worker-class[= ](\S+)", args)
    assert (match.group(1) if match else "sync") == web.pillar["gunicorn"]["worker_class"], args
    assert re.search(r"--threads[= ]%s\b" % web.pillar["gunicorn"]["threads"], args), args
    # Listening sockets of the host (shared network namespace): 127.0.0.1 only.
    port = web.pillar["gunicorn"]["port"]
    listen = web.run(["bash", "-c", "cat /proc/net/tcp /proc/net/tcp6"]).stdout
    local = [l.split()[1] for l in listen.splitlines()[1:] if l.split()[3] == "0A"]
    on_port = [a for a in local if a.endswith(":%04X" % port)]
    assert on_port == ["0100007F:%04X" % port], on_port


def test_sessions_and_cache_live_in_redis(web):
    caches = web.config("omero.web.caches")
    assert caches["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    # redis_url, with the password the formula generated for the local Redis
    password = web.run(["cat", "/etc/omero-web/redis-password"]).stdout.strip()
    assert caches["default"]["LOCATION"] == web.pillar["sessions"]["redis_url"].replace(
        "redis://", "redis://:%s@" % password)
    assert web.config("omero.web.session_engine") == "django.contrib.sessions.backends.cache"
    cli = ["redis-cli", "-p", str(int(web.pillar["sessions"]["redis_url"].split(":")[2].split("/")[0]))]
    web.run(cli + ["flushall"], env={"REDISCLI_AUTH": password})
    # Without an OMERO.server no login succeeds, but a request carrying an
    # OMERO session key (?bsession=) makes OMERO.web store its connector in
    # the Django session: that session must land in Redis.
    status, _, _ = web.http_get(web.base_url() + "/webclient/?bsession=no-such-session")
    assert status in (200, 302)
    keys = web.run(cli + ["--scan"], env={"REDISCLI_AUTH": password}).stdout.split()
    assert any("django.contrib.sessions.cache" in k for k in keys), keys


def test_cors_whitelisted_origin_only(web):
    url = web.base_url() + "/api/v0/"
    allowed = web.pillar["cors"]["whitelist"][0]
    _, headers, _ = web.http_get(url, headers={"Origin": allowed})
    assert headers.get("Access-Control-Allow-Origin") == allowed
    _, headers, _ = web.http_get(url, headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in headers


def test_clearsessions_timer_and_its_command(web):
    timer = web.pillar["service"]["name"] + "-clearsessions.timer"
    service = web.pillar["service"]["name"] + "-clearsessions.service"
    assert web.run(["systemctl", "is-enabled", timer], check=False).stdout.strip() == "enabled"
    assert web.run(["systemctl", "is-active", timer], check=False).stdout.strip() == "active"
    assert web.pillar["sessions"]["clear"]["on_calendar"] == "daily"
    assert "OnCalendar=*-*-* 00:00:00" in web.unit_prop(timer, "TimersCalendar")
    web.run(["systemctl", "start", service])  # Type=oneshot: returns when done
    assert web.unit_prop(service, "Result") == "success"
    assert web.unit_prop(service, "ExecMainStatus") == "0"


def test_figure_app_installed_listed_and_served(web):
    site_checks.figure_app_installed_listed_and_served(web)


def test_systemd_restarts_omero_web_after_kill_9(web):
    service = web.pillar["service"]["name"]
    old = int(web.unit_prop(service, "MainPID"))
    assert old > 0
    web.run(["kill", "-9", str(old)])
    # generous: `omero web start` collects the static files again, and CI runs
    # other lanes' hosts on the same two cores
    deadline = time.time() + 180
    new = 0
    while time.time() < deadline:
        new = int(web.unit_prop(service, "MainPID") or 0)
        if new and new != old and web.unit_prop(service, "ActiveState") == "active":
            break
        time.sleep(1)
    assert new and new != old, "omero-web was not restarted by systemd:\n" + web.run(
        ["journalctl", "-u", service, "--no-pager", "-n", "40"], check=False).stdout
    assert int(web.unit_prop(service, "NRestarts")) >= 1
    site_checks.wait_for_login_page(web)
