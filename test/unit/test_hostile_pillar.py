"""
Hostile or mistaken pillar never reaches a shell, an nginx file or a unit:
every string, path and name key of the schema is fed values that would
inject commands, directives or lines, escape a directory, or take over the
system's own accounts, units and directories. Each one must be refused by
``omero_web.validate``, with an error naming that key, before anything on
the host changes (the real-host suite shows that for a dozen of them:
test/integration/test_10_bad_pillar_on_fresh_host.py).
"""

import pytest
from salt.exceptions import SaltInvocationError

from unit_support import FORMULA, build, omero_web_dunders

omero_web = FORMULA.omero_web
schema = FORMULA.schema

INJECT = [
    "x\nExecStartPre=/bin/touch /root/PWNED",  # a new unit / nginx line
    "x\rinclude /etc/shadow;",
    "x\x00y",
]
PATHS = [
    "/opt/omero/web/v'; touch /root/X; echo '",
    "/opt/omero/../../etc",
    "/opt/omero/./web",
    "relative/dir",
    "/opt/with space",
    "/opt/$(id)",
    "/opt/a;b",
]
OWN_DIRS = ["/", "/etc", "/usr", "/var", "/opt", "/home", "/srv", "/etc/omero", "/usr/lib/omero",
            "/tmp/omero", "/root/omero", "/var/lib", "/usr/local"]
ACCOUNTS = ["root", "www-data", "nginx", "redis", "nobody", "sshd", "systemd-network",
            "omero web", "Omero", "a;b", "$(id)"]
UNITS = ["sshd", "nginx", "redis-server", "dbus", "salt-minion", "systemd-journald",
         "omero web", "x;y", "../evil"]
PROTOCOLS = ["SSLv3", "TLSv1", "TLSv1.1 TLSv1.2", "TLSv1.2; include /etc/passwd", ""]
CALENDARS = ["not a calendar", "daily; rm -rf /", "$(id)", "daily'"]
HOSTS = ["0.0.0.0; evil", "host name", "$(id)", "-bad-", "a..b", "1.2.3.4.5"]
SERVER_NAMES = ["a.example.org; evil", "a{b}", "'quoted'", "a\\b", ""]
WHEELS = ["/tmp/x.whl' && touch /root/X", "http://insecure.example.org/x.whl",
          "/srv/../etc/x.whl", "--index-url=http://evil", "/srv/wheels/not-a-wheel.tar.gz",
          "ftp://example.org/x.whl"]
REQUIREMENTS = ["--index-url=http://evil", "omero-web; rm -rf /", "-e git+https://x/y",
                "omero-web==5.33.2 --pre", "omero web", "omero-web @ http://insecure/x.whl"]
PREFIXES = ["/omero;", "/omero { }", "/omero'", "/omero web", "/$(id)"]


def _case(parts, value):
    """Overrides that set the key at ``parts`` (a tuple of names) to ``value``."""
    overrides = value
    for part in reversed(parts):
        overrides = {part: overrides}
    return overrides


def _cases():
    cases = []
    kinds = {":".join(parts): key.kind for parts, key in schema.leaves()}

    def add(path, values):
        for value in values:
            cases.append((path, value))

    for path, kind in sorted(kinds.items()):
        if kind in ("path", "own_dir", "own_file"):
            add(path, PATHS + INJECT[:1])
        if kind == "own_dir":
            add(path, OWN_DIRS)
        if kind == "own_account":
            add(path, ACCOUNTS)
        if kind == "own_unit":
            add(path, UNITS)
        if kind == "unit_name":
            add(path, UNITS[-3:])
        if kind == "account":
            add(path, ACCOUNTS[-4:])
        if kind in ("text", "pkg_name", "ident", "file_name", "unit_name", "account",
                    "own_account", "own_unit", "calendar", "host", "server_names", "source",
                    "wheel", "tls_protocols", "prefix", "secret_text", "regex"):
            add(path, INJECT)
    add("nginx:tls:protocols", PROTOCOLS)
    add("sessions:clear:on_calendar", CALENDARS)
    add("gunicorn:host", HOSTS)
    add("nginx:server_name", SERVER_NAMES)
    add("ice:wheel", WHEELS)
    add("pip:packages:whitenoise", REQUIREMENTS)
    add("prefix", PREFIXES)
    add("nginx:tls:cert", ["salt://c.crt'; evil", "/etc/ssl/../shadow", "c.crt"])
    add("nginx:conf_file", ["../../etc/passwd", "a/b.conf"])
    add("selinux:port_type", ["http_port_t; evil"])
    add("service:hardening", [["ExecStartPre=/bin/sh -c 'id'"], ["NoNewPrivileges=yes\nUser=root"]])
    return cases


