"""
Unit tests of derive (``_utils/omero_web_derive.py``), through the
``omero_web`` execution module and Salt's real utility loader, as map.jinja
calls it: every pillar variant, what it becomes in OMERO.web, the venv,
nginx, Redis and the health check.
"""

import copy
import json

import pytest

from unit_support import FORMULA, build

omero_web = FORMULA.omero_web

GRAINS = {
    "num_cpus": 2,
    "os_family": "Debian",
    "os": "Debian",
    "osfinger": "Debian-12",
}


@pytest.fixture
def configure_loader_modules(utils):
    return {
        omero_web: {
            "__grains__": dict(GRAINS),
            "__pillar__": {},
            "__opts__": {},
            "__utils__": utils,
        }
    }


@pytest.fixture(autouse=True)
def formula_applied_before(monkeypatch):
    """derive() as on a site the formula applied to before it kept records
    (every formula-owned property the pillar does not set is unset); tests
    of the record set their own."""
    monkeypatch.setattr(omero_web, "_recorded", lambda omerodir: None)


def mapdata(**overrides):
    """pillar.example merged over the formula's parameters (Debian 12), then ``overrides``."""
    return build(overrides)[0]


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
        "lb_member",
        "loadbalancer",
        "unsets",
        "removals",
        "secret_keys",
        "precompress",
        "pip_packages",
        "pip_removed",
        "apps_record",
        "ice",
        "workers",
        "logs",
        "prefix",
        "static_url",
        "nginx",
        "redis",
        "healthcheck",
        "selinux",
        "tmpdir",
        "unit_directives",
        "unit",
        "account_mark",
    }
    assert result["properties"] == {
        "omero.web.server_list": [["localhost", 4064, "omero"]],
        "omero.web.prefix": "/omero",
        "omero.web.static_url": "/omero/static/",
        "omero.web.caches": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                # the local Redis's password, generated once on the minion
                "LOCATION": "redis://:@@omero-web-secret:/etc/omero-web/redis-password@@"
                            "@127.0.0.1:6379/0",
            }
        },
        "omero.web.allowed_hosts": ["omero.example.org", "localhost", "127.0.0.1", "[::1]"],
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
    assert result["redis"]["local"] is True
    assert result["redis"]["directives"] == {
        "port": 6379,
        "requirepass": "@@omero-web-secret:/etc/omero-web/redis-password@@",
    }
    assert result["redis"]["password_file"] == "/etc/omero-web/redis-password"
    assert result["workers"] == 5
    assert result["prefix"] == "/omero"
    assert result["static_url"] == "/omero/static/"
    assert result["nginx"]["location"] == "/omero"
    assert result["nginx"]["conf_file"] == "/etc/nginx/conf.d/omero-web.conf"
    assert result["selinux"] is False
    assert result["nginx"]["tls"] is False
    assert result["secret_keys"] == ["omero.web.secret_key"]
    assert result["healthcheck"] == {
        "url": "http://127.0.0.1:80/omero/webclient/login/",
        "host": "omero.example.org",
    }


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
    result = derive({"version": ">=5.6.1"})
    assert result["pip_packages"] == ["omero-web>=5.6.1"]
    assert result["properties"] == {"omero.web.allowed_hosts": ["localhost", "127.0.0.1", "[::1]"]}
    assert result["appends"] == {}
    assert result["redis"]["local"] is False
    assert result["workers"] is None
    assert result["nginx"]["location"] == "/"


# --------------------------------------------------------------------------
# prefix
# --------------------------------------------------------------------------


def test_prefix_set():
    result = derive(mapdata(prefix="/omero"))
    assert result["properties"]["omero.web.prefix"] == "/omero"
    assert result["properties"]["omero.web.static_url"] == "/omero/static/"
    assert (result["prefix"], result["static_url"], result["nginx"]["location"]) == (
        "/omero",
        "/omero/static/",
        "/omero",
    )


