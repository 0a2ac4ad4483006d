"""Checks a user would make of a converged site, shared by the scenarios
(pillar.example, root prefix...): each takes the KitchenHost and asserts."""
import json
import time
import urllib.parse

import kitchen


def login_page_through_nginx(web):
    status, headers, body = web.http_get(web.base_url() + "/webclient/login/")
    assert status == 200
    assert "OMERO.web - Login" in body
    assert headers.get("Server") == "nginx", "server_tokens off: no version in Server"


def servers_api_returns_the_pillar_server_list(web):
    status, _, body = web.http_get(web.base_url() + "/api/v0/servers/")
    assert status == 200
    servers = json.loads(body)["data"]
    got = [[s["host"], s["port"], s["server"]] for s in servers]
    assert got == [list(e) for e in web.pillar["server_list"]]


def static_path(web):
    """A real file under OMERODIR/var/static, as a URL under the static_url."""
    rel = web.run(["bash", "-c", "cd %s/var/static && ls webgateway/css/*.css | head -n1"
                   % web.pillar["omerodir"]]).stdout.strip()
    assert rel
    return web.base_url() + "/static/" + rel


def static_files_are_served_by_nginx_itself(web):
    url = static_path(web)
    status, _, body = web.http_get(url)
    assert status == 200 and body
    service = web.pillar["service"]["name"]
    web.run(["systemctl", "stop", service])
    try:
        # With gunicorn stopped, a proxied page gets the maintenance answer...
        status_login, _, _ = web.http_get(web.base_url() + "/webclient/login/")
        assert status_login >= 500
        # ...while the static file still comes straight from nginx.
        status, _, body2 = web.http_get(url)
        assert status == 200 and body2 == body
    finally:
        web.run(["systemctl", "start", service])
    wait_for_login_page(web)


def wait_for_login_page(web):
    kitchen.wait_http(web.base_url() + "/webclient/login/", timeout=90)


def figure_app_installed_listed_and_served(web):
    web.run([web.pillar["venv"] + "/bin/pip", "show", "omero-figure"])
    assert "omero_figure" in web.config("omero.web.apps")
    status, headers, _ = web.http_get(web.base_url() + "/figure/")
    if status in (301, 302):
        location = urllib.parse.urlparse(headers["Location"]).path
        assert location.startswith((web.pillar.get("prefix") or "") + "/webclient/login")
    else:
        assert status == 200


def apply_at_debug(web, overrides, test=False):
    """Apply pillar.example + ``overrides`` at debug log level (what a secret
    must survive): a kitchen ApplyResult; ``web.pillar`` follows."""
    pillar = kitchen.kitchen_pillar(overrides)
    web.write_pillar(pillar)
    web.current = None
    argv = ["salt-call", "--local", "--out=json", "--retcode-passthrough", "--log-level=debug",
            "state.apply", "omero_web"] + (["test=True"] if test else [])
    start = time.time()
    res = web.run(argv, check=False)
    try:
        data = json.loads(res.stdout)
    except ValueError:
        data = None
    web.pillar = pillar["omero_web"]
    return kitchen.ApplyResult(data, res, time.time() - start)

