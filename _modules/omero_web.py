"""
Formula logic for omero-web-formula: validate the ``omero_web`` pillar and
derive the ``omero.web.*`` properties, appended list values and pip packages
from it.

Pure Python, no subprocess: ``map.jinja`` calls it at render time on every
apply.

.. code-block:: jinja

    {%- do salt["omero_web.validate"](mapdata, pillar=salt["pillar.get"]("omero_web", {}),
                                      known_keys=defaults) %}
    {%- do mapdata.update({"derived": salt["omero_web.derive"](mapdata, grains)}) %}
"""

import difflib
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from salt.exceptions import SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero_web"

ROOT = "omero_web"

#: Top-level pillar keys of the public interface (pillar.example) plus ``lookup``.
SCHEMA_KEYS = (
    "lookup",
    "version",
    "user",
    "group",
    "omerodir",
    "venv",
    "ice",
    "server_list",
    "prefix",
    "sessions",
    "gunicorn",
    "cors",
    "whitenoise",
    "nginx",
    "selinux",
    "service",
    "apps",
    "config",
    "config_append",
    "prune",
    "allow_non_web_config",
)

WORKER_CLASSES = ("sync", "gevent")
SESSION_BACKENDS = ("file", "redis")
REDIS_SCHEMES = ("redis", "rediss", "unix")

MIDDLEWARE = "omero.web.middleware"
WHITENOISE_MIDDLEWARE = {
    "index": 0,
    "class": "whitenoise.middleware.WhiteNoiseMiddleware",
}
CORS_MIDDLEWARE = [
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
]

#: pip package names used when mapdata["pip"]["packages"] does not name them.
DEFAULT_PACKAGES = {
    "omero_web": "omero-web",
    "whitenoise": "whitenoise",
    "redis": "django-redis",
    "cors": "django-cors-headers",
    "gevent": "gevent",
}

HIDDEN = "<hidden>"

_SPECIFIER = re.compile(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9][A-Za-z0-9.*+!_-]*\s*$")
_BARE_VERSION = re.compile(r"^\s*[0-9][A-Za-z0-9.*+!_-]*\s*$")


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _section(mapdata, name):
    """A dict-valued section of the map, ``{}`` when missing or not a dict."""
    value = (mapdata or {}).get(name)
    return value if isinstance(value, dict) else {}


