"""Trust, on the real host (issue 13): a hardened service, root reads only
root's files, a Redis that requires a password and a session check that
notices when it is wrong, Django's allowed hosts, nothing lost between runs
(an owed reload or restart, a rejected nginx file), and a clean.sls that
deletes only what the formula made.
"""
import re

import pytest

import kitchen
import site_checks

#: systemd-analyze security's exposure the units must not exceed.
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def web(host):
    host.converge()
    return host


def _pillar(web, overrides):
    pillar = web.kitchen_pillar(overrides)
    web.write_pillar(pillar)
    web.current = None
    return pillar


def _back_to_pillar_example(web):
    web.current = None
    web.converge()


def _exposure(web, unit):
    out = web.run(["systemd-analyze", "security", "--no-pager", unit]).stdout
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))


def test_units_are_sandboxed(web):
    for unit in ("omero-web.service", "omero-web-clearsessions.service"):
        exposure = _exposure(web, unit)
        print("%s: exposure %.1f" % (unit, exposure))
        assert exposure <= MAX_EXPOSURE, unit
    # ... and OMERO.web runs under it: the pillar.example checks pass (login,
    # static files, Redis sessions), the timer's clearsessions succeeds
    site_checks.login_page_through_nginx(web)
    web.run(["systemctl", "start", "omero-web-clearsessions.service"])
    assert web.unit_prop("omero-web-clearsessions.service", "Result") == "success"
    # the service user has no login shell
    shell = web.run(["getent", "passwd", web.pillar["user"]]).stdout.strip().split(":")[-1]
    assert shell in ("/usr/sbin/nologin", "/sbin/nologin"), shell


def test_gunicorn_error_logfile_works_under_the_sandbox(web):
    """The walkthrough's debugging example, gunicorn's --error-logfile, under
    the hardened unit: gunicorn chowns its log file (a call the system call
    filter refuses), and the unit's SystemCallErrorNumber=EPERM turns that
    into an error gunicorn handles, not a killed process."""
    log = web.pillar["omerodir"] + "/var/log/gunicorn-errors.log"
    _pillar(web, {"gunicorn": {"extra_args": "--log-level=DEBUG --error-logfile=" + log}})
    try:
        result = web.apply()
        assert result.ok, result.summary()
        site_checks.login_page_through_nginx(web)
        assert "Starting gunicorn" in web.run(["cat", log]).stdout
    finally:
        web.run(["rm", "-f", log])
        _back_to_pillar_example(web)


def test_root_nginx_loads_only_root_files(web):
    """Every file root's nginx loads is root's, not writable by others, not in OMERODIR."""
    out = web.run(["nginx", "-T", "-q"]).stdout
    files = re.findall(r"^# configuration file (\S+):$", out, re.M)
    assert "/etc/nginx/conf.d/omero-web.conf" in files
    for path in files:
        owner, mode = web.run(["stat", "-c", "%U %a", path]).stdout.split()
        assert owner == "root" and int(mode, 8) & 0o022 == 0, (path, owner, mode)
        assert not path.startswith(web.pillar["omerodir"]), path


def test_the_service_user_cannot_change_what_nginx_loads(web):
    """A line the service user puts in config.xml never reaches root's nginx:
    the file comes from the pillar's validated values."""
    conf = "/etc/nginx/conf.d/omero-web.conf"
    before = web.run(["cat", conf]).stdout
    web.omero("config", "append", "omero.web.nginx_server_extra_config",
              '"include /opt/omero/web/omero-web/evil.conf;"')
    # an nginx input changes, so the file is generated again
    _pillar(web, {"nginx": {"max_body_size": "512m"}})
    result = web.apply()
    assert result.ok, result.summary()
    after = web.run(["cat", conf]).stdout
    assert "evil.conf" not in after and "client_max_body_size 512m;" in after
    assert before != after
    _back_to_pillar_example(web)


def test_local_redis_requires_a_password_and_a_wrong_one_fails_the_apply(web):
    port = 6379 + kitchen.port_offset()
    assert "NOAUTH" in web.run(["redis-cli", "-p", str(port), "ping"], check=False).stdout
    # OMERO.web pointed at that Redis (as an external one) with a wrong password
    # (nodes sharing an external store must share a real secret key)
    _pillar(web, {"sessions": {"redis_external": True,
                               "redis_url": "redis://:not-the-password@127.0.0.1:%d/0" % port},
                  "config": {"omero.web.secret_key": "a-site-wide-key-" + "x" * 40},
                  "service": {"healthcheck": {"timeout": 30}}})
    result = web.apply()
    assert not result.ok
    failed = {result.state_id(k): v for k, v in result.failed.items()}
    assert "omero_web-healthcheck-omero-sessions_work" in failed, result.summary()
    comment = failed["omero_web-healthcheck-omero-sessions_work"]["comment"]
    assert "cannot store sessions" in comment and "not-the-password" not in comment
    assert "WRONGPASS" in comment or "invalid" in comment.lower() or "AUTH" in comment, comment
    _back_to_pillar_example(web)


