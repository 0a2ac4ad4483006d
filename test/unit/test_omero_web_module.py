"""
Unit tests of the ``omero_web`` execution module: ``derive()``.

The module is loaded from ``_modules/`` with its dunders injected by
pytest-salt-factories (``configure_loader_modules``). Validation is covered
in ``test_validation_catalogue.py``.
"""

import copy
import importlib.util
import json
import pathlib
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


def _load_module():
    if "omero_web" in sys.modules:
        return sys.modules["omero_web"]
    spec = importlib.util.spec_from_file_location("omero_web", REPO / "_modules" / "omero_web.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["omero_web"] = module
    spec.loader.exec_module(module)
    return module


omero_web = _load_module()

GRAINS = {
    "num_cpus": 2,
    "os_family": "Debian",
    "os": "Debian",
    "osfinger": "Debian-12",
}

#: platform parameters the formula's parameters/ layers add to the map
PLATFORM = {
    "pip": {
        "packages": {
            "omero_web": "omero-web",
            "whitenoise": "whitenoise",
            "redis": "django-redis",
            "cors": "django-cors-headers",
            "gevent": "gevent",
        },
        "omero_web_cap": "",
    },
}


@pytest.fixture
def configure_loader_modules():
    return {omero_web: {"__grains__": dict(GRAINS), "__pillar__": {}, "__opts__": {}}}


def merge(base, extra):
    """Deep merge like map.jinja: dicts merge, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def example_pillar():
    with open(REPO / "pillar.example", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["omero_web"]


def mapdata(**overrides):
    """pillar.example merged over the platform parameters, then ``overrides``."""
    return merge(merge(PLATFORM, example_pillar()), overrides)


def derive(data, grains=None):
    return omero_web.derive(data, dict(GRAINS) if grains is None else grains)


# --------------------------------------------------------------------------
# pillar.example, as a whole
# --------------------------------------------------------------------------


def test_pillar_example_derives_the_walkthrough():
    result = derive(mapdata())
    assert set(result) == {
        "properties",
        "appends",
        "pip_packages",
        "redis_local",
        "redis_port",
        "redis_socket",
        "redis_tls",
        "workers",
        "prefix",
        "static_url",
        "location",
        "selinux",
        "tls",
        "secrets",
        "unsets",
        "removals",
    }
    assert result["properties"] == {
        "omero.web.server_list": [["localhost", 4064, "omero"]],
        "omero.web.prefix": "/omero",
        "omero.web.static_url": "/omero/static/",
        "omero.web.caches": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/0",
            }
        },
        "omero.web.session_engine": "django.contrib.sessions.backends.cache",
        "omero.web.session_cookie_age": 86400,
        "omero.web.session_expire_at_browser_close": True,
        "omero.web.wsgi_workers": 5,
        "omero.web.wsgi_worker_class": "sync",
        "omero.web.wsgi_threads": 4,
        "omero.web.application_server.max_requests": 0,
        "omero.web.application_server.host": "127.0.0.1",
        "omero.web.application_server.port": 4080,
        "omero.web.wsgi_args": "--log-level=INFO",
        "omero.web.cors_origin_whitelist": ["https://hostname.example.com"],
        "omero.web.secret_key": "change-me-to-a-long-random-string",
        "omero.web.login_redirect": {
            "redirect": ["webindex"],
            "viewname": "load_template",
            "args": ["userdata"],
            "query_string": "experimenter=-1",
        },
        "omero.web.nginx_server_extra_config": [
            "server_tokens off;",
            "location = / { return 302 /omero/; }",
            "location / { return 404; }",
        ],
    }
    assert result["appends"] == {
        "omero.web.middleware": [
            {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"},
            {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
            {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
        ],
        "omero.web.apps": ["omero_figure"],
        "omero.web.ui.top_links": [
            ["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}],
            ["Help", "https://help.openmicroscopy.org/", {"title": "Help", "target": "new"}],
        ],
    }
    assert result["pip_packages"] == [
        "omero-web>=5.6.1",
        "whitenoise",
        "django-redis",
        "django-cors-headers",
        "omero-figure",
    ]
    assert result["redis_local"] is True
    assert result["workers"] == 5
    assert result["prefix"] == "/omero"
    assert result["static_url"] == "/omero/static/"
    assert result["location"] == "/omero"
    assert result["selinux"] is False
    assert result["tls"] is False
    assert result["secrets"] == ["omero.web.secret_key"]


def test_result_is_json_serialisable_and_input_untouched():
    data = mapdata()
    before = copy.deepcopy(data)
    result = derive(data)
    assert json.loads(json.dumps(result)) == result
    assert data == before


def test_grains_default_to_dunder_grains():
    # __grains__ (num_cpus 2) injected by configure_loader_modules
    assert omero_web.derive(mapdata())["workers"] == 5


def test_minimal_map_has_no_optional_packages():
    result = derive({"pip": PLATFORM["pip"], "version": ">=5.6.1"})
    assert result["pip_packages"] == ["omero-web>=5.6.1"]
    assert result["properties"] == {}
    assert result["appends"] == {}
    assert result["redis_local"] is False
    assert result["workers"] is None
    assert result["location"] == "/"


# --------------------------------------------------------------------------
# prefix
# --------------------------------------------------------------------------


def test_prefix_set():
    result = derive(mapdata(prefix="/omero"))
    assert result["properties"]["omero.web.prefix"] == "/omero"
    assert result["properties"]["omero.web.static_url"] == "/omero/static/"
    assert (result["prefix"], result["static_url"], result["location"]) == (
        "/omero",
        "/omero/static/",
        "/omero",
    )


@pytest.mark.parametrize("prefix", ["", None])
def test_prefix_unset(prefix):
    result = derive(mapdata(prefix=prefix))
    assert "omero.web.prefix" not in result["properties"]
    assert "omero.web.static_url" not in result["properties"]
    assert (result["prefix"], result["static_url"], result["location"]) == (
        "",
        "/static/",
        "/",
    )


# --------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------


def test_sessions_file_backend():
    result = derive(mapdata(sessions={"backend": "file"}))
    assert "omero.web.caches" not in result["properties"]
    assert "omero.web.session_engine" not in result["properties"]
    assert "django-redis" not in result["pip_packages"]
    assert result["redis_local"] is False
    # cookie settings apply to any backend
    assert result["properties"]["omero.web.session_cookie_age"] == 86400
    assert result["properties"]["omero.web.session_expire_at_browser_close"] is True


def test_sessions_cookie_settings():
    result = derive(mapdata(sessions={"cookie_age": 3600, "expire_at_browser_close": False}))
    assert result["properties"]["omero.web.session_cookie_age"] == 3600
    assert result["properties"]["omero.web.session_expire_at_browser_close"] is False


@pytest.mark.parametrize(
    "url,local",
    [
        ("redis://127.0.0.1:6379/0", True),
        ("redis://localhost:6379/1", True),
        ("redis://LOCALHOST", True),
        ("redis://[::1]:6379/0", True),
        ("redis://127.0.0.2:6379/0", True),
        ("rediss://:s3cr3t@127.0.0.1:6380/0", True),
        ("unix:///run/redis/redis-server.sock?db=0", True),
        ("redis://redis.example.org:6379/0", False),
        ("rediss://10.0.0.5:6380/0", False),
        ("redis://192.168.1.10/0", False),
    ],
)
def test_redis_local_or_remote(url, local):
    result = derive(mapdata(sessions={"backend": "redis", "redis_url": url}))
    assert result["redis_local"] is local
    assert result["properties"]["omero.web.caches"] == {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}
    }
    assert (
        result["properties"]["omero.web.session_engine"]
        == "django.contrib.sessions.backends.cache"
    )
    assert "django-redis" in result["pip_packages"]


@pytest.mark.parametrize(
    "url,port,socket,tls",
    [
        # pillar.example: Redis's own port
        ("redis://127.0.0.1:6379/0", 6379, None, False),
        # a local URL without a port: Redis's default
        ("redis://localhost/1", 6379, None, False),
        ("redis:///0", 6379, None, False),
        ("redis://127.0.0.1:6380/0", 6380, None, False),
        ("redis://[::1]:7000/0", 7000, None, False),
        ("redis://:s3cr3t@localhost:6381", 6381, None, False),
        ("rediss://:s3cr3t@127.0.0.1:6380/0", 6380, None, True),
        ("rediss://localhost/0", 6379, None, True),
        ("unix:///run/redis/redis-server.sock?db=0", None, "/run/redis/redis-server.sock", False),
        ("unix://:s3cr3t@/run/redis/redis.sock", None, "/run/redis/redis.sock", False),
        ("unix:///run/redis/my%20redis.sock", None, "/run/redis/my redis.sock", False),
        # remote: not this host's Redis
        ("redis://redis.example.org:6380/0", None, None, False),
        ("rediss://10.0.0.5:6380/0", None, None, False),
    ],
)
def test_where_a_local_redis_listens(url, port, socket, tls):
    result = derive(mapdata(sessions={"backend": "redis", "redis_url": url}))
    assert result["redis_port"] == port
    assert result["redis_port"] is None or type(result["redis_port"]) is int
    assert result["redis_socket"] == socket
    assert result["redis_tls"] is tls


def test_no_local_redis_with_file_sessions():
    result = derive(
        mapdata(sessions={"backend": "file", "redis_url": "redis://127.0.0.1:6380/0"})
    )
    assert result["redis_local"] is False
    assert (result["redis_port"], result["redis_socket"], result["redis_tls"]) == (
        None, None, False)


def test_bad_redis_port_derives_no_port():
    """validate() rejects it; derive() alone must not raise."""
    result = derive(mapdata(sessions={"backend": "redis", "redis_url": "redis://127.0.0.1:99999/0"}))
    assert result["redis_port"] is None


def test_redis_url_with_password_makes_caches_secret():
    result = derive(
        mapdata(sessions={"backend": "redis", "redis_url": "redis://:s3cr3t@redis.example.org/0"})
    )
    assert "omero.web.caches" in result["secrets"]
    assert result["redis_local"] is False


# --------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------


def test_workers_auto_is_two_per_core_plus_one():
    result = derive(mapdata(gunicorn={"workers": "auto"}), dict(GRAINS, num_cpus=2))
    assert result["workers"] == 5
    assert result["properties"]["omero.web.wsgi_workers"] == 5
    assert derive(mapdata(gunicorn={"workers": "auto"}), dict(GRAINS, num_cpus=8))["workers"] == 17


def test_workers_auto_without_num_cpus_grain():
    assert derive(mapdata(gunicorn={"workers": "auto"}), {})["workers"] == 3


def test_workers_integer():
    result = derive(mapdata(gunicorn={"workers": 7}))
    assert result["workers"] == 7
    assert result["properties"]["omero.web.wsgi_workers"] == 7


def test_gevent_workers():
    result = derive(
        mapdata(gunicorn={"worker_class": "gevent", "threads": None, "worker_connections": 1000})
    )
    props = result["properties"]
    assert props["omero.web.wsgi_worker_class"] == "gevent"
    assert props["omero.web.wsgi_worker_connections"] == 1000
    assert "omero.web.wsgi_threads" not in props
    assert "gevent" in result["pip_packages"]


def test_gevent_ignores_threads_from_defaults():
    # a default `threads` in the parameters layer must not leak into gevent
    result = derive(mapdata(gunicorn={"worker_class": "gevent", "threads": 4}))
    assert "omero.web.wsgi_threads" not in result["properties"]


def test_sync_workers():
    result = derive(
        mapdata(gunicorn={"worker_class": "sync", "threads": 8, "worker_connections": 5})
    )
    props = result["properties"]
    assert props["omero.web.wsgi_worker_class"] == "sync"
    assert props["omero.web.wsgi_threads"] == 8
    assert "omero.web.wsgi_worker_connections" not in props
    assert "gevent" not in result["pip_packages"]


def test_gunicorn_server_settings():
    result = derive(
        mapdata(
            gunicorn={
                "max_requests": 500,
                "host": "0.0.0.0",
                "port": 4090,
                "extra_args": ["--log-level=DEBUG", "--timeout=120"],
            }
        )
    )
    props = result["properties"]
    assert props["omero.web.application_server.max_requests"] == 500
    assert props["omero.web.application_server.host"] == "0.0.0.0"
    assert props["omero.web.application_server.port"] == 4090
    assert props["omero.web.wsgi_args"] == "--log-level=DEBUG --timeout=120"


def test_empty_extra_args_not_set():
    result = derive(mapdata(gunicorn={"extra_args": ""}))
    assert "omero.web.wsgi_args" not in result["properties"]


# --------------------------------------------------------------------------
# cors and whitenoise
# --------------------------------------------------------------------------

CORS_MIDDLEWARE = [
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
]
WHITENOISE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}


def test_cors_whitelist():
    result = derive(
        mapdata(cors={"enabled": True, "allow_all": False, "whitelist": ["https://a.example"]})
    )
    props = result["properties"]
    assert props["omero.web.cors_origin_whitelist"] == ["https://a.example"]
    assert "omero.web.cors_origin_allow_all" not in props
    assert result["appends"]["omero.web.middleware"][1:] == CORS_MIDDLEWARE
    assert "django-cors-headers" in result["pip_packages"]


def test_cors_allow_all():
    result = derive(mapdata(cors={"enabled": True, "allow_all": True, "whitelist": []}))
    props = result["properties"]
    assert props["omero.web.cors_origin_allow_all"] is True
    assert "omero.web.cors_origin_whitelist" not in props
    assert result["appends"]["omero.web.middleware"][1:] == CORS_MIDDLEWARE


def test_cors_off():
    result = derive(mapdata(cors={"enabled": False}))
    props = result["properties"]
    assert "omero.web.cors_origin_whitelist" not in props
    assert "omero.web.cors_origin_allow_all" not in props
    assert result["appends"]["omero.web.middleware"] == [WHITENOISE]
    assert "django-cors-headers" not in result["pip_packages"]


def test_whitenoise_off():
    result = derive(mapdata(whitenoise={"enabled": False}))
    assert WHITENOISE not in result["appends"]["omero.web.middleware"]
    assert "whitenoise" not in result["pip_packages"]


def test_whitenoise_and_cors_off_no_middleware():
    result = derive(mapdata(whitenoise={"enabled": False}, cors={"enabled": False}))
    assert "omero.web.middleware" not in result["appends"]


# --------------------------------------------------------------------------
# apps and free-form config
# --------------------------------------------------------------------------


def test_apps():
    apps = [
        {
            "name": "omero_figure",
            "package": "omero-figure",
            "config_append": {"omero.web.ui.top_links": [["Figure", "figure_index"]]},
        },
        {
            "name": "omero_iviewer",
            "package": "omero-iviewer==0.14.0",
            "config": {"omero.web.viewer.view": "omero_iviewer.views.index"},
            "config_append": {
                "omero.web.open_with": [["omero_iviewer", "omero_iviewer_index"]]
            },
        },
    ]
    result = derive(mapdata(apps=apps, config=None, config_append=None))
    assert result["pip_packages"][-2:] == ["omero-figure", "omero-iviewer==0.14.0"]
    assert result["appends"]["omero.web.apps"] == ["omero_figure", "omero_iviewer"]
    assert result["appends"]["omero.web.ui.top_links"] == [["Figure", "figure_index"]]
    assert result["appends"]["omero.web.open_with"] == [["omero_iviewer", "omero_iviewer_index"]]
    assert result["properties"]["omero.web.viewer.view"] == "omero_iviewer.views.index"


def test_no_apps():
    result = derive(mapdata(apps=[]))
    assert "omero.web.apps" not in result["appends"]
    assert "omero-figure" not in result["pip_packages"]


def test_free_form_config_wins():
    result = derive(
        mapdata(
            apps=[
                {
                    "name": "omero_iviewer",
                    "package": "omero-iviewer",
                    "config": {"omero.web.viewer.view": "from-app"},
                }
            ],
            config={
                "omero.web.viewer.view": "from-config",
                "omero.web.wsgi_workers": 12,
                "omero.web.prefix": "/custom",
            },
        )
    )
    props = result["properties"]
    assert props["omero.web.viewer.view"] == "from-config"
    assert props["omero.web.wsgi_workers"] == 12
    assert props["omero.web.prefix"] == "/custom"


def test_config_append_merges_and_dedupes():
    result = derive(
        mapdata(
            config_append={
                "omero.web.middleware": [
                    WHITENOISE,
                    {"index": 7, "class": "my.Middleware"},
                ],
                "omero.web.ui.top_links": [
                    [
                        "Figure",
                        "figure_index",
                        {"title": "Open Figure in new tab", "target": "_blank"},
                    ]
                ],
            }
        )
    )
    middleware = result["appends"]["omero.web.middleware"]
    assert middleware.count(WHITENOISE) == 1
    assert middleware[-1] == {"index": 7, "class": "my.Middleware"}
    assert len(result["appends"]["omero.web.ui.top_links"]) == 1


def test_config_append_scalar_is_one_value():
    result = derive(mapdata(config_append={"omero.web.apps": "my_app"}))
    assert result["appends"]["omero.web.apps"] == ["omero_figure", "my_app"]


# --------------------------------------------------------------------------
# pip packages
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version,cap,expected",
    [
        (">=5.6.1", "", "omero-web>=5.6.1"),
        ("5.33.2", "", "omero-web==5.33.2"),
        (">=5.6.1", ",<5.9", "omero-web>=5.6.1,<5.9"),
        (">=5.6.1", "<5.9", "omero-web>=5.6.1,<5.9"),
        ("", ",<5.9", "omero-web<5.9"),
        (None, "", "omero-web"),
        ("==5.8.1", ",<5.9", "omero-web==5.8.1,<5.9"),
        (">=5.6.1,<6", ",<5.9", "omero-web>=5.6.1,<6,<5.9"),
    ],
)
def test_omero_web_requirement(version, cap, expected):
    data = mapdata(version=version, pip={"omero_web_cap": cap})
    assert derive(data)["pip_packages"][0] == expected


def test_platform_pins_package_names():
    data = mapdata(
        gunicorn={"worker_class": "gevent", "threads": None},
        pip={
            "packages": {
                "whitenoise": "whitenoise<6",
                "redis": "django-redis<4.9",
                "cors": "django-cors-headers<3.3",
                "gevent": "gevent>=0.13",
            },
            "omero_web_cap": ",<5.9",
        },
    )
    assert derive(data)["pip_packages"] == [
        "omero-web>=5.6.1,<5.9",
        "whitenoise<6",
        "django-redis<4.9",
        "django-cors-headers<3.3",
        "gevent>=0.13",
        "omero-figure",
    ]


def test_package_names_default_without_pip_parameters():
    data = mapdata()
    del data["pip"]
    assert derive(data)["pip_packages"] == [
        "omero-web>=5.6.1",
        "whitenoise",
        "django-redis",
        "django-cors-headers",
        "omero-figure",
    ]


# --------------------------------------------------------------------------
# selinux
# --------------------------------------------------------------------------

REDHAT = dict(
    GRAINS, os_family="RedHat", os="Rocky", selinux={"enabled": True, "enforced": "Enforcing"}
)


@pytest.mark.parametrize(
    "grains,manage,expected",
    [
        (REDHAT, True, True),
        (REDHAT, False, False),
        (dict(REDHAT, selinux={"enabled": False, "enforced": "Disabled"}), True, False),
        ({k: v for k, v in REDHAT.items() if k != "selinux"}, True, False),
        (dict(GRAINS, selinux={"enabled": True}), True, False),  # Debian
        (GRAINS, True, False),
    ],
)
def test_selinux(grains, manage, expected):
    assert derive(mapdata(selinux={"manage": manage}), grains)["selinux"] is expected


# --------------------------------------------------------------------------
# TLS and secrets
# --------------------------------------------------------------------------


def test_tls_sets_secure_cookies_and_trusted_origin():
    result = derive(mapdata(nginx={"tls": {"cert": "salt://c.crt", "key": "salt://c.key"}}))
    props = result["properties"]
    assert result["tls"] is True
    assert props["omero.web.secure"] is True
    assert props["omero.web.session_cookie_secure"] is True
    assert props["omero.web.csrf_cookie_secure"] is True
    assert props["omero.web.csrf_trusted_origins"] == ["https://omero.example.org"]


def test_tls_port_in_origins():
    result = derive(
        mapdata(
            nginx={
                "server_name": "a.example.org b.example.org _",
                "tls": {"cert": "/c.crt", "key": "/c.key", "port": 8443},
            }
        )
    )
    assert result["properties"]["omero.web.csrf_trusted_origins"] == [
        "https://a.example.org:8443",
        "https://b.example.org:8443",
    ]


@pytest.mark.parametrize(
    "nginx",
    [
        {},
        {"tls": {"port": 443}},
        {"enabled": False, "tls": {"cert": "/c.crt", "key": "/c.key"}},
        {"location_only": True, "tls": {"cert": "/c.crt", "key": "/c.key"}},
    ],
)
def test_no_tls(nginx):
    result = derive(mapdata(nginx=nginx))
    assert result["tls"] is False
    assert "omero.web.secure" not in result["properties"]
    assert "omero.web.csrf_trusted_origins" not in result["properties"]


NGINX_EXTRA = "omero.web.nginx_server_extra_config"


def test_server_tokens_off_with_config_append_lines():
    result = derive(
        mapdata(config_append={NGINX_EXTRA: ["add_header Cross-Origin-Opener-Policy same-origin;"]})
    )
    assert result["properties"][NGINX_EXTRA][:2] == [
        "server_tokens off;",
        "add_header Cross-Origin-Opener-Policy same-origin;",
    ]
    assert NGINX_EXTRA not in result["appends"]


def test_prefix_sends_root_to_omero_web_and_hides_the_default_page():
    lines = derive(mapdata(prefix="/omero"))["properties"][NGINX_EXTRA]
    assert "location = / { return 302 /omero/; }" in lines
    assert "location / { return 404; }" in lines
    lines = derive(mapdata(prefix=""))["properties"][NGINX_EXTRA]
    assert lines == ["server_tokens off;"]


def test_server_tokens_config_wins():
    result = derive(mapdata(config={NGINX_EXTRA: ["gzip on;"]}))
    assert result["properties"][NGINX_EXTRA] == ["gzip on;"]


@pytest.mark.parametrize(
    "nginx",
    [
        {"enabled": False},
        {"location_only": True},
        {"tls": {"cert": "/c.crt", "key": "/c.key"}},
    ],
)
def test_no_server_tokens_without_generated_server(nginx):
    assert NGINX_EXTRA not in derive(mapdata(nginx=nginx))["properties"]


def test_any_property_with_a_url_password_is_secret():
    result = derive(
        mapdata(
            sessions={"backend": "file"},
            config={
                "omero.web.caches": {
                    "default": {"BACKEND": "x", "LOCATION": "redis://:pw@cache.example.org/1"}
                },
                "omero.web.sharing.opengraph": {"omero": "https://example.org/@home"},
            },
        )
    )
    assert "omero.web.caches" in result["secrets"]
    assert "omero.web.sharing.opengraph" not in result["secrets"]


def test_secrets_lists_secret_keys():
    result = derive(
        mapdata(
            config={
                "omero.web.secret_key": "x",
                "omero.web.public.password": "y",
                "omero.mail.pass": "z",
                "omero.web.public.user": "public",
            },
            allow_non_web_config=True,
        )
    )
    assert result["secrets"] == [
        "omero.mail.pass",
        "omero.web.public.password",
        "omero.web.secret_key",
    ]


@pytest.mark.parametrize(
    "key,secret",
    [
        ("omero.web.secret_key", True),
        ("omero.web.public.password", True),
        ("omero.mail.PASSWORD", True),
        ("omero.ldap.pass", True),
        ("omero.web.public.user", False),
        ("omero.web.passthrough", False),
    ],
)
def test_is_secret(key, secret):
    assert omero_web.is_secret(key) is secret


def test_formula_owned_properties_unused_by_the_pillar_are_unset():
    result = derive(mapdata(prefix="", sessions={"backend": "file"}, cors={"enabled": False}))
    for key in ("omero.web.prefix", "omero.web.static_url", "omero.web.caches",
                "omero.web.session_engine", "omero.web.cors_origin_whitelist",
                "omero.web.cors_origin_allow_all"):
        assert key in result["unsets"]
        assert key not in result["properties"]
    # CORS off: its middleware entries are removed, WhiteNoise's kept
    removed = result["removals"]["omero.web.middleware"]
    assert {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"} in removed
    assert all("whitenoise" not in m["class"] for m in removed)


def test_owned_properties_in_use_are_never_unset():
    result = derive(mapdata(prefix="/omero", sessions={"backend": "redis"}))
    assert not set(result["unsets"]) & set(result["properties"])
    assert "omero.web.prefix" not in result["unsets"]
