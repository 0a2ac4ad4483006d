"""
Formula logic for omero-web-formula: validate the ``omero_web`` pillar and
derive the ``omero.web.*`` properties, appended list values and pip packages
from it.

Pure Python, no subprocess: ``map.jinja`` calls it at render time on every
apply.

.. code-block:: jinja

    {%- import_yaml "omero_web/parameters/defaults.yaml" as defaults %}
    {%- set pillar = salt["pillar.get"]("omero_web", {}) %}
    {#- mapdata: the parameters/ layers, then pillar lookup, then pillar #}
    {%- do salt["omero_web.validate"](mapdata, pillar=pillar,
                                      known_keys=defaults["values"]) %}
    {%- do mapdata.update({"derived": salt["omero_web.derive"](mapdata, grains)}) %}
"""

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from salt.exceptions import SaltInvocationError

try:  # Salt depends on packaging
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion
except ImportError:  # pragma: no cover
    SpecifierSet = None
    InvalidSpecifier = InvalidVersion = ValueError

__virtualname__ = "omero_web"

ROOT = "omero_web"

WORKER_CLASSES = ("sync", "gevent")
SESSION_BACKENDS = ("file", "redis")
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: Where Redis listens when a redis:// URL names no port (and what the
#: distributions' redis.conf says).
DEFAULT_REDIS_PORT = 6379

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

NGINX_EXTRA = "omero.web.nginx_server_extra_config"

#: Properties that only the formula's structured pillar keys set: derive()
#: unsets each one the current pillar does not use.
OWNED_PROPERTIES = (
    "omero.web.prefix",
    "omero.web.static_url",
    "omero.web.caches",
    "omero.web.session_engine",
    "omero.web.wsgi_threads",
    "omero.web.wsgi_worker_connections",
    "omero.web.wsgi_args",
    "omero.web.cors_origin_allow_all",
    "omero.web.cors_origin_whitelist",
    "omero.web.secure",
    "omero.web.session_cookie_secure",
    "omero.web.csrf_cookie_secure",
    "omero.web.csrf_trusted_origins",
    NGINX_EXTRA,
)

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
    if not isinstance(mapdata, Mapping):
        return {}
    value = mapdata.get(name)
    return value if isinstance(value, Mapping) else {}


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