@pytest.mark.parametrize("prefix", ["", None])
def test_prefix_unset(prefix):
    result = derive(mapdata(prefix=prefix))
    assert "omero.web.prefix" not in result["properties"]
    assert "omero.web.static_url" not in result["properties"]
    assert (result["prefix"], result["static_url"], result["nginx"]["location"]) == (
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
    assert result["redis"]["local"] is False
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
    assert result["redis"]["local"] is local
    location = result["properties"]["omero.web.caches"]["default"]["LOCATION"]
    if local and url.startswith("redis://"):
        # a local TCP Redis gets a password: the generated one
        assert location == url.replace("redis://", "redis://:@@omero-web-secret:"
                                       "/etc/omero-web/redis-password@@@")
    else:
        assert location == url
    assert result["properties"]["omero.web.caches"]["default"]["BACKEND"] == (
        "django_redis.cache.RedisCache")
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
    redis = result["redis"]
    assert redis["port"] == port
    assert redis["port"] is None or type(redis["port"]) is int
    assert redis["socket"] == socket
    assert redis["tls"] is tls


def test_no_local_redis_with_file_sessions():
    result = derive(
        mapdata(sessions={"backend": "file", "redis_url": "redis://127.0.0.1:6380/0"})
    )
    assert result["redis"]["local"] is False
    redis = result["redis"]
    assert (redis["port"], redis["socket"], redis["tls"], redis["directives"]) == (
        None, None, False, {})


def test_bad_redis_port_derives_no_port():
    """validate() rejects it; derive() alone must not raise."""
    result = derive(mapdata(sessions={"backend": "redis", "redis_url": "redis://127.0.0.1:99999/0"}))
    assert result["redis"]["port"] is None


def test_redis_url_with_password_is_masked_where_it_stands(utils):
    result = derive(
        mapdata(sessions={"backend": "redis", "redis_url": "redis://:s3cr3t@redis.example.org/0"})
    )
    # not secret by name: its URL's password is masked by the value rule
    assert "omero.web.caches" not in result["secret_keys"]
    caches = result["properties"]["omero.web.caches"]
    assert utils["omero_web_secrets.mask_value"]("omero.web.caches", caches) == {
        "default": {"BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": "redis://:********@redis.example.org/0"}}
    assert result["redis"]["local"] is False


# --------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------


def test_workers_auto_is_two_per_core_plus_one_within_4_to_12():
    result = derive(mapdata(gunicorn={"workers": "auto"}), dict(GRAINS, num_cpus=2))
    assert result["workers"] == 5
    assert result["properties"]["omero.web.wsgi_workers"] == 5
    auto = {cpus: derive(mapdata(gunicorn={"workers": "auto"}), dict(GRAINS, num_cpus=cpus))["workers"]
            for cpus in (1, 3, 5, 6, 64)}
    # the walkthrough: "OMERO.web should only need 4-12 worker processes"
    assert auto == {1: 4, 3: 7, 5: 11, 6: 12, 64: 12}


def test_workers_auto_without_num_cpus_grain():
    assert derive(mapdata(gunicorn={"workers": "auto"}), {})["workers"] == 4


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
    assert "gevent>=0.13" in result["pip_packages"]


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
    assert not [p for p in result["pip_packages"] if p.startswith("gevent")]


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


def test_package_names_come_from_the_parameters():
    # one declaration: parameters/defaults.yaml (gevent with its pin)
    data = mapdata(gunicorn={"worker_class": "gevent", "threads": None})
    assert derive(data)["pip_packages"] == [
        "omero-web>=5.6.1",
        "whitenoise",
        "django-redis",
        "django-cors-headers",
        "gevent>=0.13",
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
    assert result["nginx"]["tls"] is True
    assert result["nginx"]["tls_cert"] == "/etc/nginx/tls/omero-web.crt"
    assert result["healthcheck"]["url"] == "https://127.0.0.1:443/omero/webclient/login/"
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
    assert result["nginx"]["tls"] is False
    assert "omero.web.secure" not in result["properties"]
    assert "omero.web.csrf_trusted_origins" not in result["properties"]


# --------------------------------------------------------------------------
# behind an outer TLS proxy, anonymous access
# --------------------------------------------------------------------------

PROXY_PROPERTIES = ("omero.web.secure_proxy_ssl_header", "omero.web.session_cookie_secure",
                    "omero.web.csrf_cookie_secure", "omero.web.csrf_trusted_origins")


def test_outer_tls_proxy_trusts_its_header_and_the_https_origins():
    result = derive(mapdata(proxy={"https": True}))
    props = result["properties"]
    assert props["omero.web.secure_proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO_OMERO_WEB", "https"]
    assert props["omero.web.session_cookie_secure"] is True
    assert props["omero.web.csrf_cookie_secure"] is True
    # the nginx server names, with the scheme Django 4 needs
    assert props["omero.web.csrf_trusted_origins"] == ["https://omero.example.org"]
    # OMERO.server connections are not touched by a proxy in front
    assert "omero.web.secure" not in props
    assert not set(PROXY_PROPERTIES) & set(result["unsets"])
    assert "omero.web.use_x_forwarded_host" in result["unsets"]


def test_outer_tls_proxy_with_its_own_header_origins_and_forwarded_host():
    result = derive(mapdata(proxy={"https": True, "https_header": "X-Outer-Scheme",
                                   "trusted_origins": ["https://lb.example.org:8443"],
                                   "forwarded_host": True}))
    props = result["properties"]
    assert props["omero.web.secure_proxy_ssl_header"] == ["HTTP_X_OUTER_SCHEME", "https"]
    assert props["omero.web.csrf_trusted_origins"] == ["https://lb.example.org:8443"]
    assert props["omero.web.use_x_forwarded_host"] is True


def test_outer_proxy_origins_add_to_nginx_tls_origins():
    result = derive(mapdata(proxy={"https": True, "trusted_origins": ["https://lb.example.org"]},
                            nginx={"tls": {"cert": "/c.crt", "key": "/c.key"}}))
    assert result["properties"]["omero.web.csrf_trusted_origins"] == [
        "https://omero.example.org", "https://lb.example.org"]


def test_no_outer_proxy_unsets_what_it_set():
    result = derive(mapdata())
    assert set(PROXY_PROPERTIES) <= set(result["unsets"])
    assert not set(PROXY_PROPERTIES) & set(result["properties"])


def test_public_access_sets_the_public_properties_and_masks_the_password():
    result = derive(mapdata(public={"enabled": True, "password": "pub-s3cret"}))
    props = result["properties"]
    assert {k: v for k, v in props.items() if k.startswith("omero.web.public.")} == {
        "omero.web.public.enabled": True,
        "omero.web.public.user": "public-user",
        "omero.web.public.password": "pub-s3cret",
        "omero.web.public.url_filter": "^/(webclient|webgateway|figure)",
        "omero.web.public.server_id": 1,
        "omero.web.public.get_only": True,
        "omero.web.public.cache.enabled": False,
        "omero.web.public.cache.timeout": 86400,
    }
    assert "omero.web.public.password" in result["secret_keys"]
    # the map as _mapdata dumps it: the pillar key and the property both masked
    masked = omero_web.masked(dict(mapdata(public={"enabled": True, "password": "pub-s3cret"}),
                                   derived=result))
    assert "pub-s3cret" not in json.dumps(masked)
    assert masked["public"]["password"] == "********"


def test_public_access_off_unsets_every_public_property():
    result = derive(mapdata(public={"enabled": False}))
    assert not [k for k in result["properties"] if k.startswith("omero.web.public.")]
    assert {"omero.web.public.enabled", "omero.web.public.password",
            "omero.web.public.url_filter"} <= set(result["unsets"])


# --------------------------------------------------------------------------
# apps by name
# --------------------------------------------------------------------------


def test_apps_by_name_from_the_catalogue():
    result = derive(mapdata(apps=["figure", "iviewer", "parade"],
                            config={"omero.web.viewer.view": "omero_iviewer.views.index"}))
    appends = result["appends"]
    assert appends["omero.web.apps"] == ["omero_figure", "omero_iviewer", "omero_parade"]
    assert [link[0] for link in appends["omero.web.ui.top_links"]] == ["Figure", "Help"]
    assert [entry[0] for entry in appends["omero.web.open_with"]] == ["omero_figure", "omero_iviewer"]
    assert appends["omero.web.ui.center_plugins"] == [
        ["Parade", "omero_parade/init.js.html", "omero_parade"]]
    assert {"omero-figure==8.0.1", "omero-iviewer==0.19.1", "omero-parade==0.2.4"} <= set(
        result["pip_packages"])
    # a setting overridden in config: iviewer is the default viewer
    assert result["properties"]["omero.web.viewer.view"] == "omero_iviewer.views.index"
    # the catalogue's settings are documentation, not written
    assert "omero.web.iviewer.roi_page_size" not in result["properties"]


def test_catalogue_entries_can_be_overridden_and_the_long_form_stays():
    result = derive(mapdata(app_catalogue={"parade": {"version": "0.2.3"}},
                            apps=["parade", {"name": "omero_mine", "package": "omero-mine>=1"}]))
    assert result["appends"]["omero.web.apps"] == ["omero_parade", "omero_mine"]
    assert "omero-parade==0.2.3" in result["pip_packages"]
    assert "omero-mine>=1" in result["pip_packages"]


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


def test_a_url_password_in_any_property_is_not_a_secret_key():
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
    # secret by value, not by name: masked where the password stands
    assert result["secret_keys"] == ["omero.web.secret_key"]


def test_secret_keys_by_the_one_rule():
    result = derive(
        mapdata(
            config={
                "omero.web.secret_key": "x",
                "omero.web.public.password": "y",
                "omero.mail.pass": "z",
                "omero.web.show_forgot_password": True,
                "omero.web.public.user": "public",
            },
            allow_non_web_config=True,
        )
    )
    # known secrets only: a name ending in "pass"/"password" is not a rule
    assert result["secret_keys"] == ["omero.web.public.password", "omero.web.secret_key"]


@pytest.mark.parametrize(
    "key,value,secret",
    [
        ("omero.web.secret_key", "x", True),
        ("omero.web.public.password", "x", True),
        ("omero.web.show_forgot_password", True, False),
        ("omero.mail.pass", "x", False),
        ("omero.web.public.user", "public", False),
        ("omero.web.caches", {"default": {"LOCATION": "redis://:pw@h/0"}}, True),
        ("omero.web.caches", {"default": {"LOCATION": "redis://h/0"}}, False),
    ],
)
def test_is_secret(key, value, secret):
    assert omero_web.is_secret(key, value) is secret


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


def test_null_values_of_owned_keys_unset_their_property():
    result = derive(mapdata(gunicorn={"threads": None}, sessions={"cookie_age": None}))
    assert "omero.web.wsgi_threads" in result["unsets"]
    assert "omero.web.session_cookie_age" in result["unsets"]


# --------------------------------------------------------------------------
# the values the sls files read (computed once, here)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wheel,expected",
    [
        ("https://example.org/zeroc_ice-3.6.5-cp311.whl",
         {"wheel": "https://example.org/zeroc_ice-3.6.5-cp311.whl", "source": None}),
        ("/srv/wheels/zeroc_ice.whl", {"wheel": "/srv/wheels/zeroc_ice.whl", "source": None}),
        ("salt://wheels/zeroc_ice.whl",
         {"wheel": "/var/cache/omero-web/wheels/zeroc_ice.whl", "source": "salt://wheels/zeroc_ice.whl"}),
    ],
)
def test_icepy_wheel(wheel, expected):
    assert derive(mapdata(ice={"wheel": wheel}))["ice"] == expected


@pytest.mark.parametrize(
    "overrides,url,host",
    [
        ({}, "http://127.0.0.1:80/omero/webclient/login/", "omero.example.org"),
        ({"prefix": "", "nginx": {"server_name": "localhost"}},
         "http://127.0.0.1:80/webclient/login/", ""),
        ({"nginx": {"server_name": "_ web.example.org"}},
         "http://127.0.0.1:80/omero/webclient/login/", "web.example.org"),
        ({"nginx": {"enabled": False}}, "http://127.0.0.1:4080/omero/webclient/login/", ""),
        ({"nginx": {"location_only": True}, "gunicorn": {"host": "0.0.0.0", "port": 4090}},
         "http://127.0.0.1:4090/omero/webclient/login/", ""),
    ],
)
def test_healthcheck_target(overrides, url, host):
    assert derive(mapdata(**overrides))["healthcheck"] == {"url": url, "host": host}


def test_prefix_locations_shared_by_both_server_blocks():
    result = derive(mapdata())
    assert result["nginx"]["prefix_locations"] == result["properties"][NGINX_EXTRA][1:]


GENERATED = "@@omero-web-secret:/etc/omero-web/redis-password@@"


@pytest.mark.parametrize(
    "url,directives",
    [
        ("redis://127.0.0.1:6380/0", {"port": 6380, "requirepass": GENERATED}),
        ("redis://:pw-from-url@127.0.0.1:6380/0", {"port": 6380, "requirepass": "pw-from-url"}),
        ("unix:///run/redis/redis.sock", {"unixsocket": "/run/redis/redis.sock", "unixsocketperm": 770}),
        ("rediss://127.0.0.1:6380/0", {"requirepass": GENERATED}),
    ],
)
def test_redis_directives(url, directives):
    result = derive(mapdata(sessions={"redis_url": url}))
    assert result["redis"]["directives"] == directives


def test_redis_port_on_selinux_needs_its_type():
    grains = dict(GRAINS, os_family="RedHat", selinux={"enabled": True})
    other = derive(mapdata(sessions={"redis_url": "redis://127.0.0.1:6380/0"}), grains)
    default = derive(mapdata(), grains)
    assert other["redis"]["selinux_port"] is True
    assert default["redis"]["selinux_port"] is False


def test_pillar_redis_password_is_used_and_secret():
    result = derive(mapdata(redis={"password": "from-pillar-123"}))
    assert result["redis"]["directives"]["requirepass"] == "from-pillar-123"
    assert result["redis"]["password_file"] is None
    location = result["properties"]["omero.web.caches"]["default"]["LOCATION"]
    assert location == "redis://:from-pillar-123@127.0.0.1:6379/0"
    assert "from-pillar-123" not in str(FORMULA.secrets.mask_deep(result))


@pytest.mark.parametrize(
    "server_name,hosts",
    [
        ("omero.example.org", ["omero.example.org", "localhost", "127.0.0.1", "[::1]"]),
        ("*.example.org web", [".example.org", "web", "localhost", "127.0.0.1", "[::1]"]),
        ("_", ["*"]),
        ("~^omero\\d+$", ["*"]),
    ],
)
def test_allowed_hosts_follow_the_server_names(server_name, hosts):
    result = derive(mapdata(nginx={"server_name": server_name}))
    assert result["properties"]["omero.web.allowed_hosts"] == hosts


def test_ipv6_gunicorn_host_is_bracketed():
    result = derive(mapdata(gunicorn={"host": "::1"}, nginx={"enabled": False}))
    assert result["properties"]["omero.web.application_server.host"] == "[::1]"
    assert result["healthcheck"]["url"] == "http://[::1]:4080/omero/webclient/login/"


def test_nginx_generator_sees_only_validated_properties():
    result = derive(mapdata())
    assert result["nginx"]["generator"] == {
        "omero.web.prefix": "/omero",
        "omero.web.static_url": "/omero/static/",
        "omero.web.application_server.host": "127.0.0.1",
        "omero.web.application_server.port": 4080,
        "omero.web.nginx_server_extra_config": result["properties"][NGINX_EXTRA],
        "omero.web.static_root": "/opt/omero/web/omero-web/var/static",
    }
    # root's nginx includes a file of root's, not one in OMERODIR
    assert result["nginx"]["location_file"] == "/etc/nginx/omero-web-location.include"


def test_unit_directives_make_omerodir_writable_under_protect_system_strict():
    lines = derive(mapdata())["unit_directives"]
    assert "ProtectSystem=strict" in lines
    assert lines[-1] == ("ReadWritePaths=/opt/omero/web/omero-web/var "
                         "/opt/omero/web/omero-web/etc/grid")
    centos = build(platform="osfinger/CentOS Linux-7.yaml", os_family="os_family/RedHat.yaml")[0]
    lines = derive(centos)["unit_directives"]
    assert "ProtectSystem=full" in lines and not any(l.startswith("ReadWritePaths") for l in lines)


# --------------------------------------------------------------------------
# apps the pillar no longer lists (issue 11)
# --------------------------------------------------------------------------

FIGURE_LINK = ["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}]
PREVIOUS_APPS = {
    "omero_figure": {"package": "omero-figure", "config": [],
                     "config_append": {"omero.web.ui.top_links": [FIGURE_LINK]}},
    "omero_iviewer": {"package": "omero-iviewer", "config": ["omero.web.viewer.view", "omero.web.page_size"],
                      "config_append": {}},
}


def forgotten(monkeypatch, previous, **overrides):
    """derive() with ``previous`` as the minion's record of the last apply's apps."""
    record = None if previous is None else {"properties": [], "apps": previous}
    monkeypatch.setattr(omero_web, "_recorded", lambda omerodir: record)
    return derive(mapdata(**overrides))


def test_a_removed_app_loses_its_entry_and_settings_but_keeps_its_package(monkeypatch):
    result = forgotten(monkeypatch, PREVIOUS_APPS, apps=[], config={"omero.web.page_size": 150})
    assert result["removals"]["omero.web.apps"] == ["omero_figure", "omero_iviewer"]
    assert FIGURE_LINK in result["removals"]["omero.web.ui.top_links"]
    # still set by the free-form config: not unset
    assert "omero.web.viewer.view" in result["unsets"] and "omero.web.page_size" not in result["unsets"]
    assert result["pip_removed"] == []


def test_prune_removes_a_removed_apps_package_unless_still_required(monkeypatch):
    result = forgotten(monkeypatch, PREVIOUS_APPS, apps=[], prune=True,
                       config_append={"omero.web.ui.top_links": [FIGURE_LINK]},
                       pip={"packages": {"whitenoise": "omero-iviewer"}})
    # omero-iviewer is still required (here as the whitenoise requirement)
    assert result["pip_removed"] == ["omero-figure"]
    # the link is still appended by the free-form config: not removed
    assert "omero.web.ui.top_links" not in result["removals"]
    # no app left: prune unsets the list in this run (not one run later)
    assert "omero.web.apps" in result["unsets"] and "omero.web.apps" not in result["removals"]


def test_apps_still_listed_or_no_record_change_nothing(monkeypatch):
    kept = forgotten(monkeypatch, {"omero_figure": PREVIOUS_APPS["omero_figure"]})
    assert "omero.web.apps" not in kept["removals"] and kept["pip_removed"] == []
    assert kept["apps_record"]["data"]["apps"]["omero_figure"]["package"] == "omero-figure"
    nothing = forgotten(monkeypatch, None)
    assert "omero.web.apps" not in nothing["removals"] and nothing["pip_removed"] == []


def test_a_site_taken_over_keeps_what_was_set_by_hand(monkeypatch):
    """No record and no mark (a hand-made site): formula-owned properties the
    pillar does not set stay; with a record, those the formula set are unset."""
    overrides = {"gunicorn": {"extra_args": ""}, "prefix": ""}
    monkeypatch.setattr(omero_web, "_recorded", lambda omerodir: {})
    assert derive(mapdata(**overrides))["unsets"] == []
    monkeypatch.setattr(omero_web, "_recorded", lambda omerodir: {"properties": ["omero.web.wsgi_args"]})
    assert derive(mapdata(**overrides))["unsets"] == ["omero.web.wsgi_args"]
    monkeypatch.setattr(omero_web, "_recorded", lambda omerodir: None)
    assert {"omero.web.wsgi_args", "omero.web.prefix"} <= set(derive(mapdata(**overrides))["unsets"])


# --------------------------------------------------------------------------
# the load balancer: members from the pillar and the mine (issue 14)
# --------------------------------------------------------------------------

MINE = {
    "web-b": {"address": "127.0.0.1", "port": 8102, "prefix": "/omero"},
    "web-a": {"address": "127.0.0.1", "port": 8101, "prefix": "/omero"},
}


@pytest.fixture
def mine(monkeypatch):
    """mine.get answering with ``records`` (what the web nodes published)."""
    asked = []

    def use(records):
        def get(target, fun, tgt_type="glob"):
            asked.append((target, fun, tgt_type))
            return copy.deepcopy(records)
        monkeypatch.setitem(omero_web.__salt__, "mine.get", get)
        omero_web.__context__.clear()
        return asked
    return use


def test_loadbalancer_members_from_the_mine_by_minion_id(mine):
    asked = mine(MINE)
    data = mapdata(loadbalancer={"mine_target": "web-*", "drain": ["web-b"],
                                 "members": [{"name": "extra", "address": "10.0.0.9", "port": 80}]})
    balancer = derive(data)["loadbalancer"]
    assert asked == [("web-*", "omero_web.lb_member", "glob")]
    assert balancer["servers"] == [
        {"name": "extra", "address": "10.0.0.9", "port": 80, "down": False},
        {"name": "web-a", "address": "127.0.0.1", "port": 8101, "down": False},
        {"name": "web-b", "address": "127.0.0.1", "port": 8102, "down": True},
    ]
    assert balancer["problem"] is None
    derive(data)
    assert len(asked) == 1, "the mine is asked once per run"


@pytest.mark.parametrize("records, expected", [
    ({"web-a": {"address": "127.0.0.1; include /x", "port": 80, "prefix": ""}},
     "the mine's omero_web.lb_member of 'web-a': address: expected an IP address or a host name"),
    ({"web-a": {"address": "127.0.0.1", "port": "80 backup", "prefix": ""}},
     "of 'web-a': port: expected a port number"),
    ({"web a;": {"address": "127.0.0.1", "port": 80, "prefix": ""}}, "of 'web a;': name: expected a name"),
    ({"web-a": {"address": "127.0.0.1", "port": 80, "prefix": "/a b"}}, "of 'web-a': prefix: expected"),
    ({"web-a": "omero_web.lb_member is not available"}, "of 'web-a': expected a mapping"),
])
def test_mine_records_are_validated(mine, records, expected):
    from salt.exceptions import SaltInvocationError  # pylint: disable=import-outside-toplevel
    mine(records)
    with pytest.raises(SaltInvocationError) as info:
        derive(mapdata(loadbalancer={"mine_target": "web-*"}))
    assert "omero_web:loadbalancer:mine_target: " in str(info.value)
    assert expected in str(info.value), str(info.value)


@pytest.mark.parametrize("balancer, records, expected", [
    ({"mine_target": "web-*"}, {}, "no web node"),
    ({"mine_target": "web-*", "drain": ["web-c"]}, MINE, "loadbalancer:drain names no web node: web-c"),
    ({"mine_target": "web-*", "drain": ["web-a", "web-b"]}, MINE, "drains every web node"),
    ({"mine_target": "web-*"}, dict(MINE, **{"web-c": {"address": "10.0.0.3", "port": 80, "prefix": ""}}),
     "different prefixes: , /omero"),
])
def test_loadbalancer_problems(mine, balancer, records, expected):
    mine(records)
    assert expected in derive(mapdata(loadbalancer=balancer))["loadbalancer"]["problem"]


def test_lb_member_address():
    grains = dict(GRAINS, fqdn_ip4=["127.0.1.1"], ipv4=["127.0.0.1", "10.1.2.3"])
    assert derive(mapdata(), grains)["lb_member"] == {"address": "10.1.2.3", "port": 80, "prefix": "/omero"}
    published = mapdata(loadbalancer={"publish_address": "127.0.0.1"}, nginx={"port": 8101})
    assert derive(published, grains)["lb_member"] == {"address": "127.0.0.1", "port": 8101, "prefix": "/omero"}