def _is_int(value):
    """True for real integers; ``bool`` is not an integer here."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_secret(key):
    """
    Whether the value of property ``key`` must never be shown.

    ``omero.web.secret_key`` and every key ending in ``password``/``pass``
    (case-insensitive), e.g. ``omero.web.ldap_password``.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.is_secret omero.web.secret_key
    """
    lowered = str(key).lower()
    return lowered.endswith(("secret_key", "password", "pass"))


def _url_has_password(url):
    try:
        return bool(urlsplit(str(url)).password)
    except ValueError:
        return False


def _mask_url(url):
    """The URL with any password replaced, for messages."""
    text = str(url)
    try:
        parts = urlsplit(text)
        if parts.password:
            netloc = parts.netloc.replace(":" + parts.password + "@", ":" + HIDDEN + "@", 1)
            return parts._replace(netloc=netloc).geturl()
    except ValueError:
        pass
    return text


def _redis_url(mapdata):
    return _section(mapdata, "sessions").get("redis_url")


def _redis_enabled(mapdata):
    return _section(mapdata, "sessions").get("backend") == "redis"


def _is_local_redis(url):
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if scheme == "unix":
        return True
    if host in ("localhost", "localhost.localdomain", ""):
        # redis:///0 means the default host, i.e. localhost
        return scheme in ("redis", "rediss")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve_workers(workers, grains):
    if workers is None:
        return None
    if isinstance(workers, str) and workers.strip().lower() == "auto":
        try:
            cpus = int((grains or {}).get("num_cpus") or 1)
        except (TypeError, ValueError):
            cpus = 1
        return 2 * max(cpus, 1) + 1
    if _is_int(workers):
        return workers
    if isinstance(workers, str) and workers.strip().isdigit():
        return int(workers.strip())
    return workers


def _pip_names(mapdata):
    names = dict(DEFAULT_PACKAGES)
    configured = _section(_section(mapdata, "pip"), "packages")
    names.update({k: v for k, v in configured.items() if v})
    return names


def _version_spec(version):
    """``">=5.6.1"`` stays, a bare ``"5.33.2"`` becomes ``"==5.33.2"``."""
    if version is None:
        return ""
    text = str(version).strip()
    if not text or text.lower() in ("latest", "any", "*"):
        return ""
    if _BARE_VERSION.match(text):
        return "==" + text
    return text


def _join_specifiers(*specs):
    clauses = []
    for spec in specs:
        for clause in str(spec or "").split(","):
            clause = clause.strip()
            if clause and clause not in clauses:
                clauses.append(clause)
    return ",".join(clauses)


def omero_web_requirement(mapdata):
    """
    The pip requirement for OMERO.web: package name + version + platform cap,
    e.g. ``omero-web>=5.6.1,<5.9``.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.omero_web_requirement '{"version": ">=5.6.1"}'
    """
    pip = _section(mapdata, "pip")
    name = str(_pip_names(mapdata)["omero_web"]).strip()
    spec = _join_specifiers(_version_spec((mapdata or {}).get("version")), pip.get("omero_web_cap", ""))
    return name + spec


def _add_append(appends, key, value):
    values = appends.setdefault(key, [])
    if value not in values:
        values.append(value)


def _merge_appends(appends, extra):
    for key, values in (extra or {}).items():
        if not isinstance(values, (list, tuple)):
            values = [values]
        for value in values:
            _add_append(appends, key, value)


def _apps(mapdata):
    apps = (mapdata or {}).get("apps") or []
    return [app for app in apps if isinstance(app, dict)]


# --------------------------------------------------------------------------
# derive
# --------------------------------------------------------------------------


def derive(mapdata, grains=None):
    """
    Derive from the merged map (``mapdata``) what the states apply.

    Returns a dict with:

    ``properties``
        ``{property: value}`` for ``omero config set`` (python values).
    ``appends``
        ``{property: [values]}`` for ``omero config append --set``.
    ``pip_packages``
        ordered list of pip requirement strings for the venv.
    ``redis_local``
        whether a local Redis must be installed and started.
    ``workers``
        the resolved number of gunicorn workers (``auto`` = 2 x cores + 1).
    ``prefix``, ``static_url``, ``location``
        the URL prefix (``""`` or e.g. ``"/omero"``), the static URL and the
        nginx location (``"/"`` or the prefix).
    ``selinux``
        whether the SELinux states apply on this host.
    ``secrets``
        the property keys whose values must never be shown.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.derive "$(salt-call --out=json pillar.get omero_web)"
    """
    if grains is None:
        grains = globals().get("__grains__", {})
    mapdata = mapdata or {}
    grains = grains or {}

    properties = {}
    appends = {}
    pip_packages = [omero_web_requirement(mapdata)]
    names = _pip_names(mapdata)

    def add_package(requirement):
        if requirement and requirement not in pip_packages:
            pip_packages.append(requirement)

    # server_list
    server_list = mapdata.get("server_list")
    if server_list:
        properties["omero.web.server_list"] = [list(entry) for entry in server_list]

    # prefix
    prefix = str(mapdata.get("prefix") or "").strip()
    static_url = prefix + "/static/"
    if prefix:
        properties["omero.web.prefix"] = prefix
        properties["omero.web.static_url"] = static_url

    # sessions
    sessions = _section(mapdata, "sessions")
    redis_url = sessions.get("redis_url")
    redis = sessions.get("backend") == "redis"
    if redis:
        properties["omero.web.caches"] = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
            }
        }
        properties["omero.web.session_engine"] = "django.contrib.sessions.backends.cache"
    if sessions.get("cookie_age") is not None:
        properties["omero.web.session_cookie_age"] = sessions["cookie_age"]
    if sessions.get("expire_at_browser_close") is not None:
        properties["omero.web.session_expire_at_browser_close"] = sessions[
            "expire_at_browser_close"
        ]

    # gunicorn
    gunicorn = _section(mapdata, "gunicorn")
    workers = _resolve_workers(gunicorn.get("workers"), grains)
    if workers is not None:
        properties["omero.web.wsgi_workers"] = workers
    worker_class = gunicorn.get("worker_class")
    if worker_class:
        properties["omero.web.wsgi_worker_class"] = worker_class
    effective_class = worker_class or "sync"
    if effective_class == "sync" and gunicorn.get("threads") is not None:
        properties["omero.web.wsgi_threads"] = gunicorn["threads"]
    if effective_class == "gevent" and gunicorn.get("worker_connections") is not None:
        properties["omero.web.wsgi_worker_connections"] = gunicorn["worker_connections"]
    if gunicorn.get("max_requests") is not None:
        properties["omero.web.application_server.max_requests"] = gunicorn["max_requests"]
    if gunicorn.get("host"):
        properties["omero.web.application_server.host"] = gunicorn["host"]
    if gunicorn.get("port") is not None:
        properties["omero.web.application_server.port"] = gunicorn["port"]
    extra_args = gunicorn.get("extra_args")
    if isinstance(extra_args, (list, tuple)):
        extra_args = " ".join(str(arg) for arg in extra_args)
    if extra_args:
        properties["omero.web.wsgi_args"] = extra_args

    # whitenoise (middleware index 0)
    if _section(mapdata, "whitenoise").get("enabled"):
        _add_append(appends, MIDDLEWARE, dict(WHITENOISE_MIDDLEWARE))
        add_package(names["whitenoise"])

    # cors (middleware 0.5 and 10)
    cors = _section(mapdata, "cors")
    if cors.get("enabled"):
        for middleware in CORS_MIDDLEWARE:
            _add_append(appends, MIDDLEWARE, dict(middleware))
        if cors.get("allow_all"):
            properties["omero.web.cors_origin_allow_all"] = True
        elif cors.get("whitelist"):
            properties["omero.web.cors_origin_whitelist"] = list(cors["whitelist"])

    if redis:
        add_package(names["redis"])
    if cors.get("enabled"):
        add_package(names["cors"])
    if worker_class == "gevent":
        add_package(names["gevent"])

    # apps
    for app in _apps(mapdata):
        if app.get("package"):
            add_package(str(app["package"]).strip())
        if app.get("name"):
            _add_append(appends, "omero.web.apps", app["name"])
        properties.update(app.get("config") or {})
        _merge_appends(appends, app.get("config_append"))

    # free-form, last: it wins
    properties.update(mapdata.get("config") or {})
    _merge_appends(appends, mapdata.get("config_append"))

    secrets = sorted({key for key in list(properties) + list(appends) if is_secret(key)})
    if redis and _url_has_password(redis_url):
        secrets = sorted(set(secrets) | {"omero.web.caches"})

    selinux_manage = bool(_section(mapdata, "selinux").get("manage"))
    selinux_grain = grains.get("selinux")
    selinux_enabled = isinstance(selinux_grain, dict) and bool(selinux_grain.get("enabled"))
    selinux = selinux_manage and grains.get("os_family") == "RedHat" and selinux_enabled

    return {
        "properties": properties,
        "appends": appends,
        "pip_packages": pip_packages,
        "redis_local": bool(redis and _is_local_redis(redis_url)),
        "workers": workers,
        "prefix": prefix,
        "static_url": static_url,
        "location": prefix or "/",
        "selinux": selinux,
        "secrets": secrets,
    }


def validate(mapdata, pillar=None, known_keys=None):
    """
    Validate the merged map; returns True or raises SaltInvocationError.

    (Early version: full catalogue follows.)
    """
    return True