def _holds_url_password(value):
    """Whether a property value holds a URL with a password (e.g. caches)."""
    if isinstance(value, str):
        return "@" in value and "://" in value and _url_has_password(value)
    if isinstance(value, Mapping):
        return any(_holds_url_password(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_url_password(item) for item in value)
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


def _local_redis_listen(url):
    """
    Where a local Redis must listen for ``url``: ``(port, socket, tls)``.

    ``redis://`` and ``rediss://``: the URL's port (Redis's default 6379 when
    it names none), no socket; ``unix://``: no port, the socket's path. Call
    it only for a local URL (:py:func:`_is_local_redis`).
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme == "unix":
            return None, unquote(parts.path) or None, False
        return parts.port or DEFAULT_REDIS_PORT, None, scheme == "rediss"
    except ValueError:  # validate() reports a bad port
        return None, None, False


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
    if not text:
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
    version = _version_spec((mapdata or {}).get("version"))
    spec = _join_specifiers(version, pip.get("omero_web_cap", ""))
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
    if not isinstance(apps, (list, tuple)):
        return []
    return [app for app in apps if isinstance(app, Mapping)]


def _tls_enabled(mapdata):
    nginx = _section(mapdata, "nginx")
    tls = _section(nginx, "tls")
    return bool(
        nginx.get("enabled")
        and not nginx.get("location_only")
        and tls.get("cert")
        and tls.get("key")
    )


def _tls_origins(mapdata):
    """``https://<server name>[:port]`` for each nginx server name."""
    nginx = _section(mapdata, "nginx")
    port = _section(nginx, "tls").get("port") or 443
    suffix = "" if port == 443 else ":{}".format(port)
    origins = []
    for name in str(nginx.get("server_name") or "").split():
        if name == "_" or name.startswith("~"):
            continue
        origin = "https://" + name.lstrip(".") + suffix
        if origin not in origins:
            origins.append(origin)
    return origins


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
    ``redis_port``, ``redis_socket``, ``redis_tls``
        for a local Redis (else ``None``, ``None``, ``False``): the TCP port
        it must listen on (the ``redis://``/``rediss://`` URL's port, default
        6379; ``None`` for ``unix://``), the unix socket's path (``unix://``
        only), and whether the URL is ``rediss://`` (TLS, which the formula
        leaves to the Redis configuration: it then manages no port).
    ``workers``
        the resolved number of gunicorn workers (``auto`` = 2 x cores + 1).
    ``prefix``, ``static_url``, ``location``
        the URL prefix (``""`` or e.g. ``"/omero"``), the static URL and the
        nginx location (``"/"`` or the prefix).
    ``selinux``
        whether the SELinux states apply on this host.
    ``secrets``
        the property keys whose values must never be shown.
    ``unsets``, ``removals``
        formula-owned properties this pillar does not use (to unset), and
        formula-owned middleware entries it does not use (to remove).

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
        properties["omero.web.server_list"] = [
            list(entry) if isinstance(entry, (list, tuple)) else entry for entry in server_list
        ]

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

    # HTTPS in nginx: secure cookies and the https origin trusted for CSRF
    tls = _tls_enabled(mapdata)
    if tls:
        properties["omero.web.secure"] = True
        properties["omero.web.session_cookie_secure"] = True
        properties["omero.web.csrf_cookie_secure"] = True
        origins = _tls_origins(mapdata)
        if origins:
            properties["omero.web.csrf_trusted_origins"] = origins

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

    # `server_tokens off;` in the server block `omero web config nginx`
    # generates (the TLS server comes from the formula's own template). Set as
    # a whole list, with any values config_append gives for it, unless the
    # free-form config sets the property itself.
    nginx = _section(mapdata, "nginx")
    if (
        nginx.get("enabled")
        and not nginx.get("location_only")
        and not tls
        and NGINX_EXTRA not in properties
    ):
        lines = ["server_tokens off;"]
        for line in appends.pop(NGINX_EXTRA, []):
            if line not in lines:
                lines.append(line)
        if prefix:
            # OMERO.web lives under the prefix: send / there, and answer 404
            # for every other path instead of the distribution's default page
            # (nginx's compiled-in root holds its "Welcome to nginx" page).
            lines.append("location = / { return 302 %s/; }" % prefix)
            lines.append("location / { return 404; }")
        properties[NGINX_EXTRA] = lines

    # Properties and list values the formula owns but this pillar does not
    # use (prefix removed, sessions back on files, CORS or WhiteNoise off...):
    # unset or removed, so turning a feature off in pillar turns it off in
    # OMERO.web too, without `prune`.
    unsets = sorted(key for key in OWNED_PROPERTIES if key not in properties)
    removals = {}
    declared_middleware = appends.get(MIDDLEWARE, [])
    for middleware in [WHITENOISE_MIDDLEWARE] + list(CORS_MIDDLEWARE):
        if middleware not in declared_middleware:
            removals.setdefault(MIDDLEWARE, []).append(dict(middleware))

    secrets = sorted(
        {key for key in properties if is_secret(key) or _holds_url_password(properties[key])}
        | {key for key in appends if is_secret(key) or _holds_url_password(appends[key])}
    )

    redis_local = bool(redis and _is_local_redis(redis_url))
    redis_port, redis_socket, redis_tls = (
        _local_redis_listen(redis_url) if redis_local else (None, None, False)
    )

    selinux_manage = bool(_section(mapdata, "selinux").get("manage"))
    selinux_grain = grains.get("selinux")
    selinux_enabled = isinstance(selinux_grain, Mapping) and bool(selinux_grain.get("enabled"))
    selinux = selinux_manage and grains.get("os_family") == "RedHat" and selinux_enabled

    return {
        "properties": properties,
        "appends": appends,
        "pip_packages": pip_packages,
        "redis_local": redis_local,
        "redis_port": redis_port,
        "redis_socket": redis_socket,
        "redis_tls": redis_tls,
        "workers": workers,
        "prefix": prefix,
        "static_url": static_url,
        "location": prefix or "/",
        "selinux": selinux,
        "tls": tls,
        "secrets": secrets,
        "unsets": unsets,
        "removals": removals,
    }



# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------

#: The pillar schema (pillar.example) for the typo guard: ``None`` is a leaf,
#: a dict a section whose keys are checked too.
SCHEMA = {
    "lookup": None,
    "version": None,
    "user": None,
    "group": None,
    "omerodir": None,
    "venv": None,
    "ice": {"wheel": None, "version": None, "cache_dir": None},
    "server_list": None,
    "prefix": None,
    "sessions": {
        "backend": None,
        "redis_url": None,
        "cookie_age": None,
        "expire_at_browser_close": None,
        "clear": {"enabled": None, "on_calendar": None},
    },
    "gunicorn": {
        "workers": None,
        "worker_class": None,
        "threads": None,
        "worker_connections": None,
        "max_requests": None,
        "host": None,
        "port": None,
        "extra_args": None,
    },
    "cors": {"enabled": None, "allow_all": None, "whitelist": None},
    "whitenoise": {"enabled": None},
    "nginx": {
        "enabled": None,
        "port": None,
        "server_name": None,
        "max_body_size": None,
        "location_only": None,
        "disable_default_server": None,
        "tls": {"cert": None, "key": None, "port": None, "protocols": None},
    },
    "selinux": {"manage": None},
    "service": {
        "name": None,
        "enabled": None,
        "restart": None,
        "healthcheck": {"enabled": None, "timeout": None, "script": None},
        "unit_dir": None,
    },
    "apps": None,
    "config": None,
    "config_append": None,
    "prune": None,
    "allow_non_web_config": None,
    "clean": {"pkgs": None},
}
SCHEMA_KEYS = tuple(SCHEMA)
APP_KEYS = ("name", "package", "config", "config_append")
SYSTEMD_RESTART = (
    "no",
    "always",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-abort",
    "on-watchdog",
)

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ACCOUNT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_NGINX_SIZE = re.compile(r"^[0-9]+[kKmMgG]?$")
_SERVER_NAME = re.compile(r"^[^\s;{}'\"]+(\s+[^\s;{}'\"]+)*$")
_HOST = re.compile(r"^\S+$")


def _path(*parts):
    """``omero_web:gunicorn:workers``, list items as ``omero_web:apps[0]``."""
    text = ROOT
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += "[{}]".format(part)
        else:
            text += ":" + str(part)
    return text


