"""
The bad-pillar catalogue (issue 6) against ``omero_web.validate``: each case
fails with a message that names the full pillar key path and says what was
expected; every error is reported at once; secrets are never shown.

The map is built as map.jinja builds it: the formula's parameters/ layers
(defaults.yaml + Debian 12), then the pillar, merged with Salt's own
``dictupdate.merge`` (strategy smart, lists replaced).
"""

import glob
import pathlib

import pytest
from salt.exceptions import SaltInvocationError

from unit_support import (FORMULA, PARAMETERS, build, deep_update, defaults, omero_web_dunders,
                          salt_merge)

omero_web = FORMULA.omero_web
SECRET = "change-me-to-a-long-random-string"
MASK = "********"


def check(overrides=None):
    mapdata, pillar = build(overrides)
    return omero_web.validate(mapdata, pillar=pillar)


def failure(overrides):
    with pytest.raises(SaltInvocationError) as info:
        check(overrides)
    message = str(info.value)
    assert SECRET not in message
    return message


@pytest.fixture
def configure_loader_modules(utils):
    return {omero_web: omero_web_dunders(utils)}


# --------------------------------------------------------------------------
# valid pillars
# --------------------------------------------------------------------------


def test_pillar_example_is_valid():
    assert check() is True


@pytest.mark.parametrize(
    "platform",
    sorted(
        str(pathlib.Path(path).relative_to(PARAMETERS))
        for path in glob.glob(str(PARAMETERS / "osfinger" / "*.yaml"))
    ),
)
def test_pillar_example_is_valid_on_every_platform(platform):
    family = "os_family/RedHat.yaml" if "Linux" in platform else "os_family/Debian.yaml"
    mapdata, pillar = build(platform=platform, os_family=family)
    if mapdata["ice"]["wheel"] == "":
        # no published wheel for this platform: validation asks for one...
        with pytest.raises(SaltInvocationError, match="omero_web:ice:wheel: required"):
            omero_web.validate(mapdata, pillar=pillar)
        # ... and a built one is all it needs
        mapdata, pillar = build({"ice": {"wheel": "/srv/wheels/zeroc_ice-3.6.5-built.whl"}},
                                platform=platform, os_family=family)
    assert omero_web.validate(mapdata, pillar=pillar) is True


def test_defaults_alone_are_valid_but_for_the_wheel():
    # defaults.yaml leaves the IcePy wheel to the platform layers
    base = defaults()
    assert omero_web.errors(base, pillar={}) == [
        "omero_web:ice:wheel: required: no IcePy wheel is known for this platform; "
        "set it to a URL, a local path or a salt:// source"
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"prefix": ""},
        {"prefix": "/omero/web"},
        {"gunicorn": {"workers": 1}},
        {"gunicorn": {"workers": "auto"}},
        {"gunicorn": {"worker_class": "gevent", "threads": None, "worker_connections": 1000}},
        {"sessions": {"backend": "file", "redis_url": "not checked when unused"}},
        {"sessions": {"redis_url": "rediss://:pw@redis.example.org:6380/0"}},
        {"sessions": {"redis_url": "unix:///run/redis/redis.sock?db=0"}},
        {"cors": {"allow_all": True, "whitelist": []}},
        {"cors": {"enabled": False}},
        {"nginx": {"enabled": False, "port": 4080}},
        {"nginx": {"location_only": True, "port": 4080}},
        {"nginx": {"max_body_size": "100m"}},
        {"nginx": {"tls": {"cert": "salt://c.crt", "key": "salt://c.key", "port": 8443}}},
        {"config": {"omero.server.foo": 1}, "allow_non_web_config": True},
        {"apps": []},
        {"apps": ["figure", "iviewer", "parade", "mapr", "fpbioimage", "autotag", "tagsearch"]},
        {"apps": ["iviewer", {"name": "omero_figure", "package": "omero-figure==7.4.1"}],
         "config": {"omero.web.viewer.view": "omero_iviewer.views.index"}},
        {"apps": ["figure"], "version": "5.29.3"},
        {"server_list": [["omero1.example.org", 4064, "omero1"], ["omero2", 14064, "two"]]},
        {"version": "5.33.2"},
        {"version": ">=5.6,<6"},
        {"lookup": {"nginx": {"user": "www-data"}}},
        {"public": {"enabled": True, "server_id": 1, "url_filter": "^/webclient/(?!logout)"}},
        {"public": {"enabled": False, "user": None, "password": None}},
        {"proxy": {"https": True}},
        {"proxy": {"https": True, "trusted_origins": ["https://omero.example.org",
                                                       "https://*.example.org:8443"]}},
        {"proxy": {"https": True, "https_header": "X-Forwarded-Proto"}, "nginx": {"enabled": False}},
    ],
)
def test_valid_variants(overrides):
    assert check(overrides) is True


