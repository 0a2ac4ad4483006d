"""What production sites add to the walkthrough (issue 12), on the real host.

* public (anonymous) access: the omero.web.public.* properties land, and
  the public user's password is in no output of the apply, real or
  test=True, and in no file Salt keeps but its root-only state cache;
* apps by name: figure, iviewer and parade from the catalogue are
  installed, registered where they must be, and each one's URL answers
  through nginx (a redirect to the login page counts);
* OMEROweb.log in a directory of the pillar's (logdir), and back;
* behind an outer TLS proxy (the institution's load balancer): a second
  nginx server terminates HTTPS with a self-signed certificate and proxies
  to the formula's nginx over plain HTTP; a login form fetched through it
  posts back through it without a CSRF failure.
"""
import http.cookiejar
import ssl
import urllib.parse
import urllib.request

import pytest

import kitchen
import site_checks

PUBLIC_PASSWORD = "pub1ic-pw-that-must-never-be-printed-24680"
OUTER_PORT = 8443 + kitchen.port_offset()
OUTER_CONF = "/etc/nginx/conf.d/zz-test-outer-tls-proxy.conf"
SITE = "omero.example.org"  # pillar.example's nginx:server_name

PUBLIC = {"public": {"enabled": True, "user": "public-user", "password": PUBLIC_PASSWORD,
                     "url_filter": "^/(webclient|webgateway)/(?!logout)", "server_id": 1,
                     "get_only": True, "cache": {"enabled": False, "timeout": 3600}}}


# --------------------------------------------------------------------------
# public (anonymous) access
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public(host):
    host.converge()
    dry = site_checks.apply_at_debug(host, PUBLIC, test=True)
    real = site_checks.apply_at_debug(host, PUBLIC)
    assert dry.ok and real.ok, real.summary()
    host.runs = (dry, real)
    yield host
    host.converge()  # public access off again for whatever runs next


def test_public_properties_land(public):
    assert public.config("omero.web.public.enabled") in ("true", "True", True)
    assert public.config("omero.web.public.user") == "public-user"
    assert public.config("omero.web.public.url_filter") == PUBLIC["public"]["url_filter"]
    assert public.config("omero.web.public.server_id") == "1"
    assert public.config("omero.web.public.cache.timeout") == "3600"
    # OMERO.web has the password itself
    assert public.config("omero.web.public.password") == PUBLIC_PASSWORD


def test_public_password_is_in_no_output_or_log(public):
    dry, real = public.runs
    for run in (dry, real):
        assert PUBLIC_PASSWORD not in run.proc.stdout + run.proc.stderr
    changes = [st["changes"] for key, st in real.changed.items() if "omero_web-config" in key]
    assert changes and "omero.web.public.password" in str(changes) and "********" in str(changes)
    leaks = public.run(["bash", "-c", "grep -rl -- %s /var/log /var/cache/salt %s/var/log "
                        "2>/dev/null || true" % (PUBLIC_PASSWORD, public.pillar["omerodir"])]).stdout.split()
    # Salt's cache of the compiled states holds every rendered argument (root's, 0600)
    assert leaks in ([], ["/var/cache/salt/minion/highstate.cache.p"]), leaks
    # the map as the _mapdata state dumps it
    _, dump = public.salt_call("state.apply", "omero_web._mapdata")
    assert dump.returncode == 0 and PUBLIC_PASSWORD not in dump.stdout + dump.stderr
    mapdump = public.run(["cat", "/tmp/salt_mapdata_dump.yaml"]).stdout
    assert "public-user" in mapdump and PUBLIC_PASSWORD not in mapdump


def test_public_access_off_unsets_the_properties(host):
    host.converge(PUBLIC)
    host.converge()
    res = host.omero("config", "get", "omero.web.public.password", check=False)
    assert res.stdout.strip() == ""
    assert host.omero("config", "get", "omero.web.public.enabled", check=False).stdout.strip() == ""


# --------------------------------------------------------------------------
# apps by name
# --------------------------------------------------------------------------