def _kind(value):
    """``a list``, ``a string``...: for values that may hold secrets."""
    for types, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        ((list, tuple), "a list"),
        (Mapping, "a mapping"),
        (type(None), "null"),
    ):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value, secret=False):
    """A value for a message: JSON-like, short; secrets are never shown."""
    if secret:
        return HIDDEN
    if isinstance(value, str) and "://" in value:
        value = _mask_url(value)
    try:
        text = json.dumps(value, default=str, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > 120:
        text = text[:117] + "..."
    return text


class _Checker:
    """Collects every error of one validation, one line per error."""

    def __init__(self):
        self.errors = []

    def error(self, parts, message):
        self.errors.append("{}: {}".format(_path(*parts), message))

    def got(self, parts, expected, value):
        secret = bool(parts) and is_secret(parts[-1])
        self.error(parts, "expected {}, got {}".format(expected, _show(value, secret)))

    # -- typed leaves; ``None`` (or absent) means "not set" and is accepted --

    def mapping(self, data, parts):
        """The section at ``parts`` as a mapping (``{}`` after an error)."""
        value = data.get(parts[-1]) if isinstance(data, Mapping) else None
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.got(parts, "a mapping", value)
            return {}
        return value

    def boolean(self, data, parts):
        value = data.get(parts[-1])
        if value is not None and not isinstance(value, bool):
            self.got(parts, "true or false", value)

    def integer(self, data, parts, minimum=None, maximum=None, expected=None):
        value = data.get(parts[-1])
        if value is None:
            return None
        low_ok = minimum is None or (_is_int(value) and value >= minimum)
        high_ok = maximum is None or (_is_int(value) and value <= maximum)
        if not (_is_int(value) and low_ok and high_ok):
            if expected is None:
                if minimum == 1 and maximum is None:
                    expected = "a positive integer"
                elif minimum == 0 and maximum is None:
                    expected = "an integer >= 0"
                else:
                    expected = "an integer"
            self.got(parts, expected, value)
            return None
        return value

    def port(self, data, parts):
        return self.integer(
            data, parts, 1, 65535, expected="a port number (an integer 1-65535)"
        )

    def string(self, data, parts, pattern=None, expected="a non-empty string"):
        value = data.get(parts[-1])
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.got(parts, expected, value)
            return None
        if pattern is not None and not pattern.match(value):
            self.got(parts, expected, value)
            return None
        return value

    def choice(self, data, parts, choices):
        value = data.get(parts[-1])
        if value is not None and value not in choices:
            self.got(parts, "one of " + ", ".join(choices), value)
            return None
        return value


def _known_keys(known_keys):
    """
    ``known_keys`` as a nested dict like SCHEMA: a mapping (e.g. the formula's
    ``parameters/defaults.yaml`` values) keeps its nesting, any other iterable
    names top-level keys.
    """
    if known_keys is None:
        return {}
    if isinstance(known_keys, Mapping):
        if set(known_keys) == {"values"} and isinstance(known_keys["values"], Mapping):
            known_keys = known_keys["values"]
        return known_keys
    if isinstance(known_keys, str):
        known_keys = [known_keys]
    return {key: None for key in known_keys}


def _suggest(key, candidates):
    """``did you mean 'gunicorn'?``, or the list of known keys."""
    text = str(key)
    close = difflib.get_close_matches(text, candidates, n=1, cutoff=0.6)
    if not close and len(text) >= 3:
        # abbreviations and extensions: cert/certificate, tls/tls_cert
        close = [
            c for c in candidates if len(c) >= 3 and (text.startswith(c) or c.startswith(text))
        ]
    if close:
        return "did you mean {!r}?".format(close[0])
    return "known keys: " + ", ".join(candidates)


def _guard(check, raw, schema, known, parts):
    """The typo guard: every key of ``raw`` must be in ``schema`` or ``known``."""
    schema = schema if isinstance(schema, Mapping) else {}
    known = known if isinstance(known, Mapping) else {}
    candidates = sorted({str(key) for key in list(schema) + list(known)})
    for key in raw:
        sub_parts = parts + (key,)
        if key not in schema and key not in known:
            check.error(sub_parts, "unknown key; " + _suggest(key, candidates))
            continue
        value = raw[key]
        if isinstance(value, Mapping) and isinstance(schema.get(key), Mapping):
            _guard(check, value, schema[key], known.get(key), sub_parts)


def _specifier_set(text):
    """``packaging``'s SpecifierSet of ``text`` (None when invalid)."""
    if not all(_SPECIFIER.match(clause) for clause in text.split(",")):
        return None
    if SpecifierSet is None:
        return True
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def _check_version(check, mapdata):
    value = mapdata.get("version")
    if value is None:
        return
    expected = 'a version ("5.33.2") or pip version specifiers (">=5.6.1", ">=5.6,<6")'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        check.got(("version",), expected, value)
        return
    text = _version_spec(value)
    if not text:
        return
    specifiers = _specifier_set(text)
    if specifiers is None:
        check.got(("version",), expected, value)
        return
    # an exact pin the platform's cap excludes (e.g. 5.33.2 on CentOS 7)
    cap = _section(mapdata, "pip").get("omero_web_cap")
    if not isinstance(cap, str) or not cap.strip(",").strip() or SpecifierSet is None:
        return
    cap_set = _specifier_set(_join_specifiers(cap))
    pinned = re.match(r"^==\s*([^*,]+)$", text)
    if pinned and cap_set not in (None, True):
        try:
            allowed = cap_set.contains(pinned.group(1).strip(), prereleases=True)
        except InvalidVersion:
            return
        if not allowed:
            check.got(
                ("version",),
                "a version this platform allows (pip:omero_web_cap {})".format(_show(cap)),
                value,
            )


def _check_paths(check, mapdata):
    for key in ("user", "group"):
        check.string(mapdata, (key,), _ACCOUNT, "a user/group name")
    for key in ("omerodir", "venv"):
        _absolute(check, mapdata, (key,))
    ice = check.mapping(mapdata, ("ice",))
    if ice.get("wheel") == "":
        check.error(
            ("ice", "wheel"),
            "required: no IcePy wheel is known for this platform; set it to a "
            "URL, a local path or a salt:// source",
        )
    else:
        check.string(ice, ("ice", "wheel"), expected="a URL, a local path or a salt:// source")
    check.string(ice, ("ice", "version"), expected='a version, e.g. "3.6.5"')
    _absolute(check, ice, ("ice", "cache_dir"))
    python = check.mapping(mapdata, ("python",))
    _absolute(check, python, ("python", "executable"))
    pip = check.mapping(mapdata, ("pip",))
    check.boolean(pip, ("pip", "upgrade_pip"))
    packages = check.mapping(pip, ("pip", "packages"))
    for name in packages:
        check.string(packages, ("pip", "packages", name), expected="a pip requirement")
    cap = pip.get("omero_web_cap")
    if cap is not None and (
        not isinstance(cap, str)
        or (_join_specifiers(cap) and _specifier_set(_join_specifiers(cap)) is None)
    ):
        check.got(("pip", "omero_web_cap"), 'pip version specifiers, e.g. "<5.23"', cap)


def _absolute(check, data, parts):
    value = check.string(data, parts, expected="an absolute path")
    if value is not None and not value.startswith("/"):
        check.got(parts, "an absolute path", value)


def _string_list(check, data, parts):
    value = data.get(parts[-1])
    if value is not None and not (
        isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
    ):
        check.got(parts, "a list of strings", value)


def _check_server_list(check, mapdata):
    entries = mapdata.get("server_list")
    if entries is None:
        return
    if not isinstance(entries, (list, tuple)):
        check.got(("server_list",), "a list of [host, port, name] entries", entries)
        return
    for index, entry in enumerate(entries):
        parts = ("server_list", index)
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            check.got(parts, "[host, port, name]", entry)
            continue
        host, port, name = entry
        problems = []
        if not isinstance(host, str) or not host.strip():
            problems.append("host a non-empty string")
        if not (_is_int(port) and 1 <= port <= 65535):
            problems.append("port an integer 1-65535")
        if not isinstance(name, str) or not name.strip():
            problems.append("name a non-empty string")
        if problems:
            check.got(parts, "[host, port, name] with " + ", ".join(problems), list(entry))


def _check_prefix(check, mapdata):
    value = mapdata.get("prefix")
    if value is None or value == "":
        return
    expected = (
        'an empty string or a path that starts with "/" and does not end '
        'with "/", e.g. "/omero"'
    )
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.endswith("/")
        or "//" in value
        or re.search(r"[\s?#;{}'\"]", value)
    ):
        check.got(("prefix",), expected, value)


