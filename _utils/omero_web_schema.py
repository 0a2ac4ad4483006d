"""
The ``omero_web`` pillar schema: every key once, with its kind, its
constraints and what it becomes in OMERO.web. Validation and the typo guard
come from it (``omero_web_validate``, which holds the kinds' checkers);
derive (``omero_web_derive``) reads the direct property mappings (``sets``)
from it, and the properties the formula owns (:py:func:`owned_properties`).

Where the other facts about a key live, once each:

* its default: ``omero_web/parameters/defaults.yaml`` (and the platform
  layers next to it);
* its documentation, with a working value: ``pillar.example``;
* its type, constraints and OMERO.web property: :py:data:`SCHEMA` below.

``test/unit/test_schema.py`` proves the three hold the same keys.

Pure code: no processes, and no other utility module (utility modules get
no ``__utils__``).
"""

import re
from collections.abc import Mapping


ROOT = "omero_web"


class Key:
    """
    One pillar key.

    kind
        the name of its checker (``_kind_<kind>`` below).
    sets
        the OMERO.web property the value is copied to, as it is, when it is
        not null (derive does it).
    derives
        OMERO.web properties derive computes from this key (and others).
    options
        the checker's constraints (``min``, ``choices``, ``expected``...).
    """

    __slots__ = ("kind", "sets", "derives", "options")

    def __init__(self, kind, sets=None, derives=(), **options):
        self.kind = kind
        self.sets = sets
        self.derives = tuple(derives)
        self.options = options

    @property
    def open(self):
        """Whether the typo guard stops here (a free-form mapping)."""
        return self.kind in OPEN_KINDS

    def __repr__(self):
        return "Key({!r})".format(self.kind)


#: Kinds whose mapping keys are the user's own (not schema keys).
OPEN_KINDS = ("properties", "appends", "lookup", "rename", "source_files", "packages", "app_catalogue")

WORKER_CLASSES = ("sync", "gevent")
SESSION_BACKENDS = ("file", "redis")
SYSTEMD_RESTART = (
    "no",
    "always",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-abort",
    "on-watchdog",
)
UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system")
#: How ``loadbalancer:mine_target`` is matched (mine.get's tgt_type).
MINE_TARGET_TYPES = ("glob", "pcre", "list", "grain", "grain_pcre", "pillar", "compound", "nodegroup")
_BARE_VERSION = re.compile(r"^\s*[0-9][A-Za-z0-9.*+!_-]*\s*$")

# --------------------------------------------------------------------------
# the schema
# --------------------------------------------------------------------------

_PATH = Key("path")
_TEXT = Key("text")
_BOOL = Key("bool")
_PORT = Key("port")
_PKGS = Key("pkg_names")