# --------------------------------------------------------------------------
# the catalogue: (overrides, key path, what the message says)
# --------------------------------------------------------------------------

CATALOGUE = [
    # workers not a positive integer nor "auto" (bool is not an int)
    ({"gunicorn": {"workers": -1}}, "omero_web:gunicorn:workers",
     'expected a positive integer or "auto", got -1'),
    ({"gunicorn": {"workers": 0}}, "omero_web:gunicorn:workers", "got 0"),
    ({"gunicorn": {"workers": "many"}}, "omero_web:gunicorn:workers", 'got "many"'),
    ({"gunicorn": {"workers": True}}, "omero_web:gunicorn:workers", "got true"),
    ({"gunicorn": {"workers": 2.5}}, "omero_web:gunicorn:workers", "got 2.5"),
    # unknown worker_class
    ({"gunicorn": {"worker_class": "eventlet"}}, "omero_web:gunicorn:worker_class",
     'expected one of sync, gevent, got "eventlet"'),
    # threads with gevent / worker_connections with sync
    ({"gunicorn": {"worker_class": "gevent", "threads": 4}}, "omero_web:gunicorn:threads",
     "only applies to sync workers"),
    ({"gunicorn": {"worker_class": "sync", "worker_connections": 1000}},
     "omero_web:gunicorn:worker_connections", "only applies to gevent workers"),
    ({"gunicorn": {"threads": 0}}, "omero_web:gunicorn:threads", "expected a positive integer"),
    # session backend / redis url
    ({"sessions": {"backend": "memcached"}}, "omero_web:sessions:backend",
     'expected one of file, redis, got "memcached"'),
    ({"sessions": {"redis_url": "http://127.0.0.1:6379/0"}}, "omero_web:sessions:redis_url",
     "expected a redis://, rediss:// or unix:// URL"),
    ({"sessions": {"redis_url": "127.0.0.1:6379"}}, "omero_web:sessions:redis_url",
     "expected a redis://, rediss:// or unix:// URL"),
    ({"sessions": {"redis_url": "redis://127.0.0.1:port/0"}}, "omero_web:sessions:redis_url",
     "expected a redis://"),
    ({"sessions": {"redis_url": None}}, "omero_web:sessions:redis_url",
     "sessions:backend is redis"),
    ({"sessions": {"cookie_age": "1 day"}}, "omero_web:sessions:cookie_age",
     "expected a positive integer (seconds)"),
    # prefix
    ({"prefix": "omero"}, "omero_web:prefix", 'starts with "/"'),
    ({"prefix": "/omero/"}, "omero_web:prefix", 'does not end with "/"'),
    ({"prefix": "/"}, "omero_web:prefix", 'got "/"'),
    ({"prefix": "/my omero"}, "omero_web:prefix", "got"),
    # ports
    ({"nginx": {"port": 70000}}, "omero_web:nginx:port",
     "expected a port number (an integer 1-65535), got 70000"),
    ({"nginx": {"port": 0}}, "omero_web:nginx:port", "got 0"),
    ({"nginx": {"port": "80"}}, "omero_web:nginx:port", 'got "80"'),
    ({"nginx": {"port": 4080}}, "omero_web:nginx:port", "other than gunicorn:port"),
    ({"gunicorn": {"port": 80}}, "omero_web:nginx:port", "other than gunicorn:port"),
    ({"gunicorn": {"port": 65536}}, "omero_web:gunicorn:port", "got 65536"),
    ({"gunicorn": {"port": True}}, "omero_web:gunicorn:port", "got true"),
    # CORS
    ({"cors": {"allow_all": True}}, "omero_web:cors:allow_all", "exclude each other"),
    ({"cors": {"whitelist": "https://a.example.org"}}, "omero_web:cors:whitelist",
     "expected a list of origins"),
    # server_list
    ({"server_list": [["localhost", "4064"]]}, "omero_web:server_list[0]",
     "expected [host, port, name]"),
    ({"server_list": [["localhost", "4064", "omero"]]}, "omero_web:server_list[0]",
     "port an integer 1-65535"),
    ({"server_list": [["localhost", 4064, "omero"], [None, 4064, "x"]]},
     "omero_web:server_list[1]", "host an IP address or a host name"),
    ({"server_list": [["localhost", 4064, 7]]}, "omero_web:server_list[0]",
     "name a non-empty string"),
    ({"server_list": "localhost:4064"}, "omero_web:server_list",
     "expected a list of [host, port, name] entries"),
    # config outside omero.web.*
    ({"config": {"omero.db.name": "x"}}, "omero_web:config:omero.db.name",
     "allow_non_web_config: true"),
    ({"config_append": {"omero.client.ui.tree.type_order": ["x"]}},
     "omero_web:config_append:omero.client.ui.tree.type_order", "expected an omero.web.* property"),
    ({"apps": [{"name": "a", "package": "a", "config": {"omero.server.x": 1}}]},
     "omero_web:apps[0]:config:omero.server.x", "expected an omero.web.* property"),
    ({"config": {"omero.db.name": "x"}, "allow_non_web_config": "yes"},
     "omero_web:allow_non_web_config", 'expected true or false, got "yes"'),
    ({"config": ["omero.web.secret_key", SECRET]}, "omero_web:config",
     "expected a mapping of property: value, got a list"),
    ({"config_append": {"omero.web.ui.top_links": "Help"}},
     "omero_web:config_append:omero.web.ui.top_links", "expected a list of values"),
    # apps
    ({"apps": [{"name": "omero_figure"}]}, "omero_web:apps[0]:package", "required"),
    ({"apps": [{"package": "omero-figure"}]}, "omero_web:apps[0]:name", "required"),
    ({"apps": [{"name": "omero-figure", "package": "omero-figure"}]}, "omero_web:apps[0]:name",
     "expected a python module name"),
    ({"apps": [{"name": "a", "package": "a"}, {"name": "a", "package": "b"}]},
     "omero_web:apps[1]:name", "duplicate"),
    ({"apps": ["omero-figure"]}, "omero_web:apps[0]", "unknown app \"omero-figure\"; did you mean 'figure'?"),
    ({"apps": [7]}, "omero_web:apps[0]", "expected a catalogue name or a mapping with name and package"),
    ({"apps": [{"name": "a", "packages": "a"}]}, "omero_web:apps[0]:packages",
     "did you mean 'package'?"),
    ({"apps": {"name": "a"}}, "omero_web:apps", "expected a list of apps"),
    ({"apps": ["figures"]}, "omero_web:apps[0]", "unknown app \"figures\"; did you mean 'figure'?"),
    ({"apps": ["figure", {"name": "omero_figure", "package": "omero-figure"}]},
     "omero_web:apps[1]:name", "duplicate app name"),
    ({"apps": ["iviewer"], "version": "5.29.3"}, "omero_web:apps[0]",
     'iviewer 0.19.1 needs omero-web>=5.33.0, but omero_web:version is "5.29.3"'),
    ({"lookup": {"app_catalogue": {"iviewer": {"package": "omero-iviewer; rm -rf /"}}}},
     "omero_web:app_catalogue:iviewer:package", "expected a pip package name"),
    ({"app_catalogue": {"x": {"name": "omero_x", "package": "omero-x", "omero_web": "new"}}},
     "omero_web:app_catalogue:x:omero_web", "pip version specifiers"),
    ({"app_catalogue": {"x": {"name": "omero_x", "package": "omero-x", "urls": "/x/"}}},
     "omero_web:app_catalogue:x:urls", "did you mean 'url'?"),
    # typo guard
    ({"gunicron": {"workers": 2}}, "omero_web:gunicron", "unknown key; did you mean 'gunicorn'?"),
    ({"sesions": {"backend": "file"}}, "omero_web:sesions", "did you mean 'sessions'?"),
    ({"gunicorn": {"worker": 2}}, "omero_web:gunicorn:worker", "did you mean 'workers'?"),
    ({"nginx": {"tls": {"certificate": "/c"}}}, "omero_web:nginx:tls:certificate",
     "did you mean 'cert'?"),
    ({"zzz": 1}, "omero_web:zzz", "unknown key; known keys: "),
    # TLS
    ({"nginx": {"tls": {"cert": "salt://c.crt"}}}, "omero_web:nginx:tls:key",
     "needs both cert and key"),
    ({"nginx": {"tls": {"key": "salt://c.key"}}}, "omero_web:nginx:tls:cert",
     "needs both cert and key"),
    ({"nginx": {"tls": {"cert": "/c", "key": "/k", "port": 4080}}}, "omero_web:nginx:tls:port",
     "other than gunicorn:port"),
    ({"nginx": {"tls": {"cert": "/c", "key": "/k", "port": 80}}}, "omero_web:nginx:tls:port",
     "other than nginx:port"),
    ({"nginx": {"location_only": True, "tls": {"cert": "/c", "key": "/k"}}},
     "omero_web:nginx:tls", "not used with location_only"),
    # types of booleans and integers
    ({"whitenoise": {"enabled": "true"}}, "omero_web:whitenoise:enabled",
     'expected true or false, got "true"'),
    ({"cors": {"enabled": 1}}, "omero_web:cors:enabled", "expected true or false, got 1"),
    ({"sessions": {"expire_at_browser_close": "False"}},
     "omero_web:sessions:expire_at_browser_close", "expected true or false"),
    ({"sessions": {"clear": {"enabled": "daily"}}}, "omero_web:sessions:clear:enabled",
     "expected true or false"),
    ({"nginx": {"enabled": "on"}}, "omero_web:nginx:enabled", "expected true or false"),
    ({"selinux": {"manage": None, "booleans": "httpd_enable_homedirs"}},
     "omero_web:selinux:booleans", "expected a list of names"),
    ({"service": {"healthcheck": {"timeout": -5}}}, "omero_web:service:healthcheck:timeout",
     "expected a positive integer (seconds), got -5"),
    ({"service": {"restart": "sometimes"}}, "omero_web:service:restart",
     "expected one of no, always"),
    ({"prune": "no"}, "omero_web:prune", "expected true or false"),
    ({"gunicorn": {"max_requests": -1}}, "omero_web:gunicorn:max_requests",
     "expected an integer >= 0, got -1"),
    ({"nginx": {"max_body_size": "lots"}}, "omero_web:nginx:max_body_size", "an nginx size"),
    ({"nginx": {"server_name": "a.example.org; evil"}}, "omero_web:nginx:server_name",
     "server names"),
    # public (anonymous) access
    ({"public": {"enabled": True, "user": None}}, "omero_web:public:user",
     "required: public:enabled needs user and password"),
    ({"public": {"enabled": True, "password": ""}}, "omero_web:public:password",
     "required: public:enabled needs user and password"),
    ({"public": {"enabled": True, "url_filter": "^/webclient/(unclosed"}},
     "omero_web:public:url_filter", "expected a regular expression (missing ), unterminated"),
    ({"public": {"url_filter": "[z-a]"}}, "omero_web:public:url_filter",
     "expected a regular expression (bad character range"),
    ({"public": {"enabled": True, "server_id": 2}}, "omero_web:public:server_id",
     "expected a position in server_list (1-1), got 2"),
    ({"public": {"server_id": 0}}, "omero_web:public:server_id", "expected a positive integer"),
    ({"public": {"enabled": "yes"}}, "omero_web:public:enabled", "expected true or false"),
    ({"public": {"password": 12345678}}, "omero_web:public:password",
     "expected a non-empty string, got an integer"),
    ({"public": {"cache": {"timeout": "1 day"}}}, "omero_web:public:cache:timeout",
     "expected a positive integer (seconds)"),
    ({"public": {"user": "public user"}}, "omero_web:public:user", "expected an OMERO user name"),
    ({"pubic": {"enabled": True}}, "omero_web:pubic", "did you mean 'public'?"),
    # behind an outer TLS proxy
    ({"proxy": {"https": True, "https_header": "X-Forwarded-Proto"}},
     "omero_web:proxy:https_header", "a header other than X-Forwarded-Proto"),
    ({"proxy": {"https_header": "X_Proto: https"}}, "omero_web:proxy:https_header",
     "expected an HTTP header name"),
    ({"proxy": {"trusted_origins": ["omero.example.org"]}}, "omero_web:proxy:trusted_origins",
     "a list of origins with their scheme"),
    ({"proxy": {"trusted_origins": "https://omero.example.org"}}, "omero_web:proxy:trusted_origins",
     "a list of origins with their scheme"),
    ({"proxy": {"https": "on"}}, "omero_web:proxy:https", "expected true or false"),
    ({"proxy": {"forwarded_host": 1}}, "omero_web:proxy:forwarded_host", "expected true or false"),
    # other top-level values
    ({"version": "latest please"}, "omero_web:version", "pip version specifiers"),
    ({"version": ">=5.6.1,<"}, "omero_web:version", "pip version specifiers"),
    ({"version": "=>5.6"}, "omero_web:version", "pip version specifiers"),
    ({"lookup": {"pip": {"omero_web_cap": "below 6"}}}, "omero_web:pip:omero_web_cap",
     "pip version specifiers"),
    ({"omerodir": "opt/omero"}, "omero_web:omerodir", "expected an absolute, normalised path"),
    ({"user": "omero web"}, "omero_web:user", "expected a user/group name"),
    ({"gunicorn": "4 workers"}, "omero_web:gunicorn", "expected a mapping"),
    ({"ice": {"wheel": ""}}, "omero_web:ice:wheel", "no IcePy wheel"),
]