def test_allowed_hosts_follow_the_server_name(web):
    gunicorn = "http://127.0.0.1:%d%s/webclient/login/" % (
        web.pillar["gunicorn"]["port"], web.pillar.get("prefix") or "")
    assert web.http_get(gunicorn, headers={"Host": web.pillar["nginx"]["server_name"]})[0] == 200
    assert web.http_get(gunicorn)[0] == 200  # 127.0.0.1: the health check's
    assert web.http_get(gunicorn, headers={"Host": "evil.example.net"})[0] == 400


def _master(web):
    return int(web.run(["cat", web.pillar["omerodir"] + "/var/django.pid"]).stdout)


def _servers(web):
    import json
    return [s["server"] for s in json.loads(web.http_get(web.base_url() + "/api/v0/servers/")[2])["data"]]


def test_a_reload_owed_by_a_failed_run_is_made_by_the_next(web):
    """A run that changed the configuration and died before the service state
    (here: only the config sls applied) leaves a reload owed: the next run
    predicts it, makes it (same gunicorn master), and the new value is live."""
    master = _master(web)
    pillar = _pillar(web, {"server_list": [["localhost", 4064, "owed-reload"]]})
    web.salt_call("saltutil.sync_all", check=True)
    partial = web.apply("omero_web.config")
    assert partial.ok and partial.changed, partial.summary()
    assert _servers(web) != ["owed-reload"]
    dry = web.apply(test=True)
    service = [st for k, st in dry.predicted.items() if "service_running" in k]
    assert service and "reload" in service[0]["comment"], sorted(dry.predicted)
    real = web.apply()
    assert real.ok, real.summary()
    assert sorted(map(real.state_id, dry.predicted)) == sorted(map(real.state_id, real.changed))
    assert _master(web) == master, "a reload-class change restarted the master"
    kitchen.wait_http(web.base_url() + "/webclient/login/", timeout=60)
    assert _servers(web) == ["owed-reload"]
    web.current, web.pillar = None, pillar["omero_web"]
    assert web.apply().changed == {}
    _back_to_pillar_example(web)


def test_a_restart_owed_by_a_failed_run_is_made_by_the_next(web):
    master = _master(web)
    _pillar(web, {"gunicorn": {"workers": 2}})
    web.salt_call("saltutil.sync_all", check=True)
    assert web.apply("omero_web.config").ok
    real = web.apply()
    assert real.ok, real.summary()
    service = [st for k, st in real.changed.items() if "service_running" in k]
    assert service and "restarted" in service[0]["comment"], real.summary()
    assert _master(web) != master
    _back_to_pillar_example(web)


def test_a_file_nginx_rejects_never_stays(web):
    conf = "/etc/nginx/conf.d/omero-web.conf"
    before = web.run(["cat", conf]).stdout
    _pillar(web, {"config_append": {"omero.web.nginx_server_extra_config": [
        "no_such_nginx_directive on;"]}})
    result = web.apply()
    assert not result.ok
    failed = {result.state_id(k): v for k, v in result.failed.items()}
    comment = failed["omero_web-nginx-config-omero-nginx_config"]["comment"]
    assert "nginx rejected" in comment and "no_such_nginx_directive" in comment, comment
    assert web.run(["cat", conf]).stdout == before, "the rejected file stayed"
    assert web.run(["nginx", "-t"], check=False).returncode == 0
    site_checks.login_page_through_nginx(web)
    _back_to_pillar_example(web)


def test_clean_deletes_only_what_the_formula_made(web):
    """clean.sls refuses, naming the key, an account the formula did not create."""
    web.run(["useradd", "-m", "handmade"])
    try:
        _pillar(web, {"user": "handmade"})
        web.salt_call("saltutil.sync_all", check=True)
        data, res = web.salt_call("state.apply", "omero_web.clean")
        assert res.returncode != 0
        output = res.stdout + res.stderr
        assert "omero_web:user: the account handmade was not created by the formula" in output
        assert web.run(["getent", "passwd", "handmade"], check=False).returncode == 0
        assert web.run(["getent", "passwd", "omero-web"], check=False).returncode == 0
        assert web.run(["test", "-d", "/opt/omero/web/venv3"], check=False).returncode == 0
    finally:
        web.run(["userdel", "-r", "handmade"], check=False)
        _back_to_pillar_example(web)
