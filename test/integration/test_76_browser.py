"""What a person sees (issue 12, part 5): OMERO.web's pages in headless Chromium.

Debian's chromium (test/headless_chromium.py, the DevTools protocol) loads
the login page through the formula's nginx, with a prefix (pillar.example)
and without, and checks what a person would: the login form is there and
usable, every stylesheet and script loaded (no failed or 4xx/5xx request of
the site's own in the page's network log, and the styles apply), and the
figure app that pillar.example installs reaches the login redirect with no
console error. A screenshot per scenario is kept as a test artifact in
``$OMERO_WEB_ARTIFACTS`` (default: test/artifacts/, which git ignores); its
path is printed.

The page's one third-party request (api.github.com, for OMERO.insight's
releases) cannot succeed here: the browser resolves no name but loopback's,
so it fails the same way on every machine, and it is listed, not counted.
"""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import headless_chromium  # noqa: E402  (test/headless_chromium.py)

ARTIFACTS = pathlib.Path(os.environ.get(
    "OMERO_WEB_ARTIFACTS", pathlib.Path(__file__).resolve().parents[1] / "artifacts")) / "browser"

# What a person would check, evaluated in the page.
LOGIN_DOM = """(() => {
  const form = document.querySelector('form[action*="/webclient/login/"]');
  const sheets = [...document.querySelectorAll('link[rel=stylesheet]')].map(l => {
    let rules = -1;
    try { rules = l.sheet ? l.sheet.cssRules.length : -1; } catch (e) { rules = -2; }
    return {href: l.href, rules: rules};
  });
  const user = document.getElementById('id_username');
  return {
    title: document.title,
    form: !!form,
    method: form ? form.method : null,
    username: !!user,
    password: !!document.getElementById('id_password'),
    submit: !!(form && form.querySelector('input[type=submit]')),
    csrf: !!(form && form.querySelector('input[name=csrfmiddlewaretoken]')),
    focused: document.activeElement === user,
    user_visible: !!(user && user.offsetWidth > 0 && user.offsetHeight > 0),
    sheets: sheets,
    scripts: [...document.scripts].filter(s => s.src).map(s => s.src),
    jquery: typeof window.jQuery === 'function',
    // the stylesheets apply: the body's font is ome.body.css's, not the default
    font: getComputedStyle(document.body).fontFamily,
  };
})()"""


def save(visit, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (name + ".png")
    path.write_bytes(visit.screenshot)
    print("screenshot: %s" % path)
    return path


def check_login_page(visit, origin):
    dom = visit.dom
    assert dom["title"] == "OMERO.web - Login", visit.summary()
    assert dom["form"] and dom["method"] == "post", dom
    assert dom["username"] and dom["password"] and dom["submit"] and dom["csrf"], dom
    assert dom["user_visible"] and dom["focused"], dom
    own = visit.own(origin)
    failed = [r for r in own if r.failed or (r.status or 0) >= 400]
    assert not failed, visit.summary()
    css = [r for r in own if r.type == "Stylesheet"]
    js = [r for r in own if r.type == "Script"]
    assert len(css) >= 5 and all(r.status == 200 for r in css), visit.summary()
    assert len(js) >= 3 and all(r.status == 200 for r in js), visit.summary()
    # every stylesheet of the page was parsed (cssRules readable and not empty)
    assert dom["sheets"] and all(s["rules"] > 0 for s in dom["sheets"]), dom["sheets"]
    assert dom["jquery"], "jQuery did not load"
    assert "arial" in dom["font"].lower() or "helvetica" in dom["font"].lower(), dom["font"]
    assert not visit.own_console_errors(origin), visit.summary()
    third = visit.third_party(origin)
    if third:
        print("third-party requests (no network here): %s" % ", ".join(r.url for r in third))
    assert len(visit.screenshot) > 10000


@pytest.fixture(scope="module")
def browser():
    if not headless_chromium.available():
        pytest.fail("Debian's chromium is not installed: test/run-tests installs it "
                    "(apt-get install chromium)")
    with headless_chromium.Browser() as chromium:
        yield chromium
    chromium.remove_profile()


def origin_of(host):
    """The site's origin as the browser writes its URLs (no ``:80``)."""
    return headless_chromium.browser_origin("http://127.0.0.1:%d" % host.pillar["nginx"]["port"])


def test_login_page_with_prefix(host, browser):
    host.converge()
    origin = origin_of(host)
    visit = browser.visit(origin + host.pillar["prefix"] + "/webclient/login/",
                          dom_expression=LOGIN_DOM, screenshot=True)
    save(visit, "login-prefix")
    check_login_page(visit, origin)
    assert all(r.url.startswith(origin + "/omero/") for r in visit.own(origin)), visit.summary()


def test_figure_app_reaches_the_login_redirect(host, browser):
    host.converge()
    origin = origin_of(host)
    prefix = host.pillar["prefix"]
    visit = browser.visit(origin + prefix + "/figure/", dom_expression=LOGIN_DOM, screenshot=True)
    save(visit, "figure-app-prefix")
    first = visit.requests[0]
    assert first.url == origin + prefix + "/figure/" and first.status == 302, visit.summary()
    assert visit.final_url == origin + prefix + "/webclient/login/?url=%2Fomero%2Ffigure%2F", visit.summary()
    check_login_page(visit, origin)


def test_login_page_at_the_root(host, browser):
    host.converge({"prefix": ""})
    try:
        origin = origin_of(host)
        visit = browser.visit(origin + "/webclient/login/", dom_expression=LOGIN_DOM, screenshot=True)
        save(visit, "login-root")
        check_login_page(visit, origin)
        assert all(r.url.startswith(origin + "/static/") for r in visit.own(origin)
                   if r.type in ("Stylesheet", "Script")), visit.summary()
        app = browser.visit(origin + "/figure/", screenshot=True)
        save(app, "figure-app-root")
        assert app.final_url == origin + "/webclient/login/?url=%2Ffigure%2F", app.summary()
        assert not app.own_console_errors(origin), app.summary()
    finally:
        host.converge()
