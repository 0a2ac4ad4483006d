"""Faults and secrets on the real host (issue 6).

* a changed secret_key is never shown: not in state output (real and
  test=True, even at debug log level), not in Salt's log or cache;
* config.xml and OMERODIR's etc/ are not world-readable;
* an apply killed during the pip step, then re-applied, converges and leaves
  a valid config.xml;
* a health check that fails (OMERO.web not answering through nginx) fails the
  apply with the URL and the last lines of OMEROweb.log; fixing the pillar
  converges again.
"""
import signal
import time

import pytest

import kitchen
import site_checks

SECRET = "s3cr3t-value-that-must-never-be-printed-0123456789"


@pytest.fixture(scope="module")
def web(host):
    host.converge()
    return host


def test_secret_key_is_never_shown(web):
    overrides = {"config": {"omero.web.secret_key": SECRET}}
    dry = site_checks.apply_at_debug(web, overrides, test=True)
    real = site_checks.apply_at_debug(web, overrides)
    assert dry.ok and real.ok, real.summary()
    for run in (dry, real):
        text = run.proc.stdout + run.proc.stderr
        assert SECRET not in text
    # the change itself is reported, masked
    config_changes = [st["changes"] for key, st in real.changed.items() if "omero_web-config" in key]
    assert config_changes and "omero.web.secret_key" in str(config_changes)
    assert "********" in str(config_changes)
    # Nothing Salt keeps on disk holds it either (logs, job cache, the
    # returns in sls.p), except Salt's own cache of the compiled states,
    # which holds every rendered state argument and is root-only.
    leaks = web.run(["bash", "-c", "grep -rl -- %s /var/log/salt /var/cache/salt 2>/dev/null || true"
                     % SECRET]).stdout.split()
    assert leaks in ([], ["/var/cache/salt/minion/highstate.cache.p"]), leaks
    assert web.run(["stat", "-c", "%a %U", "/var/cache/salt/minion/highstate.cache.p"]).stdout.split() \
        == ["600", "root"]
    # ...but OMERO.web has it
    assert web.omero("config", "get", "omero.web.secret_key").stdout.strip() == SECRET


def _leaks(web, secret):
    """Files Salt keeps (logs, job cache, the returns in sls.p) that hold ``secret``."""
    return web.run(["bash", "-c", "grep -rl -- %s /var/log/salt /var/cache/salt 2>/dev/null || true"
                    % secret]).stdout.split()


REDIS_SECRET = "r3dis-pw-that-must-never-be-printed-98765"


def test_redis_url_password_is_never_shown(web):
    """A password in sessions:redis_url: masked in the changes (the URL's other
    parts shown), absent from every output at debug level, the job cache and
    the logs; the local Redis requires it."""
    port = 6379 + kitchen.port_offset()
    overrides = {"sessions": {"redis_url": "redis://:%s@127.0.0.1:%d/0" % (REDIS_SECRET, port)}}
    dry = site_checks.apply_at_debug(web, overrides, test=True)
    real = site_checks.apply_at_debug(web, overrides)
    assert dry.ok and real.ok, real.summary()
    for run in (dry, real):
        assert REDIS_SECRET not in run.proc.stdout + run.proc.stderr
    changes = [st["changes"] for key, st in real.changed.items() if "omero_web-config" in key][0]
    location = changes["omero.web.caches"]["new"]["default"]["LOCATION"]
    assert location == "redis://:********@127.0.0.1:%d/0" % port
    # a pillar secret is in Salt's compiled-state cache (root-only), as every
    # rendered state argument is; nowhere else
    assert _leaks(web, REDIS_SECRET) in ([], ["/var/cache/salt/minion/highstate.cache.p"])
    ping = web.run(["redis-cli", "-p", str(port), "ping"], check=False).stdout
    assert "NOAUTH" in ping, ping
    assert web.run(["redis-cli", "-p", str(port), "ping"],
                   env={"REDISCLI_AUTH": REDIS_SECRET}).stdout.strip() == "PONG"