APPS = {"apps": ["figure", "iviewer", "parade"],
        "config": {"omero.web.viewer.view": "omero_iviewer.views.index"}}


def test_apps_by_name_are_installed_registered_and_served(host):
    result = host.converge(APPS)
    assert result is None or result.ok
    catalogue = kitchen.effective_pillar()["app_catalogue"]
    registered = host.config("omero.web.apps")
    for short in APPS["apps"]:
        entry = catalogue[short]
        shown = host.run([host.pillar["venv"] + "/bin/pip", "show", entry["package"]]).stdout
        assert "Version: %s" % entry["version"] in shown
        assert entry["name"] in registered
        status, headers, _ = host.http_get(host.base_url() + entry["url"])
        if status in (301, 302):
            location = urllib.parse.urlparse(headers["Location"]).path
            assert location.startswith(host.pillar["prefix"] + "/webclient/login"), (short, location)
        else:
            assert status == 200, (short, status)
    assert "Figure" in [link[0] for link in host.config("omero.web.ui.top_links")]
    assert {"omero_figure", "omero_iviewer"} <= {e[0] for e in host.config("omero.web.open_with")}
    assert "Parade" in [e[0] for e in host.config("omero.web.ui.center_plugins")]
    assert host.config("omero.web.viewer.view") == "omero_iviewer.views.index"


# --------------------------------------------------------------------------
# OMEROweb.log elsewhere (logdir)
# --------------------------------------------------------------------------

LOGDIR = "/var/log/omero-web"


def _log_lines(web, path):
    res = web.run(["bash", "-c", "wc -l < %s 2>/dev/null || echo 0" % path])
    return int(res.stdout.strip() or 0)


def test_logdir_holds_omeroweb_log_and_back(host):
    host.converge()
    omerodir = host.pillar["omerodir"]
    result = host.converge({"logdir": LOGDIR})
    assert result.ok, result.summary()
    assert host.run(["readlink", omerodir + "/var/log"]).stdout.strip() == LOGDIR
    assert host.run(["stat", "-c", "%U %a", LOGDIR]).stdout.split() == ["omero-web", "750"]
    assert host.config("omero.web.logdir") == LOGDIR
    assert "ReadWritePaths=-" + LOGDIR in host.run(["systemctl", "cat", "omero-web"]).stdout
    # the hardened, running OMERO.web writes its log there
    before = _log_lines(host, LOGDIR + "/OMEROweb.log")
    host.run(["systemctl", "restart", "omero-web"])
    kitchen.wait_http(host.base_url() + "/webclient/login/", timeout=90)
    assert host.http_get(host.base_url() + "/webclient/login/")[0] == 200
    assert _log_lines(host, LOGDIR + "/OMEROweb.log") > before
    assert host.unit_prop("omero-web", "ActiveState") == "active"
    # a second apply changes nothing
    again = host.apply()
    assert again.ok and not again.changed, again.summary()
    # logdir unset: var/log is a directory of OMERODIR's again, and OMERO.web logs there
    host.converge()
    assert host.run(["stat", "-c", "%F", omerodir + "/var/log"]).stdout.strip() == "directory"
    host.run(["systemctl", "restart", "omero-web"])
    kitchen.wait_http(host.base_url() + "/webclient/login/", timeout=90)
    assert _log_lines(host, omerodir + "/var/log/OMEROweb.log") > 0


# --------------------------------------------------------------------------
# behind an outer TLS proxy
# --------------------------------------------------------------------------

OUTER_SERVER = """\
# the test's outer proxy: the institution's load balancer, terminating HTTPS
server {
    listen 127.0.0.1:%(outer)d ssl;
    server_name %(site)s;
    ssl_certificate /root/outer-tls/outer.crt;
    ssl_certificate_key /root/outer-tls/outer.key;
    location / {
        proxy_pass http://127.0.0.1:%(inner)d;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto-Omero-Web https;
    }
}
"""


