"""
What the formula's states apply, derived from the merged map (``mapdata``:
the parameters/ layers, pillar ``lookup``, pillar). ``map.jinja`` stores the
result as ``mapdata.derived``; the sls files only read it.

One function per concern; :py:func:`derive` puts them together:

* :py:func:`omero_properties`: the ``omero config set`` properties and the
  ``omero config append`` values (prefix, sessions, gunicorn, CORS,
  WhiteNoise, HTTPS cookies, apps, free-form config);
* :py:func:`ownership`: formula-owned properties and list values the pillar
  no longer uses (unset / removed);
* :py:func:`pip_packages`, :py:func:`ice`: the venv's single pip state
  and IcePy's wheel;
* :py:func:`nginx`: file paths and the blocks nginx gets;
* :py:func:`redis`: whether and where a local Redis listens;
* :py:func:`healthcheck`: the URL and Host header the check probes;
* :py:func:`selinux`: whether the SELinux states apply.

Pure code: no processes, no host access. Utility modules get no
``__utils__`` of their own: the two modules derive builds on, the schema
(``omero_web_schema``) and the secret rule (``omero_web_secrets``), are
passed in as objects with their functions as attributes.
"""

import ipaddress
import json
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MIDDLEWARE = "omero.web.middleware"
WHITENOISE_MIDDLEWARE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}
CORS_MIDDLEWARE = [
    {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"},
    {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"},
]
NGINX_EXTRA = "omero.web.nginx_server_extra_config"
#: The GECOS field of the account the formula creates: how validation and
#: clean.sls know it is the formula's own.
ACCOUNT_MARK = "OMERO.web (omero-web-formula)"
#: The first line of every file the formula writes from a template.
FILE_MARK = "Managed by Salt (omero-web-formula"
REDIS_CACHE_BACKEND = "django_redis.cache.RedisCache"
CACHE_SESSION_ENGINE = "django.contrib.sessions.backends.cache"


def _section(mapdata, *names):
    """A dict-valued section of the map, ``{}`` when missing or not a dict."""
    value = mapdata
    for name in names:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------
# OMERO.web properties
# --------------------------------------------------------------------------


#: ``workers: auto``'s bounds, the walkthrough's: "OMERO.web should only
#: need 4-12 worker processes to handle many requests per second".
AUTO_WORKERS_MIN, AUTO_WORKERS_MAX = 4, 12


def workers(mapdata, grains):
    """
    The gunicorn worker count: an integer, or ``auto`` = 2 x cores + 1 (the
    walkthrough's advice, gunicorn's rule), kept within 4-12.
    """
    value = _section(mapdata, "gunicorn").get("workers")
    if isinstance(value, str) and value.strip().lower() == "auto":
        try:
            cpus = int((grains or {}).get("num_cpus") or 1)
        except (TypeError, ValueError):
            cpus = 1
        return min(max(2 * max(cpus, 1) + 1, AUTO_WORKERS_MIN), AUTO_WORKERS_MAX)
    return value


def prefix(mapdata):
    """The URL prefix: ``""`` or e.g. ``"/omero"``."""
    return str(mapdata.get("prefix") or "").strip()


def tls_enabled(mapdata):
    """Whether the formula's nginx serves HTTPS (nginx on, not location_only, cert and key)."""
    nginx = _section(mapdata, "nginx")
    tls = _section(nginx, "tls")
    return bool(
        nginx.get("enabled") and not nginx.get("location_only") and tls.get("cert") and tls.get("key")
    )


def server_names(mapdata):
    """nginx's server names that are real host names (no ``_``, wildcards or regexes)."""
    names = []
    for name in str(_section(mapdata, "nginx").get("server_name") or "").split():
        if name == "_" or name.startswith("~") or "*" in name:
            continue
        name = name.lstrip(".")
        if name and name not in names:
            names.append(name)
    return names


def _add(appends, key, value):
    values = appends.setdefault(key, [])
    if value not in values:
        values.append(value)


def _merge_appends(appends, extra):
    for key, values in (extra or {}).items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            _add(appends, key, value)


def apps(mapdata):
    """
    The apps of the map as ``{name, package, config, config_append}``: the
    long form as it is, a catalogue name (``figure``) from ``app_catalogue``
    (its module, its package pinned to the catalogued release, what its
    README appends). Validation reports anything else.
    """
    items = mapdata.get("apps") or []
    if not isinstance(items, (list, tuple)):
        return []
    catalogue = _section(mapdata, "app_catalogue")
    resolved = []
    for app in items:
        if isinstance(app, str) and isinstance(catalogue.get(app), Mapping):
            entry = catalogue[app]
            version = entry.get("version")
            resolved.append({
                "name": entry.get("name"),
                "package": str(entry.get("package")) + ("=={}".format(version) if version else ""),
                "config_append": entry.get("config_append") or {},
            })
        elif isinstance(app, Mapping):
            resolved.append(app)
    return resolved


def _direct(mapdata, schema):
    """The keys the schema copies as they are (``sets``)."""
    properties = {}
    for parts, prop in schema.direct_properties().items():
        value = _section(mapdata, *parts[:-1]).get(parts[-1])
        if value is None or value == "":
            continue
        if prop == "omero.web.server_list":
            value = [list(e) if isinstance(e, (list, tuple)) else e for e in value]
        properties[prop] = value
    return properties


def _session_properties(mapdata, secrets):
    sessions = _section(mapdata, "sessions")
    if sessions.get("backend") != "redis":
        return {}
    return {
        "omero.web.caches": {
            "default": {"BACKEND": REDIS_CACHE_BACKEND, "LOCATION": redis_location(mapdata, secrets)}
        },
        "omero.web.session_engine": CACHE_SESSION_ENGINE,
    }


def redis_password(mapdata, secrets):
    """
    The password a local TCP Redis requires (``requirepass``): the one in
    ``sessions:redis_url``, else ``redis:password``, else a reference to the
    one the formula generates once and keeps in ``redis:password_file``.
    None for a remote Redis (its own business) and a unix socket (mode 770,
    group redis: only the OMERO.web user reaches it).
    """
    sessions = _section(mapdata, "sessions")
    url = sessions.get("redis_url")
    if sessions.get("redis_external") or not _is_local_redis(url):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() == "unix":
        return None
    if parts.password:
        return unquote(parts.password)
    section = _section(mapdata, "redis")
    if section.get("password"):
        return str(section["password"])
    return secrets.ref(str(section.get("password_file") or "/etc/omero-web/redis-password"))


def redis_location(mapdata, secrets):
    """The Redis URL OMERO.web connects to: ``sessions:redis_url`` with the local Redis's password."""
    url = _section(mapdata, "sessions").get("redis_url")
    password = redis_password(mapdata, secrets)
    if password is None or not isinstance(url, str):
        return url
    parts = urlsplit(url.strip())
    if parts.password:
        return url
    netloc = ":{}@{}".format(quote(password, safe="@:") if "@@" not in password else password,
                              parts.netloc.rsplit("@", 1)[-1])
    return urlunsplit(parts._replace(netloc=netloc))


def _gunicorn_properties(mapdata, grains):
    gunicorn = _section(mapdata, "gunicorn")
    properties = {}
    count = workers(mapdata, grains)
    if count is not None:
        properties["omero.web.wsgi_workers"] = count
    worker_class = gunicorn.get("worker_class") or "sync"
    if worker_class == "sync" and gunicorn.get("threads") is not None:
        properties["omero.web.wsgi_threads"] = gunicorn["threads"]
    if worker_class == "gevent" and gunicorn.get("worker_connections") is not None:
        properties["omero.web.wsgi_worker_connections"] = gunicorn["worker_connections"]
    host = gunicorn_host(mapdata)
    if host:
        properties["omero.web.application_server.host"] = host
    extra_args = gunicorn.get("extra_args")
    if isinstance(extra_args, (list, tuple)):
        extra_args = " ".join(str(arg) for arg in extra_args)
    if extra_args:
        properties["omero.web.wsgi_args"] = extra_args
    return properties


def gunicorn_host(mapdata):
    """
    gunicorn's bind address as OMERO.web must be told it: an IPv6 address in
    brackets (``omero web start`` binds ``<host>:<port>`` and nginx's
    upstream is ``<host>:<port>``, so ``::1`` must be ``[::1]``).
    """
    host = str(_section(mapdata, "gunicorn").get("host") or "").strip()
    try:
        if ipaddress.ip_address(host).version == 6:
            return "[{}]".format(host)
    except ValueError:
        pass
    return host


def allowed_hosts(mapdata):
    """
    Django's ALLOWED_HOSTS: nginx's server names (``*.example.org`` as
    ``.example.org``; a catch-all ``_``, a suffix wildcard or a regex allow
    every host) and loopback, which the health check uses.
    """
    hosts = []
    for name in str(_section(mapdata, "nginx").get("server_name") or "").split():
        if name == "_" or name.startswith("~") or name.endswith("*"):
            return ["*"]
        name = "." + name[2:] if name.startswith("*.") else name
        if name not in hosts:
            hosts.append(name)
    return hosts + [h for h in ("localhost", "127.0.0.1", "[::1]") if h not in hosts]


def _cors_properties(mapdata, appends):
    cors = _section(mapdata, "cors")
    if not cors.get("enabled"):
        return {}
    for middleware in CORS_MIDDLEWARE:
        _add(appends, MIDDLEWARE, dict(middleware))
    if cors.get("allow_all"):
        return {"omero.web.cors_origin_allow_all": True}
    if cors.get("whitelist"):
        return {"omero.web.cors_origin_whitelist": list(cors["whitelist"])}
    return {}


def _tls_properties(mapdata):
    """HTTPS in nginx: secure cookies and the https origins trusted for CSRF."""
    if not tls_enabled(mapdata):
        return {}
    properties = {
        "omero.web.secure": True,
        "omero.web.session_cookie_secure": True,
        "omero.web.csrf_cookie_secure": True,
    }
    port = _section(mapdata, "nginx", "tls").get("port") or 443
    suffix = "" if port == 443 else ":{}".format(port)
    origins = ["https://" + name + suffix for name in server_names(mapdata)]
    if origins:
        properties["omero.web.csrf_trusted_origins"] = origins
    return properties


#: The public user's keys and the properties they become (while enabled).
PUBLIC_PROPERTIES = (
    (("user",), "omero.web.public.user"),
    (("password",), "omero.web.public.password"),
    (("url_filter",), "omero.web.public.url_filter"),
    (("server_id",), "omero.web.public.server_id"),
    (("get_only",), "omero.web.public.get_only"),
    (("cache", "enabled"), "omero.web.public.cache.enabled"),
    (("cache", "timeout"), "omero.web.public.cache.timeout"),
)


def _public_properties(mapdata):
    """Anonymous access: the omero.web.public.* properties, only while public:enabled is true."""
    public = _section(mapdata, "public")
    if public.get("enabled") is not True:
        return {}
    properties = {"omero.web.public.enabled": True}
    for parts, prop in PUBLIC_PROPERTIES:
        value = _section(public, *parts[:-1]).get(parts[-1])
        if value is not None and value != "":
            properties[prop] = value
    return properties


#: The header an outer proxy sets (OMERO.web's own example): OMERO's nginx
#: location sets X-Forwarded-Proto to its own scheme (http behind the proxy).
PROXY_HTTPS_HEADER = "X-Forwarded-Proto-Omero-Web"


def _proxy_properties(mapdata, properties):
    """
    Behind an outer proxy that terminates HTTPS (proxy:https): Django takes
    a request as HTTPS when the proxy's header says so, cookies are Secure,
    and the CSRF check trusts the site's https origins (proxy:trusted_origins,
    else https://<each nginx server name>), added to any nginx TLS origins.
    """
    proxy = _section(mapdata, "proxy")
    added = {}
    origins = list(properties.get("omero.web.csrf_trusted_origins") or [])
    trusted = [str(o) for o in (proxy.get("trusted_origins") or [])]
    if proxy.get("https") is True:
        header = str(proxy.get("https_header") or PROXY_HTTPS_HEADER).strip()
        added.update({
            "omero.web.secure_proxy_ssl_header": ["HTTP_" + header.upper().replace("-", "_"), "https"],
            "omero.web.session_cookie_secure": True,
            "omero.web.csrf_cookie_secure": True,
        })
        trusted = trusted or ["https://" + name for name in server_names(mapdata)]
    for origin in trusted:
        if origin not in origins:
            origins.append(origin)
    if origins:
        added["omero.web.csrf_trusted_origins"] = origins
    return added


def prefix_locations(mapdata):
    """
    nginx locations for a prefixed OMERO.web: ``/`` goes to the prefix and
    every other path answers 404, instead of the distribution's default page.
    """
    path = prefix(mapdata)
    if not path:
        return []
    return ["location = / { return 302 %s/; }" % path, "location / { return 404; }"]


def _nginx_extra(mapdata, properties, appends):
    """
    ``omero.web.nginx_server_extra_config`` for the server block ``omero web
    config nginx`` generates (the TLS server comes from the formula's own
    template): ``server_tokens off;``, config_append's lines for it, the
    prefix locations; unless the free-form config sets it itself.
    """
    nginx = _section(mapdata, "nginx")
    if (
        not nginx.get("enabled")
        or nginx.get("location_only")
        or tls_enabled(mapdata)
        or NGINX_EXTRA in properties
    ):
        return {}
    lines = ["server_tokens off;"]
    for line in appends.pop(NGINX_EXTRA, []):
        if line not in lines:
            lines.append(line)
    return {NGINX_EXTRA: lines + prefix_locations(mapdata)}


def omero_properties(mapdata, grains, schema, secrets):
    """
    ``(properties, appends)``: ``{property: value}`` for ``omero config set``
    and ``{property: [values]}`` for ``omero config append --set``, in the
    order they win: structured keys, then apps, then the free-form config.
    """
    properties = _direct(mapdata, schema)
    appends = {}
    path = prefix(mapdata)
    if path:
        properties["omero.web.prefix"] = path
        properties["omero.web.static_url"] = path + "/static/"
    properties.update(_session_properties(mapdata, secrets))
    properties["omero.web.allowed_hosts"] = allowed_hosts(mapdata)
    properties.update(_gunicorn_properties(mapdata, grains))
    if _section(mapdata, "whitenoise").get("enabled"):
        _add(appends, MIDDLEWARE, dict(WHITENOISE_MIDDLEWARE))
    properties.update(_cors_properties(mapdata, appends))
    properties.update(_tls_properties(mapdata))
    properties.update(_proxy_properties(mapdata, properties))
    properties.update(_public_properties(mapdata))
    if logs(mapdata)["link"]:
        properties["omero.web.logdir"] = logs(mapdata)["dir"]
    for app in apps(mapdata):
        if app.get("name"):
            _add(appends, "omero.web.apps", app["name"])
        properties.update(app.get("config") or {})
        _merge_appends(appends, app.get("config_append"))
    # free-form, last: it wins
    properties.update(mapdata.get("config") or {})
    _merge_appends(appends, mapdata.get("config_append"))
    properties.update(_nginx_extra(mapdata, properties, appends))
    return properties, appends


def ownership(properties, appends, schema):
    """
    ``(unsets, removals)``: formula-owned properties the pillar does not set
    (prefix removed, sessions back on files, CORS off...) and formula-owned
    middleware it does not use, so that turning a feature off in pillar turns
    it off in OMERO.web too, without ``prune``.
    """
    unsets = sorted(key for key in schema.owned_properties() if key not in properties)
    declared = appends.get(MIDDLEWARE, [])
    removals = {}
    for middleware in [WHITENOISE_MIDDLEWARE] + CORS_MIDDLEWARE:
        if middleware not in declared:
            removals.setdefault(MIDDLEWARE, []).append(dict(middleware))
    return unsets, removals


def secret_keys(mapdata, properties, appends, secrets):
    """
    The properties secret by name (the one rule: known secret properties and
    pillar ``secret_keys``), whose whole values are masked. A URL password in
    any other value is masked where it stands by the same rule, the rest of
    the value shown.
    """
    extra = mapdata.get("secret_keys") or ()
    return sorted(
        {key for key in list(properties) + list(appends) if secrets.is_secret_key(key, extra)}
        | set(extra)
    )


# --------------------------------------------------------------------------
# the venv's packages
# --------------------------------------------------------------------------


def omero_web_requirement(mapdata, schema):
    """The pip requirement for OMERO.web, e.g. ``omero-web>=5.6.1,<5.23`` (platform cap)."""
    pip = _section(mapdata, "pip")
    name = str(_section(pip, "packages").get("omero_web") or "omero-web").strip()
    version = schema.version_spec(mapdata.get("version"))
    return name + schema.join_specifiers(version, pip.get("omero_web_cap", ""))


def pip_packages(mapdata, schema):
    """The venv's pip requirements: omero-web, then only the extras the pillar needs, then apps."""
    names = _section(mapdata, "pip", "packages")
    wanted = [omero_web_requirement(mapdata, schema)]
    sessions = _section(mapdata, "sessions")
    if _section(mapdata, "whitenoise").get("enabled"):
        wanted.append(names.get("whitenoise"))
    if sessions.get("backend") == "redis":
        wanted.append(names.get("redis"))
    if _section(mapdata, "cors").get("enabled"):
        wanted.append(names.get("cors"))
    if _section(mapdata, "gunicorn").get("worker_class") == "gevent":
        wanted.append(names.get("gevent"))
    wanted.extend(str(app["package"]).strip() for app in apps(mapdata) if app.get("package"))
    packages = []
    for requirement in wanted:
        if requirement and requirement not in packages:
            packages.append(requirement)
    return packages


# --------------------------------------------------------------------------
# apps the pillar no longer lists
# --------------------------------------------------------------------------

#: Where the minion keeps what the last apply set (root's): the OMERODIR, the
#: properties and, per app, its package and settings.
APPS_RECORD = "/var/lib/omero-web-formula/apps.json"


def apps_record_file():
    """``APPS_RECORD``."""
    return APPS_RECORD


def _dist_name(requirement):
    return re.split(r"[<>=!~;\[ ]", str(requirement or "").strip(), maxsplit=1)[0]


def apps_record(mapdata):
    """What the formula sets for each app of the pillar: ``{name: {package,
    config: [keys], config_append: {key: [values]}}}``, kept on the minion
    (``APPS_RECORD``) so that an app later removed from pillar can be undone."""
    record = {}
    for app in apps(mapdata):
        if not app.get("name"):
            continue
        record[str(app["name"])] = {
            "package": _dist_name(app.get("package")) or None,
            "config": sorted(app.get("config") or {}),
            "config_append": {key: list(values) for key, values in (app.get("config_append") or {}).items()},
        }
    return record


def _element(value):
    return json.dumps(value, sort_keys=True)


def forgotten_apps(mapdata, previous, properties, appends, packages):
    """
    ``(unsets, removals, pip_removed)`` for the apps of ``previous`` (the
    record of the last apply) that the pillar no longer lists: their
    ``omero.web.apps`` entry, the properties and appended values the formula
    set for them (unless the pillar still sets them otherwise), and, with
    ``prune``, their package (unless still required).
    """
    unsets, removals, pip_removed = set(), {}, []
    current = apps_record(mapdata)
    still = {_dist_name(p).lower() for p in packages}
    for name, app in sorted((previous or {}).items()):
        if name in current or not isinstance(app, Mapping):
            continue
        gone = {"omero.web.apps": [name]}
        for key, values in (app.get("config_append") or {}).items():
            gone.setdefault(key, []).extend(values or [])
        for key, values in gone.items():
            if mapdata.get("prune") and key not in appends and key not in properties:
                # prune unsets a list the pillar no longer declares: now, not next run
                unsets.add(key)
                continue
            kept = {_element(v) for v in appends.get(key, [])}
            for value in values:
                if _element(value) not in kept and value not in removals.get(key, []):
                    removals.setdefault(key, []).append(value)
        unsets.update(key for key in app.get("config") or [] if key not in properties)
        package = app.get("package")
        if mapdata.get("prune") and package and package.lower() not in still:
            pip_removed.append(package)
    return sorted(unsets), removals, pip_removed


# --------------------------------------------------------------------------
# nginx, Redis, the health check, SELinux
# --------------------------------------------------------------------------


def ice(mapdata):
    """
    IcePy's wheel: ``wheel`` (the path or URL pip installs) and ``source``
    (a salt:// wheel, copied to ``ice:cache_dir`` first: pip cannot read
    salt://; else None).
    """
    section = _section(mapdata, "ice")
    wheel = str(section.get("wheel") or "")
    if wheel.startswith("salt://"):
        cache_dir = str(section.get("cache_dir") or "").rstrip("/")
        return {"wheel": cache_dir + "/" + wheel.rsplit("/", 1)[-1], "source": wheel}
    return {"wheel": wheel, "source": None}


def nginx(mapdata, properties):
    """
    What the nginx sls files write: ``conf_file`` (the server block),
    ``location_file`` (OMERO.web's location blocks, with TLS or
    location_only), ``tls`` (whether nginx serves HTTPS), ``tls_cert`` and
    ``tls_key`` (where the certificate and key are copied),
    ``prefix_locations`` and ``location`` (``/`` or the prefix).
    """
    section = _section(mapdata, "nginx")
    conf_dir = str(section.get("conf_dir") or "/etc/nginx/conf.d").rstrip("/")
    conf_file = str(section.get("conf_file") or "omero-web.conf")
    base = conf_file[: -len(".conf")] if conf_file.endswith(".conf") else conf_file
    tls_dir = str(section.get("tls_dir") or "").rstrip("/")
    return {
        "conf_file": conf_dir + "/" + conf_file,
        # root's nginx reads only root's files: next to conf.d, not in OMERODIR
        "location_file": conf_dir.rsplit("/", 1)[0] + "/" + str(section.get("location_file") or ""),
        "tls": tls_enabled(mapdata),
        "tls_cert": tls_dir + "/" + base + ".crt",
        "tls_key": tls_dir + "/" + base + ".key",
        "prefix_locations": prefix_locations(mapdata),
        "location": prefix(mapdata) or "/",
        "generator": generator_properties(mapdata, properties),
        # nginx:gzip, static_max_age, static_unversioned_max_age,
        # upstream_keepalive (_utils/omero_web_nginx.py writes them)
        "tuning": nginx_tuning(mapdata),
        # http-level blocks (static lifetime map, upstream) for the location
        # file (HTTPS, location_only), loaded before it from conf_dir
        "http_file": conf_dir + "/" + base + "-http.conf",
        "upstream_address": "{}:{}".format(
            properties.get("omero.web.application_server.host") or "127.0.0.1",
            properties.get("omero.web.application_server.port") or 4080,
        ),
        "hsts": hsts_max_age(mapdata),
        # the port-80 redirect's target: the first real server name
        "redirect_host": (server_names(mapdata) or ["$host"])[0],
    }


#: gunicorn's default --keep-alive, seconds (gunicorn/config.py).
GUNICORN_KEEPALIVE = 2


def gunicorn_keepalive(mapdata):
    """gunicorn's --keep-alive in seconds: from gunicorn:extra_args, else gunicorn's default."""
    extra_args = _section(mapdata, "gunicorn").get("extra_args") or ""
    if isinstance(extra_args, (list, tuple)):
        extra_args = " ".join(str(arg) for arg in extra_args)
    found = re.findall(r"(?:^|\s)--keep-alive(?:=|\s+)([0-9]+)(?=\s|$)", str(extra_args))
    return int(found[-1]) if found else GUNICORN_KEEPALIVE


def nginx_tuning(mapdata):
    """
    What nginx adds to OMERO's generated text (``_utils/omero_web_nginx.py``):
    ``gzip_level`` (nginx:gzip: false 0, true 6, or 1-9), the static files'
    lifetimes, and the idle connections to gunicorn nginx keeps
    (nginx:upstream_keepalive), closed after half gunicorn's --keep-alive
    (so nginx never reuses one gunicorn closed). gunicorn's sync worker (one
    thread) closes every connection: nothing to keep then.
    """
    section = _section(mapdata, "nginx")
    gunicorn = _section(mapdata, "gunicorn")
    level = section.get("gzip")
    if level is True:
        level = 6
    elif not isinstance(level, int) or isinstance(level, bool):
        level = 0
    keepalive = section.get("upstream_keepalive") or 0
    alive_s = gunicorn_keepalive(mapdata)
    single_thread_sync = (gunicorn.get("worker_class") or "sync") == "sync" and (
        gunicorn.get("threads") or 1) <= 1
    if alive_s <= 0 or single_thread_sync:
        keepalive = 0
    return {
        "gzip_level": level,
        "gzip_static": 1 if level and section.get("gzip_static") else 0,
        "static_max_age": int(section.get("static_max_age") or 0),
        "static_unversioned_max_age": int(section.get("static_unversioned_max_age") or 0),
        "keepalive": int(keepalive),
        "keepalive_timeout_ms": max(alive_s * 500, 1),
        "open_file_cache": int(section.get("open_file_cache") or 0),
    }


def static_root(mapdata):
    """Where ``omero web start`` collects the static files: omero.web.static_root, else OMERO.web's default."""
    configured = (mapdata.get("config") or {}).get("omero.web.static_root")
    if configured:
        return str(configured).rstrip("/") or "/"
    return str(mapdata.get("omerodir") or "").rstrip("/") + "/var/static"


def precompress(mapdata):
    """
    What the unit runs around ``omero web start`` for nginx's gzip_static
    (nginx:gzip and nginx:gzip_static, nginx served by the formula):
    ``script``, ``static_root`` and the gzip ``level``; else None.
    """
    section = _section(mapdata, "nginx")
    tuning = nginx_tuning(mapdata)
    if not section.get("enabled") or not tuning["gzip_static"]:
        return None
    return {
        "script": str(section.get("precompress_script") or ""),
        "static_root": static_root(mapdata),
        "level": tuning["gzip_level"],
    }


def unit(mapdata, redis_local):
    """
    What the omero-web unit names besides OMERO.web: ``requires`` and
    ``after`` (the nginx the formula serves it through, as the walkthrough's
    ``Requires=nginx.service``; the local Redis, ``redis_local``), the
    ``reload`` script and the ``precompress`` script (see
    :py:func:`precompress`), each with the ``python`` that runs it.
    """
    python = str(_section(mapdata, "python").get("executable") or "")
    requires, after = [], []
    nginx_section = _section(mapdata, "nginx")
    if nginx_section.get("enabled"):
        requires.append("%s.service" % nginx_section.get("service"))
        after.append("%s.service" % nginx_section.get("service"))
    if redis_local:
        after.append("%s.service" % _section(mapdata, "redis").get("service"))
    scripts = precompress(mapdata)
    return {
        "requires": requires,
        "after": after,
        "reload": {"python": python, "script": str(_section(mapdata, "service").get("reload_script") or "")},
        "precompress": dict(scripts, python=python) if scripts else None,
    }


def hsts_max_age(mapdata):
    """Strict-Transport-Security's max-age: 0 (off), a year for ``true``, or the seconds given."""
    value = _section(mapdata, "nginx", "tls").get("hsts")
    if value is True:
        return 31536000
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


#: What ``omero web config nginx`` reads of OMERO.web's configuration.
NGINX_INPUTS = (
    "omero.web.prefix",
    "omero.web.static_url",
    "omero.web.application_server.host",
    "omero.web.application_server.port",
    NGINX_EXTRA,
)


def generator_properties(mapdata, properties):
    """
    The properties ``omero web config nginx`` is run with, in a throwaway
    OMERODIR: only what it reads, from validated pillar (never the service
    user's own config.xml), and the real static root.
    """
    chosen = {key: properties[key] for key in NGINX_INPUTS if key in properties}
    chosen["omero.web.static_root"] = static_root(mapdata)
    return chosen


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


def redis(mapdata, grains, secrets):
    """
    The local Redis: ``local`` (sessions in a Redis on this host: the
    formula installs it), ``port`` (where it must listen: the redis:// URL's
    port, the package's ``redis:default_port`` when it names none; None for
    unix://), ``socket`` (the unix:// path), ``tls`` (rediss://: its TLS
    setup is Redis's own, so the formula sets no port), ``default_port``,
    ``directives`` (what redis.conf must say) and ``selinux_port`` (a
    non-default port on an SELinux host, which needs the redis_port_t type).
    """
    default_port = _section(mapdata, "redis").get("default_port") or 6379
    sessions = _section(mapdata, "sessions")
    url = sessions.get("redis_url")
    local = (
        sessions.get("backend") == "redis"
        and not sessions.get("redis_external")
        and _is_local_redis(url)
    )
    result = {
        "local": local,
        "port": None,
        "socket": None,
        "tls": False,
        "default_port": default_port,
        "directives": {},
        "selinux_port": False,
        "password_file": None,
    }
    if not local:
        return result
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme == "unix":
            result["socket"] = unquote(parts.path) or None
        else:
            result["port"] = parts.port or default_port
            result["tls"] = scheme == "rediss"
    except ValueError:  # validation reports a bad port
        pass
    if result["port"] and not result["tls"]:
        result["directives"]["port"] = result["port"]
    password = redis_password(mapdata, secrets)
    if password is not None:
        result["directives"]["requirepass"] = password
        files = secrets.refs(password)
        result["password_file"] = sorted(files)[0] if files else None
    if result["socket"]:
        result["directives"].update({"unixsocket": result["socket"], "unixsocketperm": 770})
    result["selinux_port"] = bool(
        selinux(mapdata, grains) and "port" in result["directives"] and result["port"] != default_port
    )
    return result


def healthcheck(mapdata):
    """
    The health check's target: ``url`` (the login page, through nginx when
    the formula serves OMERO.web with it, else straight from gunicorn) and
    ``host`` (the Host header nginx needs to pick the server, or ``""``).
    """
    path = prefix(mapdata) + "/webclient/login/"
    section = _section(mapdata, "nginx")
    if section.get("enabled") and not section.get("location_only"):
        names = server_names(mapdata)
        host = names[0] if names and names[0] != "localhost" else ""
        if tls_enabled(mapdata):
            return {"url": "https://127.0.0.1:{}{}".format(section["tls"]["port"], path), "host": host}
        return {"url": "http://127.0.0.1:{}{}".format(section.get("port"), path), "host": host}
    gunicorn = _section(mapdata, "gunicorn")
    address = gunicorn_host(mapdata) or "127.0.0.1"
    address = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(address, address)
    return {"url": "http://{}:{}{}".format(address, gunicorn.get("port"), path), "host": ""}


# --------------------------------------------------------------------------
# several nodes behind the load balancer (omero_web.loadbalancer)
# --------------------------------------------------------------------------

#: The load balancer's upstream: the web nodes (proxy_pass names it).
LB_UPSTREAM = "omero_web_nodes"


def _first_address(grains):
    """The node's first non-loopback IPv4 address from grains (else loopback)."""
    for grain in ("fqdn_ip4", "ipv4"):
        for address in (grains or {}).get(grain) or []:
            if not str(address).startswith("127."):
                return str(address)
    return "127.0.0.1"


def lb_member(mapdata, grains):
    """
    What a web node publishes in the Salt mine (``omero_web.lb_member``) for
    the load balancer: the ``address`` (``loadbalancer:publish_address``,
    else its first non-loopback IPv4 address) and ``port`` of its nginx, and
    its ``prefix`` (the nodes of one site share it).
    """
    address = _section(mapdata, "loadbalancer").get("publish_address") or _first_address(grains)
    return {"address": str(address), "port": _section(mapdata, "nginx").get("port"),
            "prefix": prefix(mapdata)}


def _upstream_address(address):
    """An IPv6 address goes in brackets in nginx's ``server`` line."""
    return "[{}]".format(address) if ":" in address else address


def loadbalancer(mapdata, mine=None):
    """
    The load balancer's nginx file: ``conf_file``, ``port``, ``server_name``,
    ``upstream`` (its name), ``servers`` (``name``, ``address``, ``port``,
    ``down`` for a drained one; the pillar's ``members`` first, then the
    mine's records, ``{minion id: lb_member}``, by id; a name in both is the
    pillar's), ``max_fails``, ``fail_timeout``; and ``problem``: why no
    file can be written (no member, a drain naming none or all of them,
    nodes with different prefixes), else None. ``mine``: validated already.
    """
    section = _section(mapdata, "loadbalancer")
    members = [dict(member) for member in section.get("members") or []]
    names = [member["name"] for member in members]
    prefixes = set()
    for name, record in sorted((mine or {}).items()):
        prefixes.add(record.get("prefix") or "")
        if name not in names:
            members.append({"name": name, "address": record["address"], "port": record["port"]})
            names.append(name)
    drain = list(section.get("drain") or [])
    servers = [{"name": m["name"], "address": _upstream_address(str(m["address"])),
                "port": m["port"], "down": m["name"] in drain} for m in members]
    problem = None
    unknown = [name for name in drain if name not in names]
    if not servers:
        problem = ("no web node: loadbalancer:members is empty and the mine has no "
                   "omero_web.lb_member record for {!r}".format(section.get("mine_target")))
    elif unknown:
        problem = "loadbalancer:drain names no web node: " + ", ".join(unknown)
    elif all(server["down"] for server in servers):
        problem = "loadbalancer:drain drains every web node: the site would serve nothing"
    elif len(prefixes) > 1:
        problem = "the web nodes publish different prefixes: " + ", ".join(sorted(prefixes))
    conf_dir = str(_section(mapdata, "nginx").get("conf_dir") or "").rstrip("/")
    return {
        "conf_file": conf_dir + "/" + str(section.get("conf_file")),
        "port": section.get("port"),
        "server_name": section.get("server_name"),
        "upstream": LB_UPSTREAM,
        "servers": servers,
        "max_fails": section.get("max_fails"),
        "fail_timeout": section.get("fail_timeout"),
        "problem": problem,
    }


def logs(mapdata):
    """
    Where OMERO.web logs: ``dir`` (``logdir``, else $OMERODIR/var/log),
    ``file`` (OMEROweb.log in it) and ``link`` ($OMERODIR/var/log when
    ``logdir`` moves it elsewhere, else None). omero-web 5.33 builds its
    LOGGING, with OMEROweb.log's path, before it reads omero.web.logdir:
    the formula sets that property (manage.py's debug log follows it) and
    makes $OMERODIR/var/log a link to the directory.
    """
    default = str(mapdata.get("omerodir") or "").rstrip("/") + "/var/log"
    configured = str(mapdata.get("logdir") or "").rstrip("/")
    directory = configured or default
    return {
        "dir": directory,
        "file": directory + "/OMEROweb.log",
        "link": default if directory != default else None,
    }


def unit_directives(mapdata):
    """
    The sandboxing lines of both units (service:hardening), with the paths
    OMERO.web writes made writable again under ProtectSystem=strict.
    """
    lines = [str(line) for line in (_section(mapdata, "service").get("hardening") or [])]
    if "ProtectSystem=strict" in lines:
        omerodir = str(mapdata.get("omerodir") or "").rstrip("/")
        lines.append("ReadWritePaths={0}/var {0}/etc/grid".format(omerodir))
        static = static_root(mapdata)
        if not static.startswith(omerodir + "/var/"):
            # "-": not an error while the first start has not made it yet
            lines.append("ReadWritePaths=-" + static)
        log_dir = logs(mapdata)
        if log_dir["link"] and not log_dir["dir"].startswith(omerodir + "/var/"):
            lines.append("ReadWritePaths=-" + log_dir["dir"])
    return lines


def selinux(mapdata, grains):
    """Whether the SELinux states apply: managed, RedHat family, SELinux enabled."""
    grains = grains or {}
    grain = grains.get("selinux")
    enabled = isinstance(grain, Mapping) and bool(grain.get("enabled"))
    managed = bool(_section(mapdata, "selinux").get("manage"))
    return managed and grains.get("os_family") == "RedHat" and enabled


# --------------------------------------------------------------------------
# all of it
# --------------------------------------------------------------------------


def derive(mapdata, grains, schema, secrets, previous=None, mine=None):
    """
    Everything the states apply, from the merged map (``schema`` and
    ``secrets``: the omero_web_schema and omero_web_secrets modules): ``properties``,
    ``appends``, ``unsets``, ``removals``, ``secret_keys``, ``pip_packages``,
    ``workers``, ``prefix``, ``static_url``, ``nginx``, ``redis``,
    ``healthcheck``, ``selinux`` (see each function). ``previous``: what
    the last apply set (``APPS_RECORD``: ``{properties, apps}``; ``{}`` for a
    site the formula has not applied to yet; None: unknown, every
    formula-owned property the pillar does not set is unset). ``mine``: the
    web nodes' ``omero_web.lb_member`` records (``{minion id: record}``,
    validated) when ``loadbalancer:mine_target`` is set.
    """
    mapdata = mapdata or {}
    properties, appends = omero_properties(mapdata, grains, schema, secrets)
    unsets, removals = ownership(properties, appends, schema)
    if previous is not None:
        # Only what the formula itself set before is the formula's to unset: a
        # site it takes over keeps what was set by hand (issue 11).
        unsets = [key for key in unsets if key in (previous.get("properties") or [])]
    packages = pip_packages(mapdata, schema)
    app_unsets, app_removals, pip_removed = forgotten_apps(
        mapdata, (previous or {}).get("apps"), properties, appends, packages)
    unsets = sorted(set(unsets) | set(app_unsets))
    for key, values in app_removals.items():
        removals.setdefault(key, []).extend(values)
    path = prefix(mapdata)
    local_redis = redis(mapdata, grains, secrets)
    return {
        "properties": properties,
        "appends": appends,
        "unsets": unsets,
        "removals": removals,
        "secret_keys": secret_keys(mapdata, properties, appends, secrets),
        "pip_packages": packages,
        "pip_removed": pip_removed,
        "apps_record": {"file": APPS_RECORD,
                        "data": {"omerodir": mapdata.get("omerodir"), "properties": sorted(properties),
                                 "apps": apps_record(mapdata)}},
        "ice": ice(mapdata),
        "workers": workers(mapdata, grains),
        "prefix": path,
        "static_url": path + "/static/",
        "nginx": nginx(mapdata, properties),
        "redis": local_redis,
        "healthcheck": healthcheck(mapdata),
        "lb_member": lb_member(mapdata, grains),
        "loadbalancer": loadbalancer(mapdata, mine),
        "selinux": selinux(mapdata, grains),
        # Django's file sessions and uploads (tempfile.gettempdir()): OMERO.web's
        # own directory, not the shared /tmp
        "tmpdir": str(mapdata.get("omerodir") or "").rstrip("/") + "/var/tmp",
        "unit_directives": unit_directives(mapdata),
        "logs": logs(mapdata),
        "precompress": precompress(mapdata),
        "unit": unit(mapdata, local_redis["local"]),
        "account_mark": ACCOUNT_MARK,
    }
