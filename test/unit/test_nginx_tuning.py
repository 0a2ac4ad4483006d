"""
Unit tests of what the formula adds to OMERO's nginx text
(``_utils/omero_web_nginx.py``), on the real text ``omero web config nginx``
and ``nginx-location`` of omero-web 5.33.2 print (test/unit/data/, captured
from the real CLI on a kitchen host; the template is the same in 5.29.3),
with and without a prefix; and of the state that applies it
(``omero.nginx_config`` with ``tuning``, ``omero.nginx_http_config``).

That nginx accepts the result (``nginx -t``) and serves it as intended is
proven on a real host: test/integration/test_75_fast_pages.py.
"""

import difflib
import pathlib
import re

import pytest

from unit_support import FORMULA, USER, build, install_dist

DATA = pathlib.Path(__file__).parent / "data"
TUNING = {"gzip_level": 6, "gzip_static": 1, "static_max_age": 31536000, "static_unversioned_max_age": 86400,
          "keepalive": 16, "keepalive_timeout_ms": 1000, "open_file_cache": 1000}
OFF = {"gzip_level": 0, "gzip_static": 0, "static_max_age": 0, "static_unversioned_max_age": 0,
       "keepalive": 0, "keepalive_timeout_ms": 1000, "open_file_cache": 0}


def text(name):
    return (DATA / ("omero-web-5.33.2-" + name)).read_text()


def blocks(conf):
    """
    ``{block header: [directives]}`` of an nginx text (comments dropped;
    nested blocks are keyed by their own header): enough to say which
    directive sits in which block.
    """
    found, stack = {}, [("<top>", [])]
    found["<top>"] = stack[0][1]
    for raw in conf.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("{"):
            header = line[:-1].strip()
            assert header not in found, "two blocks " + header
            directives = []
            found[header] = directives
            stack.append((header, directives))
        elif line == "}":
            stack.pop()
        elif line.endswith("}"):  # one-line block: location = / { return 302 ...; }
            found[line.split("{", 1)[0].strip()] = [line.split("{", 1)[1].rstrip("}").strip()]
        else:
            stack[-1][1].append(line)
    assert len(stack) == 1, "unbalanced braces"
    return found


def removed_additions(original, tuned):
    """The tuned text without the lines the tuner added: must be OMERO's text again."""
    matcher = difflib.SequenceMatcher(None, original.splitlines(), tuned.splitlines(), autojunk=False)
    return {tag for tag, *_ in matcher.get_opcodes()} <= {"equal", "insert"}


@pytest.fixture
def nginx(utils):
    return {name: utils["omero_web_nginx." + name]
            for name in ("tune", "http_blocks", "options", "revision")}


@pytest.mark.parametrize("name,suffix,static", [
    ("prefix.conf", "_omero", "/omero/static"),
    ("root.conf", "", "/static"),
])
def test_server_block_gets_compression_lifetimes_keepalive(nginx, name, suffix, static):
    original = text(name)
    tuned = nginx["tune"](original, False, TUNING)
    found = blocks(tuned)
    upstream = found["upstream omeroweb" + suffix]
    assert upstream[1:] == ["keepalive 16;", "keepalive_timeout 1000ms;"]
    static_block = found["location " + static]
    variable = "$omeroweb%s_static_max_age" % suffix
    assert static_block[0].startswith("alias ")
    assert "expires %s;" % variable in static_block
    assert "gzip on;" in static_block and "gzip_comp_level 6;" in static_block
    # the unit's precompressed FILE.gz, sent as it is
    assert "gzip_static on;" in static_block
    # without it, each request without gzip looks for FILE.gz on disk
    assert "open_file_cache max=1000 inactive=60s;" in static_block
    assert "open_file_cache_errors on;" in static_block
    gzip_types = [d for d in static_block if d.startswith("gzip_types ")][0]
    assert {"text/css", "application/javascript", "application/json", "image/svg+xml"} <= set(
        gzip_types[len("gzip_types "):].rstrip(";").split())
    proxy = found["location @proxy_to_app" + suffix]
    assert 'proxy_set_header Connection "";' in proxy
    assert "proxy_http_version 1.1;" in proxy
    # proxy_set_header in the location: none of the server's are inherited,
    # so OMERO's own three are still there beside Connection
    assert [d for d in proxy if d.startswith("proxy_set_header")] == [
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header Host $http_host;",
    ]
    assert "proxy_buffering off;" in proxy
    assert "gzip on;" in proxy and "gzip_proxied any;" in proxy
    assert "gzip_static on;" not in proxy
    assert "proxy_pass http://omeroweb%s;" % suffix in proxy
    # the map is at http level, before the upstream block, and defines the variable
    the_map = found["map $args " + variable]
    assert the_map == ['"~^_[0-9][0-9A-Za-z.+-]*$" 31536000;', "default 86400;"]
    assert tuned.index("map $args") < tuned.index("upstream omeroweb")
    assert removed_additions(original, tuned)