def _check_sessions(check, mapdata):
    sessions = check.mapping(mapdata, ("sessions",))
    backend = check.choice(sessions, ("sessions", "backend"), SESSION_BACKENDS)
    if backend == "redis":
        url = sessions.get("redis_url")
        expected = "a redis://, rediss:// or unix:// URL"
        if not isinstance(url, str) or not url.strip():
            check.got(("sessions", "redis_url"), expected + " (sessions:backend is redis)", url)
        else:
            try:
                parts = urlsplit(url.strip())
                parts.port  # pylint: disable=pointless-statement
                scheme = parts.scheme.lower()
                valid = scheme in REDIS_SCHEMES and (scheme != "unix" or bool(parts.path))
            except ValueError:
                valid = False
            if not valid:
                check.got(("sessions", "redis_url"), expected, url)
    check.integer(sessions, ("sessions", "cookie_age"), 1, expected="a positive integer (seconds)")
    check.boolean(sessions, ("sessions", "expire_at_browser_close"))
    clear = check.mapping(sessions, ("sessions", "clear"))
    check.boolean(clear, ("sessions", "clear", "enabled"))
    check.string(
        clear,
        ("sessions", "clear", "on_calendar"),
        expected='a systemd OnCalendar expression, e.g. "daily"',
    )