@pytest.fixture(scope="module")
def outer(host):
    host.converge({"proxy": {"https": True}})
    host.run(["bash", "-c",
              "command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive "
              "apt-get install -y -qq openssl >/dev/null; mkdir -p /root/outer-tls && "
              "cd /root/outer-tls && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
              "-subj /CN=%s -addext subjectAltName=DNS:%s,IP:127.0.0.1 "
              "-keyout outer.key -out outer.crt 2>/dev/null" % (SITE, SITE)])
    conf = OUTER_SERVER % {"outer": OUTER_PORT, "site": SITE, "inner": host.pillar["nginx"]["port"]}
    host.run(["bash", "-c", "cat > %s && nginx -t -q && systemctl reload nginx" % OUTER_CONF],
             input=conf)
    host.cert_pem = host.run(["cat", "/root/outer-tls/outer.crt"]).stdout
    kitchen.wait_http("http://127.0.0.1:%s%s/webclient/login/" % (
        host.pillar["nginx"]["port"], host.pillar["prefix"]), timeout=60)
    yield host
    host.run(["bash", "-c", "rm -f %s && systemctl reload nginx" % OUTER_CONF])
    host.converge()


def _through_outer(web, path, jar, data=None, headers=None):
    ctx = ssl.create_default_context(cadata=web.cert_pem)
    ctx.check_hostname = False
    url = "https://127.0.0.1:%d%s%s" % (OUTER_PORT, web.pillar.get("prefix") or "", path)
    req = urllib.request.Request(url, data=data, headers=dict({"Host": SITE}, **(headers or {})))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.HTTPCookieProcessor(jar), kitchen.NoRedirect)
    try:
        resp = opener.open(req, timeout=15)
        return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode("utf-8", "replace")


def test_proxy_settings_land(outer):
    assert outer.config("omero.web.secure_proxy_ssl_header") == ["HTTP_X_FORWARDED_PROTO_OMERO_WEB",
                                                                 "https"]
    assert outer.config("omero.web.csrf_trusted_origins") == ["https://" + SITE]
    for prop in ("omero.web.session_cookie_secure", "omero.web.csrf_cookie_secure"):
        assert outer.config(prop) in ("true", "True", True)


def test_login_form_posts_back_through_the_outer_proxy_without_csrf_failure(outer):
    jar = http.cookiejar.CookieJar()
    status, headers, body = _through_outer(outer, "/webclient/login/", jar)
    assert status == 200 and "OMERO.web - Login" in body
    token = [c for c in jar if c.name == "csrftoken"]
    assert token and token[0].secure, "the CSRF cookie is Secure behind the proxy"
    origin = "https://" + SITE
    form = "csrfmiddlewaretoken=%s&username=nobody&password=wrong&server=1" % token[0].value
    status, _, body = _through_outer(outer, "/webclient/login/", jar, data=form.encode(), headers={
        "Origin": origin, "Referer": origin + outer.pillar["prefix"] + "/webclient/login/",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert "CSRF verification failed" not in body
    # past the CSRF check: the login fails only for want of an OMERO.server
    assert status == 200 and "Server is not responding" in body


def test_without_proxy_https_the_same_post_fails_csrf(outer):
    # the control: the proxy's header is no longer trusted, Django sees
    # plain HTTP and refuses the https Origin
    outer.converge()
    try:
        jar = http.cookiejar.CookieJar()
        status, _, _ = _through_outer(outer, "/webclient/login/", jar)
        assert status == 200
        token = [c.value for c in jar if c.name == "csrftoken"][0]
        origin = "https://" + SITE
        form = "csrfmiddlewaretoken=%s&username=nobody&password=wrong&server=1" % token
        status, _, body = _through_outer(outer, "/webclient/login/", jar, data=form.encode(), headers={
            "Origin": origin, "Referer": origin + outer.pillar["prefix"] + "/webclient/login/",
            "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403 and "CSRF" in body and "Origin checking failed" in body
    finally:
        outer.converge({"proxy": {"https": True}})
