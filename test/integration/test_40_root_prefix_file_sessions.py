"""The same user-visible checks with OMERO.web at the root URL and file sessions.

pillar.example serves OMERO.web under /omero; this scenario unsets the prefix
(omero.web.prefix and static_url go away, nginx serves /), switches sessions
to Django's file store and CORS to allow_all, on the same host. No `prune`:
the formula unsets the properties it owns and no longer uses by itself.
"""
import pytest

import site_checks

OVERRIDES = {
    "prefix": "",
    "sessions": {"backend": "file"},
    "cors": {"allow_all": True, "whitelist": []},
}


@pytest.fixture(scope="module")
def web(host):
    result = host.converge(OVERRIDES)
    if result is not None:
        print("root-prefix converge:", result.summary())
    return host


def test_prefix_properties_are_gone(web):
    keys = web.omero("config", "keys").stdout.split()
    assert "omero.web.prefix" not in keys
    assert "omero.web.static_url" not in keys
    assert "omero.web.caches" not in keys
    assert "omero.web.session_engine" not in keys


def test_login_page(web):
    site_checks.login_page_through_nginx(web)


def test_servers_api(web):
    site_checks.servers_api_returns_the_pillar_server_list(web)


def test_static_by_nginx(web):
    site_checks.static_files_are_served_by_nginx_itself(web)


def test_figure_app(web):
    site_checks.figure_app_installed_listed_and_served(web)


def test_cors_allow_all(web):
    _, headers, _ = web.http_get(web.base_url() + "/api/v0/", headers={"Origin": "https://any.example.net"})
    assert headers.get("Access-Control-Allow-Origin") in ("*", "https://any.example.net")


def test_apply_again_changes_nothing(web):
    result = web.apply()
    assert result.ok and result.changed == {}, result.summary()


def test_file_sessions_live_in_omerodir_not_in_the_shared_tmp(web):
    tmpdir = web.pillar["omerodir"] + "/var/tmp"
    web.run(["bash", "-c", "rm -f %s/sessionid* /tmp/sessionid*" % tmpdir])
    status, _, _ = web.http_get(web.base_url() + "/webclient/?bsession=no-such-session")
    assert status in (200, 302)
    found = web.run(["bash", "-c", "ls %s | grep -c '^sessionid' || true" % tmpdir]).stdout.strip()
    assert int(found) >= 1
    assert web.run(["bash", "-c", "ls /tmp | grep -c '^sessionid' || true"]).stdout.strip() == "0"
    owner, mode = web.run(["stat", "-c", "%U %a", tmpdir]).stdout.split()
    assert owner == web.pillar["user"] and mode == "700"