def _check_gunicorn(check, mapdata, raw):
    gunicorn = check.mapping(mapdata, ("gunicorn",))
    raw_gunicorn = _section(raw, "gunicorn") if raw is not None else gunicorn
    workers = gunicorn.get("workers")
    if workers is not None and workers != "auto" and not (_is_int(workers) and workers >= 1):
        check.got(("gunicorn", "workers"), 'a positive integer or "auto"', workers)
    worker_class = check.choice(gunicorn, ("gunicorn", "worker_class"), WORKER_CLASSES)
    check.integer(gunicorn, ("gunicorn", "threads"), 1)
    check.integer(gunicorn, ("gunicorn", "worker_connections"), 1)
    effective = worker_class or ("sync" if gunicorn.get("worker_class") is None else None)
    if effective == "gevent" and raw_gunicorn.get("threads") is not None:
        check.error(
            ("gunicorn", "threads"),
            'only applies to sync workers, but worker_class is "gevent" '
            "(use worker_connections, or remove threads)",
        )
    if effective == "sync" and raw_gunicorn.get("worker_connections") is not None:
        check.error(
            ("gunicorn", "worker_connections"),
            'only applies to gevent workers, but worker_class is "sync" '
            "(use threads, or set worker_class: gevent)",
        )
    check.integer(gunicorn, ("gunicorn", "max_requests"), 0)
    check.string(gunicorn, ("gunicorn", "host"), _HOST, "a host name or IP address")
    check.port(gunicorn, ("gunicorn", "port"))
    extra_args = gunicorn.get("extra_args")
    if extra_args is not None and not isinstance(extra_args, str):
        if not (
            isinstance(extra_args, (list, tuple))
            and all(isinstance(arg, str) for arg in extra_args)
        ):
            check.got(("gunicorn", "extra_args"), "a string or a list of strings", extra_args)


def _check_cors(check, mapdata):
    cors = check.mapping(mapdata, ("cors",))
    check.boolean(cors, ("cors", "enabled"))
    check.boolean(cors, ("cors", "allow_all"))
    whitelist = cors.get("whitelist")
    if whitelist is not None:
        if not isinstance(whitelist, (list, tuple)) or not all(
            isinstance(origin, str) and origin.strip() for origin in whitelist
        ):
            check.got(("cors", "whitelist"), "a list of origins (strings)", whitelist)
    if cors.get("allow_all") is True and whitelist:
        check.error(
            ("cors", "allow_all"),
            "allow_all: true and a non-empty cors:whitelist exclude each other; "
            "use one of them",
        )
    whitenoise = check.mapping(mapdata, ("whitenoise",))
    check.boolean(whitenoise, ("whitenoise", "enabled"))