@pytest.mark.parametrize(
    "overrides,path,text",
    CATALOGUE,
    ids=["{}-{}".format(case[1].replace("omero_web:", ""), i) for i, case in enumerate(CATALOGUE)],
)
def test_catalogue(overrides, path, text):
    message = failure(overrides)
    lines = message.splitlines()
    matching = [line for line in lines if line.startswith(path + ": ")]
    assert matching, message
    assert any(text in line for line in matching), message


def test_exact_version_above_the_platform_cap():
    centos7 = {"platform": "osfinger/CentOS Linux-7.yaml", "os_family": "os_family/RedHat.yaml"}
    mapdata, pillar = build({"version": "5.33.2"}, **centos7)
    assert mapdata["pip"]["omero_web_cap"] == "<5.23"
    with pytest.raises(SaltInvocationError) as info:
        omero_web.validate(mapdata, pillar=pillar)
    assert str(info.value).startswith(
        'omero_web:version: expected a version this platform allows (pip:omero_web_cap "'
    )
    assert str(info.value).endswith('got "5.33.2"')
    # a range is left to pip
    mapdata, pillar = build({"version": ">=5.6.1"}, **centos7)
    assert omero_web.validate(mapdata, pillar=pillar) is True


def test_message_format_matches_the_contract():
    message = failure({"gunicorn": {"workers": -1}})
    assert message == 'omero_web:gunicorn:workers: expected a positive integer or "auto", got -1'


