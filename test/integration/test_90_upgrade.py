"""Day two (issue 11): upgrade omero-web 5.29.3 (Django 4.2, pickle
sessions) -> 5.33.2 (Django 5.2, JSON sessions) and back, on a host of its
own with Redis sessions, an app and free-form config.

Each way: test=True names exactly the states the real apply changes (the
omero-web pin and the restart, with the session store clearing), the
service starts once, the old session is gone without a decoding error in
OMEROweb.log, a new session works, the static files are the new release's
(served by nginx), config and apps survive, and a second apply changes
nothing.
"""
import pytest

import kitchen
import site_checks
from day_two import django_session, dry_run_then_apply, installed_version, omeroweb_log, starts_since

HOST_SUFFIX = "-upg"

OLD, NEW = "5.29.3", "5.33.2"
#: a static file that differs between OLD and NEW
CHANGED_STATIC = "webgateway/css/ome.header.css"
FREE_FORM = {"omero.web.ui.right_plugins": [["Acquisition",
                                              "webclient/data/includes/right_plugin.acquisition.js.html",
                                              "metadata_tab"]],
             "omero.web.page_size": 150}


def pillar_for(version):
    pillar = kitchen.kitchen_pillar({"version": "==" + version})
    web = pillar["omero_web"]
    web["apps"][0]["package"] = "omero-figure>=7,<8"
    web["config"].update(FREE_FORM)
    return pillar


@pytest.fixture(scope="module")
def site(own_host):
    own_host.converge(pillar_for(OLD)["omero_web"])
    return own_host


def at(web, version):
    """Converge ``web`` at ``version`` (nothing when it already is)."""
    web.converge(pillar_for(version)["omero_web"])
    assert installed_version(web, "omero-web") == version


def switch(web, old, new):
    """Apply the pillar for ``new`` (dry run first) on a host at ``old``; check all of issue 11's part 1."""
    at(web, old)
    key = django_session(web, "create", value="from " + old)
    assert django_session(web, "exists", key=key) is True
    status, _, _ = web.http_get(web.base_url() + "/webclient/login/",
                                headers={"Cookie": "sessionid=" + key})
    assert status == 200
    static_url = web.base_url() + "/static/" + CHANGED_STATIC
    _, _, old_static = web.http_get(static_url)
    log_before = len(omeroweb_log(web))

    def unchanged():
        assert installed_version(web, "omero-web") == old, "test=True changed the venv"

    dry, real, changed, cursor = dry_run_then_apply(web, pillar_for(new), unchanged)
    # the pin, the nginx file (it names the release it was generated with)
    # and nginx's graceful reload, the one restart
    assert changed == ["omero_web-nginx-config-omero-nginx_config",
                       "omero_web-nginx-service-omero_web-nginx_running",
                       "omero_web-service-omero_web-service_running",
                       "omero_web-venv-omero_venv-packages_installed"], changed
    pip_key = [k for k in dry.predicted if "packages_installed" in k][0]
    assert dry.states[pip_key]["changes"] == {"omero-web": {"old": old, "new": "omero-web==" + new}}
    service_key = [k for k in real.changed if "service_running" in k][0]
    service = real.states[service_key]
    dry_service = dry.states[service_key]
    assert set(service["changes"]) == set(dry_service["changes"]) == {web.pillar["service"]["name"],
                                                                      "sessions"}
    assert service["changes"]["sessions"]["why"] == dry_service["changes"]["sessions"]["why"]
    assert service["changes"]["sessions"]["cleared"] >= 1
    why = service["changes"]["sessions"]["why"]
    assert why.startswith("omero-web %s -> %s" % (old, new)) and "5.30" in why and "5.31" in why
    assert "session store (django.contrib.sessions.backends.cache) was cleared" in service["comment"]
    assert installed_version(web, "omero-web") == new
    assert starts_since(web, cursor) == 1

    # the old session is gone, without a decoding error; a new one works
    assert django_session(web, "exists", key=key) is False
    status, _, _ = web.http_get(web.base_url() + "/webclient/login/",
                                headers={"Cookie": "sessionid=" + key})
    assert status == 200
    log = omeroweb_log(web)[log_before:]
    assert "Session data corrupted" not in log and "SuspiciousSession" not in log, log[-3000:]
    fresh = django_session(web, "create", value="from " + new)
    assert django_session(web, "exists", key=fresh) is True

    # the new release's static files, served by nginx
    _, _, new_static = web.http_get(static_url)
    wanted = web.run(["bash", "-c", "cat %s/lib/python3*/site-packages/omeroweb/webgateway/static/%s"
                      % (web.pillar["venv"], CHANGED_STATIC)]).stdout
    assert new_static == wanted and new_static != old_static

    # config and apps survive
    for prop, value in FREE_FORM.items():
        assert web.config(prop) == (value if isinstance(value, list) else str(value))
    site_checks.figure_app_installed_listed_and_served(web)
    site_checks.login_page_through_nginx(web)

    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()


def test_upgrade_clears_sessions_once_and_restarts_once(site):
    switch(site, OLD, NEW)


def test_downgrade_the_same_way(site):
    switch(site, NEW, OLD)