SCHEMA = {
    "lookup": Key("lookup"),
    "version": Key("version", derives=("pip: omero-web",)),
    "user": Key("own_account"),
    "group": Key("own_account"),
    "user_shell": _PATH,
    "omerodir": Key("own_dir"),
    # where OMEROweb.log is written (null: $OMERODIR/var/log)
    "logdir": Key("own_dir", derives=("omero.web.logdir",)),
    "venv": Key("own_dir"),
    "python": {"executable": _PATH, "version": Key("text", pattern=r"^[0-9]+\.[0-9]+$", expected='e.g. "3.11"')},
    "prerequisites": {"repo_pkgs": _PKGS, "pkgs": _PKGS},
    "pip": {
        "upgrade_pip": _BOOL,
        "packages": Key("packages"),
        "omero_web_cap": Key("cap"),
    },
    "ice": {
        "wheel": Key("wheel"),
        "version": Key("text", pattern=r"^[0-9][0-9a-z.]*$", expected='a version, e.g. "3.6.5"'),
        "cache_dir": Key("own_dir"),
    },
    "server_list": Key("server_list", sets="omero.web.server_list"),
    "prefix": Key(
        "prefix",
        derives=("omero.web.prefix", "omero.web.static_url", "omero.web.nginx_server_extra_config"),
    ),
    "sessions": {
        "backend": Key(
            "choice",
            choices=SESSION_BACKENDS,
            derives=("omero.web.caches", "omero.web.session_engine"),
        ),
        "redis_url": Key("redis_url", derives=("omero.web.caches",)),
        "redis_external": _BOOL,
        "cookie_age": Key(
            "int", min=1, expected="a positive integer (seconds)", sets="omero.web.session_cookie_age"
        ),
        "expire_at_browser_close": Key("bool", sets="omero.web.session_expire_at_browser_close"),
        "clear": {"enabled": _BOOL, "on_calendar": Key("calendar")},
    },
    "gunicorn": {
        "workers": Key("workers", derives=("omero.web.wsgi_workers",)),
        "worker_class": Key("choice", choices=WORKER_CLASSES, sets="omero.web.wsgi_worker_class"),
        "threads": Key("int", min=1, derives=("omero.web.wsgi_threads",)),
        "worker_connections": Key("int", min=1, derives=("omero.web.wsgi_worker_connections",)),
        "max_requests": Key("int", min=0, sets="omero.web.application_server.max_requests"),
        "host": Key("host", derives=("omero.web.application_server.host",)),
        "port": Key("port", sets="omero.web.application_server.port"),
        "extra_args": Key("args", derives=("omero.web.wsgi_args",)),
    },
    "cors": {
        "enabled": Key("bool", derives=("omero.web.middleware",)),
        "allow_all": Key("bool", derives=("omero.web.cors_origin_allow_all",)),
        "whitelist": Key("origins", derives=("omero.web.cors_origin_whitelist",)),
    },
    "whitenoise": {"enabled": Key("bool", derives=("omero.web.middleware",))},
    "redis": {
        "pkg": Key("pkg_name"),
        "service": Key("unit_name"),
        "conf_file": _PATH,
        "group": Key("account"),
        "default_port": _PORT,
        "password": Key("text", pattern=r"^[A-Za-z0-9._~!#%^*+=-]{8,}$",
                        expected="a password of 8 or more letters, digits and ._~!#%^*+=-"),
        "password_file": _PATH,
        "selinux_port_type": Key("ident", expected="an SELinux type, e.g. redis_port_t"),
    },
    "nginx": {
        "enabled": _BOOL,
        "port": _PORT,
        "server_name": Key(
            "server_names",
            derives=("omero.web.csrf_trusted_origins", "omero.web.allowed_hosts"),
        ),
        "max_body_size": Key("nginx_size"),
        "location_only": _BOOL,
        "disable_default_server": _BOOL,
        # pages that load fast (_utils/omero_web_nginx.py)
        "gzip": Key("gzip"),
        "gzip_static": _BOOL,
        "precompress_script": Key("own_file"),
        "static_max_age": Key("int", min=0, expected="an integer >= 0 (seconds)"),
        "static_unversioned_max_age": Key("int", min=0, expected="an integer >= 0 (seconds)"),
        "upstream_keepalive": Key("int", min=0, max=1024, expected="an integer 0-1024"),
        "open_file_cache": Key("int", min=0, max=1000000, expected="an integer 0-1000000"),
        "tls": {
            "cert": Key("source", derives=("omero.web.secure", "omero.web.session_cookie_secure",
                                           "omero.web.csrf_cookie_secure")),
            "key": Key("source"),
            "port": _PORT,
            "protocols": Key("tls_protocols"),
            "ciphers": Key("text", pattern=r"^[A-Za-z0-9:_+!-]+$", expected="an OpenSSL cipher list"),
            "hsts": Key("hsts"),
        },
        "pkg": Key("pkg_name"),
        "service": Key("unit_name"),
        "user": Key("account"),
        "conf_dir": _PATH,
        "conf_file": Key("file_name"),
        "location_file": Key("file_name"),
        "tls_dir": _PATH,
        "default_server": {
            "sed_files": Key("paths"),
            "rename": Key("rename"),
            "remove": Key("paths"),
        },
    },
    "selinux": {
        "manage": _BOOL,
        "pkgs": _PKGS,
        "booleans": Key("idents"),
        "port_type": Key("ident", expected="an SELinux type, e.g. http_port_t"),
    },
    "service": {
        "name": Key("own_unit"),
        "enabled": _BOOL,
        "restart": Key("choice", choices=SYSTEMD_RESTART),
        "unit_dir": Key("choice", choices=UNIT_DIRS),
        "hardening": Key("unit_directives"),
        "reload_script": Key("own_file"),
        "healthcheck": {
            "enabled": _BOOL,
            "timeout": Key("int", min=1, expected="a positive integer (seconds)"),
            "script": Key("own_file"),
        },
    },
    # anonymous access (OMERO.web's public user): derive sets the
    # omero.web.public.* properties only while enabled is true
    "public": {
        "enabled": Key("bool", derives=("omero.web.public.enabled",)),
        "user": Key("text", pattern=r"^\S+$", expected="an OMERO user name",
                    derives=("omero.web.public.user",)),
        # a secret: never shown (omero_web_secrets.SECRET_PILLAR_KEYS)
        "password": Key("secret_text", derives=("omero.web.public.password",)),
        "url_filter": Key("regex", derives=("omero.web.public.url_filter",)),
        "server_id": Key("int", min=1, expected="a positive integer (1 = the first of server_list)",
                         derives=("omero.web.public.server_id",)),
        "get_only": Key("bool", derives=("omero.web.public.get_only",)),
        "cache": {
            "enabled": Key("bool", derives=("omero.web.public.cache.enabled",)),
            "timeout": Key("int", min=1, expected="a positive integer (seconds)",
                           derives=("omero.web.public.cache.timeout",)),
        },
    },
    # behind an outer proxy that terminates HTTPS (a load balancer)
    "proxy": {
        "https": Key("bool", derives=("omero.web.secure_proxy_ssl_header",
                                      "omero.web.session_cookie_secure",
                                      "omero.web.csrf_cookie_secure",
                                      "omero.web.csrf_trusted_origins")),
        "https_header": Key("text", pattern=r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
                            expected="an HTTP header name (letters, digits and -)"),
        "trusted_origins": Key("https_origins", derives=("omero.web.csrf_trusted_origins",)),
        "forwarded_host": Key("bool", sets="omero.web.use_x_forwarded_host"),
    },
    # a site of several web nodes behind the formula's load balancer
    # (omero_web.loadbalancer): its members, from the Salt mine or a list
    "loadbalancer": {
        "port": _PORT,
        "server_name": Key("server_names"),
        "members": Key("lb_members"),
        "mine_target": Key("text", pattern=r"^[A-Za-z0-9_.*?@:,/!()\[\] -]+$",
                           expected="a Salt target, e.g. \"web*\" or \"G@role:omero-web\""),
        "mine_target_type": Key("choice", choices=MINE_TARGET_TYPES),
        "drain": Key("member_names"),
        "max_fails": Key("int", min=0, expected="an integer >= 0 (0: never marked down)"),
        "fail_timeout": Key("int", min=1, expected="a positive integer (seconds)"),
        "conf_file": Key("file_name"),
        "publish_address": Key("host"),
    },
    "apps": Key("apps", derives=("omero.web.apps",)),
    # the apps `apps` can name: parameters/defaults.yaml
    "app_catalogue": Key("app_catalogue"),
    "config": Key("properties"),
    "config_append": Key("appends"),
    "secret_keys": Key("property_names"),
    "prune": _BOOL,
    "allow_non_web_config": _BOOL,
    "clean": {"pkgs": _BOOL},
    "tofs": {
        "path_prefix": Key("text", pattern=r"^[A-Za-z0-9._/-]+$", expected="a salt:// path"),
        "dirs": {"files": Key("file_name"), "default": Key("file_name")},
        "files_switch": Key("idents"),
        "source_files": Key("source_files"),
        "source_dirs": Key("sources"),
    },
}