@pytest.mark.parametrize("name,static", [("prefix.location", "/omero/static"), ("root.location", "/static")])
def test_location_blocks_name_the_http_file(nginx, name, static):
    original = text(name)
    tuned = nginx["tune"](original, True, TUNING)
    found = blocks(tuned)
    assert "expires $omeroweb_formula_static_max_age;" in found["location " + static]
    proxy = [v for k, v in found.items() if k.startswith("location @proxy_to_app")][0]
    assert "proxy_pass http://omeroweb_formula;" in proxy
    assert "proxy_http_version 1.1;" in proxy and 'proxy_set_header Connection "";' in proxy
    assert not [k for k in found if k.startswith(("upstream", "map"))]
    # only the proxy_pass line changed; everything else of OMERO's is kept
    assert removed_additions(original.replace("http://127.0.0.1:4080", "http://omeroweb_formula"), tuned)
    http = blocks(nginx["http_blocks"]("127.0.0.1:4080", TUNING))
    assert http["upstream omeroweb_formula"] == [
        "server 127.0.0.1:4080 fail_timeout=0;", "keepalive 16;", "keepalive_timeout 1000ms;"]
    assert http["map $args $omeroweb_formula_static_max_age"][1] == "default 86400;"


def test_location_blocks_without_keepalive_keep_omeros_proxy_pass(nginx):
    tuned = nginx["tune"](text("prefix.location"), True, dict(TUNING, keepalive=0))
    assert "proxy_pass http://127.0.0.1:4080;" in tuned
    assert "proxy_http_version" not in tuned and "Connection" not in tuned
    assert "keepalive" not in nginx["http_blocks"]("[::1]:4080", dict(TUNING, keepalive=0))
    assert "server [::1]:4080 fail_timeout=0;" in nginx["http_blocks"]("[::1]:4080", TUNING)


def test_everything_off_is_omeros_text(nginx):
    for name in ("prefix.conf", "root.conf"):
        original = text(name)
        tuned = nginx["tune"](original, False, OFF)
        assert "gzip" not in tuned and "expires" not in tuned and "keepalive" not in tuned
        assert "open_file_cache" not in tuned
        assert removed_additions(original, tuned)
    tuned = nginx["tune"](text("root.location"), True, OFF)
    assert tuned == text("root.location")


def test_one_lifetime_off(nginx):
    tuned = nginx["tune"](text("prefix.conf"), False, dict(TUNING, static_unversioned_max_age=0))
    assert blocks(tuned)["map $args $omeroweb_omero_static_max_age"][1] == "default off;"


@pytest.mark.parametrize("damage,what", [
    (lambda t: t.replace("        proxy_buffering off;\n", ""), "proxy_buffering off"),
    (lambda t: t.replace("alias ", "root "), "static location"),
    (lambda t: t.replace("@proxy_to_app_omero {", "@proxy_app_omero {"), "proxy location"),
    (lambda t: t.replace("fail_timeout=0;", "max_fails=1;"), "upstream block"),
    (lambda t: t.replace("proxy_pass http://omeroweb_omero;", "proxy_pass http://other;"), "proxy_pass"),
    (lambda t: t + t[t.index("    # weblitz"):t.index("    location @proxy")], "static location"),
])
def test_a_changed_template_fails_loudly(nginx, damage, what):
    with pytest.raises(ValueError) as info:
        nginx["tune"](damage(text("prefix.conf")), False, TUNING)
    assert what in str(info.value) and "expected exactly one" in str(info.value)


@pytest.mark.parametrize("bad", [{"gzip_level": 10}, {"keepalive": -1}, {"static_max_age": "1y"},
                                 {"keepalive": True}, {"other": 1}])