def test_all_errors_reported_together():
    message = failure(
        {
            "gunicron": {},
            "prefix": "omero/",
            "gunicorn": {"workers": 0, "worker_class": "eventlet"},
            "sessions": {"backend": "memcached"},
            "nginx": {"port": 4080},
            "cors": {"allow_all": True},
            "server_list": [["localhost", "4064", "omero"]],
            "config": {"omero.db.name": "x"},
            "apps": [{"name": "omero_figure"}],
        }
    )
    lines = message.splitlines()
    for path in [
        "omero_web:gunicron",
        "omero_web:prefix",
        "omero_web:gunicorn:workers",
        "omero_web:gunicorn:worker_class",
        "omero_web:sessions:backend",
        "omero_web:nginx:port",
        "omero_web:cors:allow_all",
        "omero_web:server_list[0]",
        "omero_web:config:omero.db.name",
        "omero_web:apps[0]:package",
    ]:
        assert sum(line.startswith(path + ": ") for line in lines) == 1, message
    assert len(lines) == 10, message
    # one error per line, each line names its key
    assert all(line.startswith("omero_web:") for line in lines)


def test_errors_returns_the_list():
    mapdata, pillar = build({"gunicorn": {"workers": -1}, "prefix": "x"})
    assert omero_web.errors(mapdata, pillar=pillar) == [
        'omero_web:prefix: expected an empty string or a path that starts with "/" and '
        'does not end with "/", e.g. "/omero", got "x"',
        'omero_web:gunicorn:workers: expected a positive integer or "auto", got -1',
    ]