def leaves(schema=None, parts=()):
    """``(parts, Key)`` for every leaf of the schema, depth first."""
    for name, node in (SCHEMA if schema is None else schema).items():
        if isinstance(node, Mapping):
            yield from leaves(node, parts + (name,))
        else:
            yield parts + (name,), node


def key_paths(schema=None):
    """Every key of the schema as ``a:b:c`` (sections and leaves)."""
    paths = set()
    for parts, _ in leaves(schema):
        for depth in range(1, len(parts) + 1):
            paths.add(":".join(parts[:depth]))
    return paths


def direct_properties():
    """``{pillar key parts: OMERO.web property}`` of the keys copied as they are."""
    return {parts: key.sets for parts, key in leaves() if key.sets}


def owned_properties():
    """
    The OMERO.web properties the formula's structured keys set: derive
    unsets each one the current pillar does not use.
    """
    owned = set()
    for _, key in leaves():
        if key.sets:
            owned.add(key.sets)
        owned.update(p for p in key.derives if p.startswith("omero.web."))
    # appended lists are not unset: their formula-owned values are removed
    owned.discard("omero.web.middleware")
    owned.discard("omero.web.apps")
    return tuple(sorted(owned))


def table():
    """The schema itself: ``{key: Key or section}`` (for omero_web_validate)."""
    return SCHEMA

def version_spec(version):
    """``">=5.6.1"`` stays, a bare ``"5.33.2"`` becomes ``"==5.33.2"``."""
    if version is None:
        return ""
    text = str(version).strip()
    if text and _BARE_VERSION.match(text):
        return "==" + text
    return text
def join_specifiers(*specs):
    """``">=5.6.1"``, ``"<5.23"`` -> ``">=5.6.1,<5.23"`` (without repeats)."""
    clauses = []
    for spec in specs:
        for clause in str(spec or "").split(","):
            clause = clause.strip()
            if clause and clause not in clauses:
                clauses.append(clause)
    return ",".join(clauses)