def _check_nginx(check, mapdata):
    nginx = check.mapping(mapdata, ("nginx",))
    for key in ("enabled", "location_only", "disable_default_server"):
        check.boolean(nginx, ("nginx", key))
    port = check.port(nginx, ("nginx", "port"))
    check.string(
        nginx,
        ("nginx", "server_name"),
        _SERVER_NAME,
        "one or more server names separated by spaces",
    )
    size = nginx.get("max_body_size")
    if size is not None and not (
        (_is_int(size) and size >= 0) or (isinstance(size, str) and _NGINX_SIZE.match(size))
    ):
        check.got(
            ("nginx", "max_body_size"), 'an nginx size: an integer >= 0 or e.g. "100m"', size
        )
    tls = check.mapping(nginx, ("nginx", "tls"))
    for key in ("cert", "key"):
        check.string(
            tls, ("nginx", "tls", key), expected="a path on the minion or a salt:// source"
        )
    tls_port = check.port(tls, ("nginx", "tls", "port"))
    check.string(tls, ("nginx", "tls", "protocols"), expected='e.g. "TLSv1.2 TLSv1.3"')
    cert, key = tls.get("cert"), tls.get("key")
    if bool(cert) != bool(key):
        missing = "key" if cert else "cert"
        check.error(
            ("nginx", "tls", missing),
            "required: nginx:tls needs both cert and key (paths on the minion "
            "or salt:// sources)",
        )
    serving = nginx.get("enabled") is True and not nginx.get("location_only")
    if cert and key and nginx.get("location_only"):
        check.error(
            ("nginx", "tls"),
            "not used with location_only: true (your own server block "
            "terminates TLS); remove tls or location_only",
        )
    gunicorn_port = _section(mapdata, "gunicorn").get("port")
    if serving:
        if port is not None and port == gunicorn_port:
            check.error(
                ("nginx", "port"),
                "expected a port other than gunicorn:port, got {} for both".format(port),
            )
        if cert and key and tls_port is not None:
            if tls_port == gunicorn_port:
                check.error(
                    ("nginx", "tls", "port"),
                    "expected a port other than gunicorn:port, got {} for both".format(
                        tls_port
                    ),
                )
            if tls_port == port:
                check.error(
                    ("nginx", "tls", "port"),
                    "expected a port other than nginx:port, got {} for both".format(tls_port),
                )


def _check_service(check, mapdata):
    selinux = check.mapping(mapdata, ("selinux",))
    check.boolean(selinux, ("selinux", "manage"))
    _string_list(check, selinux, ("selinux", "pkgs"))
    _string_list(check, selinux, ("selinux", "booleans"))
    check.string(selinux, ("selinux", "port_type"), expected="an SELinux type, e.g. http_port_t")
    service = check.mapping(mapdata, ("service",))
    check.string(service, ("service", "name"), _UNIT_NAME, "a systemd unit name")
    check.boolean(service, ("service", "enabled"))
    check.choice(service, ("service", "restart"), SYSTEMD_RESTART)
    _absolute(check, service, ("service", "unit_dir"))
    healthcheck = check.mapping(service, ("service", "healthcheck"))
    check.boolean(healthcheck, ("service", "healthcheck", "enabled"))
    check.integer(
        healthcheck,
        ("service", "healthcheck", "timeout"),
        1,
        expected="a positive integer (seconds)",
    )
    _absolute(check, healthcheck, ("service", "healthcheck", "script"))
    clean = check.mapping(mapdata, ("clean",))
    check.boolean(clean, ("clean", "pkgs"))


def _check_properties(check, config, parts, allow_non_web, appended):
    """``config`` / ``config_append`` mappings (free-form or an app's)."""
    if config is None:
        return
    if not isinstance(config, Mapping):
        check.error(
            parts, "expected a mapping of property: value, got " + _kind(config)
        )
        return
    for key, value in config.items():
        key_parts = parts + (key,)
        if not isinstance(key, str) or not key.strip():
            check.error(key_parts, "expected a property name (a string)")
            continue
        if not key.startswith("omero.web.") and not allow_non_web:
            check.error(
                key_parts,
                "expected an omero.web.* property; set "
                "omero_web:allow_non_web_config: true to manage other properties",
            )
        if appended and not isinstance(value, (list, tuple)):
            check.got(key_parts, "a list of values to append", value)