# --------------------------------------------------------------------------
# secrets are never shown
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"config_append": {"omero.web.secret_key": "s3cr3t-value"}},
        {"config_append": {"omero.web.public.password": "s3cr3t-value"}},
        {"config_append": {"omero.mail.pass": "s3cr3t-value"}},
        {"config_append": {"omero.web.anything": "s3cr3t-value"}},
        {"config": {"omero.ldap.password": "s3cr3t-value"}},
        {
            "apps": [
                {
                    "name": "a",
                    "package": "a",
                    "config_append": {"omero.web.public.password": "s3cr3t-value"},
                }
            ]
        },
        {"sessions": {"redis_url": "http://:s3cr3t-value@redis.example.org:6379/0"}},
        {"sessions": {"redis_url": "ftp://user:s3cr3t-value@redis.example.org/0"}},
    ],
)
def test_secret_values_never_in_messages(overrides):
    message = failure(overrides)
    assert "s3cr3t-value" not in message
    assert SECRET not in message


@pytest.mark.parametrize("password", ["s3cret\nline", ["s3cret-list"], {"s3cret": 1}, 7654321])
def test_public_password_never_in_messages(password):
    message = failure({"public": {"enabled": True, "password": password}})
    assert "omero_web:public:password: " in message
    assert "s3cret" not in message and "7654321" not in message