def test_bad_options_are_refused(nginx, bad):
    with pytest.raises(ValueError):
        nginx["options"](bad)


# ---------------------------------------------------------------- derive


def tuning(overrides):
    mapdata, _ = build(overrides)
    return FORMULA.derive.nginx(mapdata, FORMULA.derive.omero_properties(
        mapdata, {"num_cpus": 2}, FORMULA.schema, FORMULA.secrets)[0])


def test_derive_defaults_and_paths():
    derived = tuning({"gunicorn": {"worker_class": "sync", "threads": 4}})
    assert derived["tuning"] == TUNING | {"keepalive_timeout_ms": 1000}
    assert derived["http_file"] == "/etc/nginx/conf.d/omero-web-http.conf"
    assert derived["upstream_address"] == "127.0.0.1:4080"


@pytest.mark.parametrize("overrides,expected", [
    ({"nginx": {"gzip": False}}, {"gzip_level": 0, "gzip_static": 0}),
    ({"nginx": {"gzip_static": False}}, {"gzip_level": 6, "gzip_static": 0}),
    ({"nginx": {"gzip": 1}}, {"gzip_level": 1}),
    ({"nginx": {"upstream_keepalive": 0}}, {"keepalive": 0}),
    ({"nginx": {"open_file_cache": 0}}, {"open_file_cache": 0}),
    ({"nginx": {"open_file_cache": 50}}, {"open_file_cache": 50}),
    # gunicorn's sync worker with one thread closes every connection
    ({"gunicorn": {"worker_class": "sync", "threads": 1}}, {"keepalive": 0}),
    ({"gunicorn": {"worker_class": "gevent", "threads": 1}}, {"keepalive": 16}),
    ({"gunicorn": {"threads": 4, "extra_args": "--keep-alive 5 --log-level=INFO"}},
     {"keepalive": 16, "keepalive_timeout_ms": 2500}),
    ({"gunicorn": {"threads": 4, "extra_args": "--keep-alive=0"}}, {"keepalive": 0}),
    ({"nginx": {"static_max_age": 0, "static_unversioned_max_age": 600}},
     {"static_max_age": 0, "static_unversioned_max_age": 600}),
])
def test_derive_follows_pillar(overrides, expected):
    overrides.setdefault("gunicorn", {}).setdefault("threads", 4)
    got = tuning(overrides)["tuning"]
    assert {key: got[key] for key in expected} == expected


def test_derive_ipv6_upstream():
    assert tuning({"gunicorn": {"host": "::1", "port": 4090}})["upstream_address"] == "[::1]:4090"


@pytest.mark.parametrize("key,value,message", [
    ("gzip", 10, "false, true, or a compression level 1-9"),
    ("gzip", "yes", "false, true, or a compression level 1-9"),
    ("static_max_age", -1, "an integer >= 0 (seconds)"),
    ("static_unversioned_max_age", "1d", "an integer >= 0 (seconds)"),
    ("upstream_keepalive", 5000, "an integer 0-1024"),
    ("gzip_static", "yes", "true or false"),
    ("precompress_script", "/tmp/x", "a file of the formula's own"),
    ("precompress_script", "/usr/local/bin/a b", "an absolute, normalised path"),
])
def test_schema_refuses_bad_values(key, value, message):
    mapdata, pillar = build({"nginx": {key: value}})
    problems = FORMULA.validate.errors(mapdata, pillar, FORMULA.schema)
    assert any("omero_web:nginx:%s:" % key in p and message in p for p in problems), problems


# ---------------------------------------------------------------- the states


class FakeFileManaged:
    def __init__(self):
        self.calls = []

    def __call__(self, name, **kwargs):
        self.calls.append(dict(kwargs, name=name))
        old = pathlib.Path(name).read_text() if pathlib.Path(name).exists() else None
        if old == kwargs["contents"]:
            return {"name": name, "result": True, "changes": {}, "comment": "unchanged"}
        pathlib.Path(name).write_text(kwargs["contents"])
        return {"name": name, "result": True, "changes": {"diff": "..."}, "comment": "written"}


