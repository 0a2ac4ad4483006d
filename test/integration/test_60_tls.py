"""HTTPS with a self-signed certificate (issue 6).

With nginx:tls {cert, key}, nginx serves OMERO.web on the TLS port with that
certificate, port 80 redirects to it, and omero.web's secure-cookie and
csrf_trusted_origins settings make a login POST pass Django's CSRF check
behind TLS (it then fails only because there is no OMERO.server).
"""
import json
import ssl
import urllib.request

import pytest

import kitchen

TLS_PORT = 443 + kitchen.port_offset()


@pytest.fixture(scope="module")
def web(host):
    host.run(["bash", "-c",
              "command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive "
              "apt-get install -y -qq openssl >/dev/null; mkdir -p /root/tls && cd /root/tls && "
              "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=omero.example.org "
              "-addext subjectAltName=DNS:omero.example.org,IP:127.0.0.1 "
              "-keyout omero.key -out omero.crt 2>/dev/null"])
    cert = host.run(["cat", "/root/tls/omero.crt"]).stdout
    host.converge({"nginx": {"tls": {"cert": "/root/tls/omero.crt", "key": "/root/tls/omero.key",
                                     "port": TLS_PORT}}})
    host.cert_pem = cert
    yield host
    host.converge()  # back to plain HTTP for whatever runs next


def _https(web, path, data=None, headers=None):
    ctx = ssl.create_default_context(cadata=web.cert_pem)
    ctx.check_hostname = False
    url = "https://127.0.0.1:%d%s%s" % (TLS_PORT, web.pillar.get("prefix") or "", path)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.HTTPCookieProcessor(web.jar),
                                         kitchen.NoRedirect)
    try:
        resp = opener.open(req, timeout=15)
        return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode("utf-8", "replace")


def test_login_page_over_https_with_the_certificate(web):
    import http.cookiejar
    web.jar = http.cookiejar.CookieJar()
    status, headers, body = _https(web, "/webclient/login/")
    assert status == 200 and "OMERO.web - Login" in body
    assert headers.get("Server") == "nginx"


def test_http_redirects_to_https_at_the_configured_name(web):
    status, headers, _ = web.http_get("http://127.0.0.1:%s%s/webclient/login/" % (
        web.pillar["nginx"]["port"], web.pillar["prefix"]), headers={"Host": "evil.example.net"})
    assert status == 301
    # the configured server name, never the client's Host header, and the
    # HTTPS port when it is not 443
    port = "" if TLS_PORT == 443 else ":%d" % TLS_PORT
    assert headers["Location"] == "https://%s%s%s/webclient/login/" % (
        web.pillar["nginx"]["server_name"], port, web.pillar["prefix"])


def test_tls_settings_and_root_owned_files(web):
    conf = web.run(["cat", "/etc/nginx/conf.d/omero-web.conf"]).stdout
    assert "ssl_session_tickets off;" in conf and "ssl_ciphers ECDHE-" in conf
    assert "Strict-Transport-Security" not in conf  # opt-in
    # the include with OMERO.web's locations is root's, outside OMERODIR
    assert "include /etc/nginx/omero-web-location.include;" in conf
    owner, mode = web.run(["stat", "-c", "%U %a", "/etc/nginx/omero-web-location.include"]).stdout.split()
    assert owner == "root" and mode == "644"
    # TLSv1.1 is refused
    res = web.run(["bash", "-c", "echo | openssl s_client -connect 127.0.0.1:%d -tls1_1 2>&1 | "
                                 "grep -c 'Cipher is (NONE)\\|alert\\|no protocols' || true" % TLS_PORT])
    assert int(res.stdout.strip() or 0) >= 1


def test_secure_settings_for_logins_behind_tls(web):
    assert web.config("omero.web.secure") in ("true", "True", True)
    origins = web.config("omero.web.csrf_trusted_origins")
    origins = json.loads(origins) if isinstance(origins, str) else origins
    assert any(o.startswith("https://%s" % web.pillar["nginx"]["server_name"]) for o in origins)


def test_login_post_passes_csrf_behind_tls(web):
    import http.cookiejar
    web.jar = http.cookiejar.CookieJar()
    status, _, body = _https(web, "/webclient/login/")
    assert status == 200
    token = [c.value for c in web.jar if c.name == "csrftoken"][0]
    secure = [c.secure for c in web.jar if c.name == "csrftoken"][0]
    assert secure, "the CSRF cookie must be Secure behind TLS"
    origin = "https://%s" % web.pillar["nginx"]["server_name"]
    form = "csrfmiddlewaretoken=%s&username=nobody&password=wrong&server=1" % token
    status, _, body = _https(web, "/webclient/login/", data=form.encode(), headers={
        "Host": web.pillar["nginx"]["server_name"], "Origin": origin,
        "Referer": origin + web.pillar["prefix"] + "/webclient/login/",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert "CSRF verification failed" not in body
    assert status == 200 and "Server is not responding" in body