def test_root_not_a_mapping_hides_the_value():
    with pytest.raises(SaltInvocationError) as info:
        omero_web.validate(build()[0], pillar=["omero.web.secret_key", SECRET])
    assert str(info.value) == "omero_web: expected a mapping, got a list"


def test_masked_redis_url_still_shows_where():
    message = failure({"sessions": {"redis_url": "http://:s3cr3t-value@redis.example.org:6379/0"}})
    assert "redis.example.org" in message
    assert MASK in message


def test_free_form_values_are_never_shown():
    # whatever the key: a free-form value may be a secret
    message = failure({"config_append": {"omero.web.secret_key": SECRET,
                                         "omero.web.anything": "s3cr3t-value"}})
    assert (
        "omero_web:config_append:omero.web.secret_key: "
        "expected a list of values to append, got a string"
    ) in message
    assert "s3cr3t-value" not in message


# --------------------------------------------------------------------------
# the typo guard: on the raw pillar, from the one schema
# --------------------------------------------------------------------------


def test_platform_keys_are_known_to_the_schema():
    # the parameters' keys (python, pip, redis, nginx:conf_dir...) are in the
    # schema: a pillar may set them, no extra list of known keys is needed
    mapdata, pillar = build({"python": {"executable": "/usr/bin/python3.12"},
                             "nginx": {"conf_dir": "/etc/nginx/sites-enabled"}})
    assert omero_web.validate(mapdata, pillar=pillar) is True