def _check_config(check, mapdata):
    check.boolean(mapdata, ("prune",))
    check.boolean(mapdata, ("allow_non_web_config",))
    allow = mapdata.get("allow_non_web_config") is True
    _check_properties(check, mapdata.get("config"), ("config",), allow, False)
    _check_properties(check, mapdata.get("config_append"), ("config_append",), allow, True)

    apps = mapdata.get("apps")
    if apps is None:
        return
    if not isinstance(apps, (list, tuple)):
        check.got(("apps",), "a list of apps ({name, package, config, config_append})", apps)
        return
    names = set()
    for index, app in enumerate(apps):
        parts = ("apps", index)
        if not isinstance(app, Mapping):
            check.got(parts, "a mapping with name and package", app)
            continue
        for key in app:
            if key not in APP_KEYS:
                check.error(parts + (key,), "unknown key; " + _suggest(key, sorted(APP_KEYS)))
        name = app.get("name")
        if name is None or name == "":
            check.error(
                parts + ("name",),
                "required: the app's python module, appended to omero.web.apps "
                "(e.g. omero_figure)",
            )
        elif not isinstance(name, str) or not _MODULE_NAME.match(name):
            check.got(parts + ("name",), "a python module name, e.g. omero_figure", name)
        elif name in names:
            check.error(parts + ("name",), "duplicate app name {}".format(_show(name)))
        else:
            names.add(name)
        package = app.get("package")
        if package is None or package == "":
            check.error(
                parts + ("package",),
                "required: the app's pip requirement (e.g. omero-figure)",
            )
        elif not isinstance(package, str) or not package.strip():
            check.got(parts + ("package",), "a pip requirement string", package)
        _check_properties(check, app.get("config"), parts + ("config",), allow, False)
        _check_properties(
            check, app.get("config_append"), parts + ("config_append",), allow, True
        )


def errors(mapdata, pillar=None, known_keys=None):
    """
    Every problem of the pillar, one message per problem (``[]`` when valid).
    Same arguments as :py:func:`validate`.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.errors "$(salt-call --out=json pillar.get omero_web)"
    """
    check = _Checker()
    if not isinstance(mapdata, Mapping):
        check.errors.append("{}: expected a mapping, got {}".format(ROOT, _kind(mapdata)))
        return check.errors
    if pillar is None:
        pillar_data = globals().get("__pillar__")
        if pillar_data is not None:
            pillar = pillar_data.get(ROOT)
    if pillar is not None:
        if isinstance(pillar, Mapping):
            _guard(check, pillar, SCHEMA, _known_keys(known_keys), ())
        else:
            check.errors.append("{}: expected a mapping, got {}".format(ROOT, _kind(pillar)))
            pillar = None

    _check_version(check, mapdata)
    _check_paths(check, mapdata)
    _check_server_list(check, mapdata)
    _check_prefix(check, mapdata)
    _check_sessions(check, mapdata)
    _check_gunicorn(check, mapdata, pillar)
    _check_cors(check, mapdata)
    _check_nginx(check, mapdata)
    _check_service(check, mapdata)
    _check_config(check, mapdata)
    return check.errors


def validate(mapdata, pillar=None, known_keys=None):
    """
    Validate the merged map of the formula; return True or raise
    ``SaltInvocationError`` with every problem, one per line, each naming the
    pillar key and what was expected, e.g.
    ``omero_web:gunicorn:workers: expected a positive integer or "auto", got -1``.
    Secret values (secret_key, *password, *pass) are never shown.

    mapdata
        the merged map (parameters/ layers + lookup + pillar).
    pillar
        the raw ``omero_web`` pillar, for the typo guard on its keys (the
        merged map also holds the platform keys). Default: ``__pillar__``'s
        ``omero_web``.
    known_keys
        keys the formula's parameters define besides the pillar.example ones:
        a list of top-level keys, or the ``parameters/defaults.yaml`` values
        mapping (then its nested keys are known too).

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.validate "$(salt-call --out=json pillar.get omero_web)"
    """
    problems = errors(mapdata, pillar=pillar, known_keys=known_keys)
    if problems:
        raise SaltInvocationError("\n".join(problems))
    return True