class RealTextOmero:
    """``omero web config nginx[-location]`` answering with the real 5.33.2 text."""

    def __init__(self):
        self.calls = []
        self.text = text("prefix.conf")

    def __call__(self, cmd, **kwargs):
        self.calls.append(cmd)
        if cmd[1:3] == ["web", "config"]:
            body = text("prefix.location") if cmd[3] == "nginx-location" else self.text
            return {"retcode": 0, "stdout": body, "stderr": ""}
        return {"retcode": 1, "stdout": "", "stderr": "not expected: %s" % cmd}


@pytest.fixture
def real_text():
    return RealTextOmero()


@pytest.fixture
def file_managed():
    return FakeFileManaged()


@pytest.fixture
def configure_loader_modules(real_text, venv, omerodir, file_managed, utils):
    install_dist(venv, "omero-web", "5.33.2")
    opts = {"test": False}
    pillar = {"omero_web": {"user": USER, "omerodir": str(omerodir), "venv": str(venv)}}
    salt_funcs = {"cmd.run_all": real_text}
    for func in ("config_get_all", "paths", "version", "web_config_nginx"):
        salt_funcs["omero." + func] = getattr(FORMULA.omero, func)
    return {
        FORMULA.omero: {"__salt__": salt_funcs, "__pillar__": pillar, "__context__": {},
                        "__opts__": opts, "__utils__": utils},
        FORMULA.omero_state: {"__salt__": salt_funcs, "__opts__": opts, "__context__": {},
                              "__states__": {"omero_web.nginx_file": file_managed},
                              "__utils__": utils},
    }


def generated(calls):
    return [c for c in calls if c[1:3] == ["web", "config"]]


def test_state_tunes_and_fingerprints_the_tuning(tmp_path, real_text, file_managed):
    target = tmp_path / "omero-web.conf"
    state = FORMULA.omero_state
    ret = state.nginx_config(str(target), http=80, properties={"omero.web.prefix": "/omero"},
                             tuning=TUNING)
    assert ret["result"] is True and ret["changes"], ret
    content = target.read_text()
    assert "keepalive 16;" in content and "expires $omeroweb_omero_static_max_age;" in content
    # the fingerprint covers what was tuned: the same inputs run no omero
    ret = state.nginx_config(str(target), http=80, properties={"omero.web.prefix": "/omero"},
                             tuning=TUNING)
    assert ret["changes"] == {} and "omero not run" in ret["comment"]
    assert len(generated(real_text.calls)) == 1
    # another tuning regenerates
    ret = state.nginx_config(str(target), http=80, properties={"omero.web.prefix": "/omero"},
                             tuning=dict(TUNING, gzip_level=0))
    assert ret["changes"] and "gzip" not in target.read_text()
    assert len(generated(real_text.calls)) == 2


def test_state_fails_on_a_changed_template_and_writes_nothing(tmp_path, real_text, file_managed):
    real_text.text = text("prefix.conf").replace("        proxy_buffering off;\n", "")
    target = tmp_path / "omero-web.conf"
    ret = FORMULA.omero_state.nginx_config(str(target), http=80, tuning=TUNING)
    assert ret["result"] is False
    assert "cannot be tuned, nothing was written" in ret["comment"]
    assert "proxy_buffering off" in ret["comment"] and "5.33.2" in ret["comment"]
    assert not target.exists() and not file_managed.calls


def test_http_config_state(tmp_path, file_managed):
    target = tmp_path / "omero-web-http.conf"
    ret = FORMULA.omero_state.nginx_http_config(str(target), "127.0.0.1:4080", tuning=TUNING)
    assert ret["result"] is True and ret["changes"]
    found = blocks(target.read_text())
    assert "upstream omeroweb_formula" in found and "map $args $omeroweb_formula_static_max_age" in found
    ret = FORMULA.omero_state.nginx_http_config(str(target), "127.0.0.1:4080", tuning=TUNING)
    assert ret["changes"] == {}
    for bad in ("127.0.0.1:4080;\nserver evil", "127.0.0.1", "host:port"):
        ret = FORMULA.omero_state.nginx_http_config(str(target), bad, tuning=TUNING)
        assert ret["result"] is False and "expected host:port" in ret["comment"]


def test_the_data_is_omeros_template():
    """The fixtures are the 5.33.2 template's text (research.md A2), as the CLI filled it in."""
    for name in ("prefix.conf", "root.conf"):
        body = text(name)
        assert re.search(r"^upstream omeroweb\w* \{$", body, re.M)
        assert "proxy_buffering off;" in body and "sendfile on;" in body