def test_typo_guard_looks_at_the_raw_pillar_not_the_map():
    mapdata, pillar = build()
    pillar["nginx"]["conf_dri"] = "/etc/nginx/x"
    with pytest.raises(SaltInvocationError, match=r"omero_web:nginx:conf_dri: unknown key; did you mean 'conf_dir'"):
        omero_web.validate(mapdata, pillar=pillar)


def test_typo_guard_covers_lookup():
    mapdata, pillar = build({"lookup": {"nginx": {"usr": "www-data"}}})
    with pytest.raises(SaltInvocationError, match=r"omero_web:nginx:usr: unknown key; did you mean 'user'"):
        omero_web.validate(mapdata, pillar=pillar)


def test_every_defaults_key_accepted_in_pillar():
    base = defaults()
    pillar = salt_merge(base, {"ice": {"wheel": "/srv/wheels/zeroc_ice.whl"}})
    assert omero_web.validate(salt_merge(base, pillar), pillar=pillar) is True


def test_pillar_defaults_to_dunder_pillar(configure_loader_modules):
    mapdata, _ = build()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(omero_web, "__pillar__", {"omero_web": {"gunicron": {}}}, raising=False)
        with pytest.raises(SaltInvocationError, match=r"omero_web:gunicron: unknown key"):
            omero_web.validate(mapdata)


def test_threads_from_the_parameters_do_not_clash_with_gevent():
    # a `threads` default in the parameters layer is not the user's doing
    mapdata, pillar = build({"gunicorn": {"worker_class": "gevent", "worker_connections": 500}})
    pillar["gunicorn"].pop("threads", None)
    mapdata["gunicorn"]["threads"] = 4
    assert omero_web.validate(mapdata, pillar=pillar) is True
    # without the raw pillar, the map itself is judged
    # without the raw pillar (none given, none in __pillar__), the map is judged
    with pytest.raises(SaltInvocationError, match=r"omero_web:gunicorn:threads"):
        omero_web.validate(mapdata, pillar=None)


def test_not_a_mapping():
    with pytest.raises(SaltInvocationError, match=r"^omero_web: expected a mapping"):
        omero_web.validate(["gunicorn"])
    mapdata, _ = build()
    with pytest.raises(SaltInvocationError, match=r"^omero_web: expected a mapping"):
        omero_web.validate(mapdata, pillar="gunicorn")


# --------------------------------------------------------------------------
# nodes sharing an external session store share one secret key (issue 14)
# --------------------------------------------------------------------------

EXTERNAL = {"sessions": {"backend": "redis", "redis_external": True,
                         "redis_url": "redis://127.0.0.1:6390/0"}}


@pytest.mark.parametrize("config, expected", [
    ({"omero.web.secret_key": SECRET}, "is pillar.example's placeholder"),
    ({"omero.web.secret_key": " "}, "required: sessions:redis_external"),
])
def test_external_session_store_needs_a_real_shared_secret_key(config, expected):
    message = failure(deep_update(dict(EXTERNAL), {"config": config}))
    assert "omero_web:config:omero.web.secret_key" in message and expected in message, message


def test_external_session_store_without_any_secret_key():
    mapdata, pillar = build(EXTERNAL)
    del mapdata["config"]["omero.web.secret_key"]
    with pytest.raises(SaltInvocationError) as info:
        omero_web.validate(mapdata, pillar=pillar)
    assert "omero_web:config:omero.web.secret_key: required" in str(info.value)


def test_external_session_store_with_its_own_secret_key_is_valid():
    assert check(deep_update(dict(EXTERNAL), {"config": {"omero.web.secret_key": "k" * 50}})) is True
    # a local Redis or file sessions: one node, the placeholder is its business
    assert check({"sessions": {"redis_external": False}}) is True