def test_generated_redis_password_is_nowhere(web):
    """The password the formula generates for a local Redis is read at apply
    time from a root-only file: not in any output, not even in Salt's
    compiled-state cache."""
    dry = site_checks.apply_at_debug(web, {}, test=True)
    real = site_checks.apply_at_debug(web, {})
    assert dry.ok and real.ok, real.summary()
    assert web.run(["stat", "-c", "%a %U", "/etc/omero-web/redis-password"]).stdout.split() == [
        "600", "root"]
    password = web.run(["cat", "/etc/omero-web/redis-password"]).stdout.strip()
    assert len(password) >= 32
    for run in (dry, real):
        assert password not in run.proc.stdout + run.proc.stderr
    assert _leaks(web, password) == []
    port = str(6379 + kitchen.port_offset())
    assert "NOAUTH" in web.run(["redis-cli", "-p", port, "ping"], check=False).stdout
    assert web.run(["redis-cli", "-p", port, "ping"],
                   env={"REDISCLI_AUTH": password}).stdout.strip() == "PONG"
    # OMERO.web stores its sessions there (the apply's session check said so)
    checks = [st for key, st in real.states.items() if "sessions_work" in key]
    assert checks and "OMERO.web stores sessions" in checks[0]["comment"], checks


def test_config_is_not_world_readable(web):
    omerodir = web.pillar["omerodir"]
    # an apply that writes config.xml, whatever ran before: a secret of this
    # test's own, then pillar.example's again
    for overrides in ({"config": {"omero.web.secret_key": SECRET + "-readable"}}, {}):
        result = site_checks.apply_at_debug(web, overrides)
        assert result.ok and any("omero_web-config" in k for k in result.changed), result.summary()
    for path in (omerodir, omerodir + "/etc/grid", omerodir + "/etc/grid/config.xml"):
        mode = int(web.run(["stat", "-c", "%a", path]).stdout.strip(), 8)
        assert mode & 0o007 == 0, "%s is mode %o" % (path, mode)
    # a local user other than omero-web cannot read it
    web.run(["bash", "-c", "id nobody"])
    res = web.run(["runuser", "-u", "nobody", "--", "cat", omerodir + "/etc/grid/config.xml"], check=False)
    assert res.returncode != 0


def test_apply_killed_during_pip_then_reapplied_converges(web):
    # A new app makes the pip step do real work (a download and an install).
    overrides = {"apps": [{"name": "omero_figure", "package": "omero-figure",
                           "config_append": {"omero.web.ui.top_links": [
                               ["Figure", "figure_index",
                                {"title": "Open Figure in new tab", "target": "_blank"}]]}},
                          {"name": "omero_iviewer", "package": "omero-iviewer"}]}
    pillar = kitchen.kitchen_pillar(overrides)
    web.write_pillar(pillar)
    web.current = None
    web.run([pillar["omero_web"]["venv"] + "/bin/pip", "uninstall", "-q", "-y", "omero-iviewer"], check=False)
    web.run(["bash", "-c", "setsid salt-call --local state.apply omero_web "
                           ">/root/killed-apply.log 2>&1 & echo $! > /root/killed-apply.pid"])
    pid = web.run(["cat", "/root/killed-apply.pid"]).stdout.strip()
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline:
        if web.run(["pgrep", "-f", "pip install.*omero-iviewer"], check=False).returncode == 0:
            web.run(["kill", "-%d" % signal.SIGKILL, "--", "-" + pid], check=False)
            killed = True
            break
        time.sleep(0.2)
    assert killed, "the apply never reached the pip step"
    time.sleep(1)
    result = web.apply()
    assert result.ok, result.summary()
    assert "omero_iviewer" in web.config("omero.web.apps")
    web.run([pillar["omero_web"]["venv"] + "/bin/pip", "show", "omero-iviewer"])
    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
    # config.xml is still valid XML that omero reads
    assert web.omero("config", "get", "omero.web.prefix").stdout.strip() == web.pillar["prefix"]
    kitchen.wait_http(web.base_url() + "/webclient/login/", timeout=90)


def test_failed_health_check_fails_the_apply_with_url_and_log(web):
    bad = {"service": {"healthcheck": {"timeout": 20}},
           "config_append": {"omero.web.middleware": [
               {"index": 5, "class": "no_such_module.NoSuchMiddleware"}]}}
    result = site_checks.apply_at_debug(web, bad)
    assert not result.ok
    failed = {result.state_id(k): v for k, v in result.failed.items()}
    assert "omero_web-healthcheck-cmd-run" in failed, result.summary()
    comment = str(failed["omero_web-healthcheck-cmd-run"].get("comment")) + str(
        failed["omero_web-healthcheck-cmd-run"].get("changes"))
    assert "/webclient/login/" in comment
    assert "OMEROweb.log" in comment or "no_such_module" in comment
    # Removing the bad value from config_append leaves it in the list (append
    # semantics); prune resets appended lists to OMERO.web's defaults plus
    # the declared values, so the fixed pillar converges again.
    good = site_checks.apply_at_debug(web, {"prune": True})
    assert good.ok, good.summary()
    kitchen.wait_http(web.base_url() + "/webclient/login/", timeout=90)