CASES = _cases()


@pytest.fixture
def configure_loader_modules(utils):
    return {omero_web: omero_web_dunders(utils)}


def _overrides(path, value):
    parts = tuple(path.split(":"))
    overrides = _case(parts, value)
    if path.startswith("nginx:tls:"):
        # the TLS keys are read when TLS is on: a cert and a key besides the one under test
        for other, good in (("cert", "/c.crt"), ("key", "/c.key")):
            overrides["nginx"]["tls"].setdefault(other, good)
    return overrides


def test_the_catalogue_is_large():
    assert len(CASES) >= 60
    # every string, path and name key is in it
    covered = {path for path, _ in CASES}
    stringish = {":".join(parts) for parts, key in schema.leaves() if key.kind in (
        "text", "path", "own_dir", "own_file", "account", "own_account", "unit_name",
        "own_unit", "pkg_name", "ident", "file_name", "host", "server_names", "calendar",
        "source", "wheel", "tls_protocols", "prefix", "secret_text", "regex")}
    assert stringish <= covered, sorted(stringish - covered)


@pytest.mark.parametrize("path,value", CASES, ids=["{}-{}".format(p, i) for i, (p, _) in enumerate(CASES)])
def test_hostile_value_is_refused_naming_its_key(path, value):
    mapdata, pillar = build(_overrides(path, value))
    with pytest.raises(SaltInvocationError) as info:
        omero_web.validate(mapdata, pillar=pillar)
    lines = str(info.value).splitlines()
    key = "omero_web:" + path
    assert any(line.startswith(key + ":") or line.startswith(key + "[") or
               line.startswith(key + " ") for line in lines), str(info.value)


def test_root_run_directories_stay_out_of_omerodir():
    for overrides, key in (({"venv": "/opt/omero/web/omero-web/venv"}, "omero_web:venv"),
                           ({"ice": {"cache_dir": "/opt/omero/web/omero-web/wheels"}},
                            "omero_web:ice:cache_dir")):
        mapdata, pillar = build(overrides)
        with pytest.raises(SaltInvocationError, match=key + ": expected a directory outside"):
            omero_web.validate(mapdata, pillar=pillar)


def test_control_characters_anywhere_are_refused_without_showing_them():
    mapdata, pillar = build({"config": {"omero.web.login_view": "x\nEvil: 1"},
                             "server_list": [["localhost", 4064, "omero\nx"]]})
    with pytest.raises(SaltInvocationError) as info:
        omero_web.validate(mapdata, pillar=pillar)
    message = str(info.value)
    assert "omero_web:config:omero.web.login_view: contains a control character" in message
    assert "Evil" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "::", "web-1.example.org", "localhost"])
def test_good_hosts_pass(host):
    mapdata, pillar = build({"gunicorn": {"host": host}})
    assert omero_web.validate(mapdata, pillar=pillar) is True


@pytest.mark.parametrize("calendar", ["daily", "hourly", "*-*-* 03:00:00", "Mon..Fri 02:30", "weekly"])
def test_good_calendars_pass(calendar):
    mapdata, pillar = build({"sessions": {"clear": {"on_calendar": calendar}}})
    assert omero_web.validate(mapdata, pillar=pillar) is True


def test_systemd_has_the_last_word_on_calendars():
    # plausible to the pure check, refused by this machine's systemd-analyze
    mapdata, pillar = build({"sessions": {"clear": {"on_calendar": "Mon 99:99"}}})
    with pytest.raises(SaltInvocationError, match="on_calendar: expected an expression systemd accepts"):
        omero_web.validate(mapdata, pillar=pillar)