# --------------------------------------------------------------------------
# a site of several nodes behind the load balancer (issue 14)
# --------------------------------------------------------------------------

TWO_MEMBERS = {"loadbalancer": {"members": [{"name": "web1", "address": "10.0.0.11", "port": 80},
                                            {"name": "web2", "address": "10.0.0.12", "port": 80}]}}


@pytest.mark.parametrize("site", [TWO_MEMBERS, {"loadbalancer": {"mine_target": "web*"}}],
                         ids=["two members", "members from the mine"])
@pytest.mark.parametrize("config, expected", [
    ({"omero.web.secret_key": SECRET}, "is pillar.example's placeholder"),
    ({"omero.web.secret_key": ""}, "required: loadbalancer:"),
])
def test_multi_node_site_needs_a_real_shared_secret_key(site, config, expected):
    message = failure(deep_update(dict(site), {"config": config}))
    assert "omero_web:config:omero.web.secret_key" in message and expected in message, message


def test_one_member_or_none_is_a_single_node():
    one = {"loadbalancer": {"members": TWO_MEMBERS["loadbalancer"]["members"][:1]}}
    assert check(one) is True  # pillar.example's placeholder key is this node's business
    assert check(deep_update(dict(TWO_MEMBERS), {"config": {"omero.web.secret_key": "k" * 50}})) is True


@pytest.mark.parametrize("members, expected", [
    ("web1", "loadbalancer:members: expected a list of {name, address, port}"),
    ([{"name": "web1", "address": "10.0.0.1", "port": 80, "weight": 2}],
     "loadbalancer:members[0]:weight: unknown key"),
    ([{"name": "web 1;", "address": "10.0.0.1", "port": 80}],
     "loadbalancer:members[0]:name: expected a name"),
    ([{"name": "web1", "address": "10.0.0.1; include /etc/shadow", "port": 80}],
     "loadbalancer:members[0]:address: expected an IP address or a host name"),
    ([{"name": "web1", "address": "10.0.0.1", "port": "80 backup"}],
     "loadbalancer:members[0]:port: expected a port number"),
    ([{"name": "web1", "address": "10.0.0.1", "port": 80},
      {"name": "web1", "address": "10.0.0.2", "port": 80}], "loadbalancer:members[1]:name: 'web1' is listed twice"),
])
def test_bad_members(members, expected):
    message = failure({"loadbalancer": {"members": members},
                       "config": {"omero.web.secret_key": "k" * 50}})
    assert "omero_web:" + expected in message, message


@pytest.mark.parametrize("balancer, expected", [
    ({"drain": ["web3"]}, "loadbalancer:drain: names no member of loadbalancer:members: web3"),
    ({"drain": ["web1", "web2"]}, "loadbalancer:drain: drains every member"),
    ({"drain": ["web1 down"]}, "loadbalancer:drain: expected a list of member names"),
    ({"mine_target": "web*; rm"}, "loadbalancer:mine_target: expected a Salt target"),
    ({"mine_target_type": "regex"}, "loadbalancer:mine_target_type: expected one of"),
    ({"max_fails": -1}, "loadbalancer:max_fails: expected an integer >= 0"),
    ({"fail_timeout": 0}, "loadbalancer:fail_timeout: expected a positive integer"),
    ({"server_name": "a;b"}, "loadbalancer:server_name: expected one or more server names"),
    ({"publish_address": "10.0.0.1 backup"}, "loadbalancer:publish_address: expected an IP address"),
])
def test_bad_loadbalancer(balancer, expected):
    message = failure(deep_update(deep_update({}, TWO_MEMBERS),
                                  {"loadbalancer": balancer, "config": {"omero.web.secret_key": "k" * 50}}))
    assert "omero_web:" + expected in message, message


def test_drained_member_from_the_mine_is_checked_when_the_balancer_renders():
    # the mine adds members the pillar cannot list: no error here
    assert check({"loadbalancer": {"mine_target": "web*", "drain": ["web9"]},
                  "config": {"omero.web.secret_key": "k" * 50}}) is True
