"""
Validation of the ``omero_web`` pillar against its schema
(``omero_web_schema``): the checker of every kind of key, the rules across
keys, and the typo guard. The ``omero_web`` execution module hands the
schema in (utility modules get no ``__utils__``) and adds what only the
minion can know (its accounts, units, systemd).

Messages name the full pillar key and say what was expected, e.g.
``omero_web:gunicorn:workers: expected a positive integer or "auto", got -1``.
They never show a value of the free-form config (it may be a secret); the
execution module masks URL passwords in them with the secret rule
(``omero_web_secrets``) before anyone sees them. Pure code: no processes.
"""

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

try:  # Salt depends on packaging
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion
except ImportError:  # pragma: no cover
    SpecifierSet = None
    InvalidSpecifier = InvalidVersion = ValueError

ROOT = "omero_web"


REDIS_SCHEMES = ("redis", "rediss", "unix")
APP_KEYS = ("name", "package", "config", "config_append")
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")

#: Accounts the formula never takes over (and clean.sls never deletes).
SYSTEM_ACCOUNTS = frozenset(
    """root daemon bin sys sync games man lp mail news uucp proxy www-data backup
    list irc gnats nobody nogroup adm wheel sudo staff users shadow tty disk kmem
    dialout utmp operator ftp sshd _apt messagebus dbus polkitd systemd-network
    systemd-resolve systemd-timesync systemd-journal systemd-coredump nginx
    apache httpd redis postgres mysql chrony salt""".split()
)
#: systemd units the formula never writes (besides any unit it did not write:
#: the execution module looks at the host too).
SYSTEM_UNITS = frozenset(
    """ssh sshd nginx redis redis-server dbus cron crond salt-minion salt-master
    rsyslog systemd-journald systemd-logind systemd-networkd systemd-resolved
    systemd-timesyncd networking NetworkManager getty@ serial-getty@ polkit
    postgresql mysql mariadb apache2 httpd docker containerd firewalld""".split()
)
#: Directories that are the system's: nothing the formula owns may be one,
#: or a parent of one.
SYSTEM_DIRS = frozenset(
    """/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt
    /proc /root /run /sbin /srv /sys /tmp /usr /var /usr/bin /usr/sbin /usr/lib
    /usr/lib64 /usr/libexec /usr/include /usr/share /usr/src /usr/local
    /usr/local/bin /usr/local/sbin /usr/local/lib /usr/local/libexec
    /usr/local/share /usr/local/etc /var/lib /var/log /var/cache /var/tmp
    /var/run /var/spool /var/mail /var/opt /var/www /var/backups /var/local
    /etc/systemd /etc/nginx /etc/ssl /etc/pki /etc/redis""".split()
)
#: ... nor lie below one of these (system trees, world-writable trees, root's
#: home); /usr/local/<name> is allowed.
PROTECTED_TREES = (
    "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev",
    "/proc", "/sys", "/run", "/root", "/tmp", "/var/tmp", "/var/run", "/usr",
)

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.-]*$")
_NGINX_SIZE = re.compile(r"^[0-9]+[kKmMgG]?$")
_SERVER_NAME = re.compile(r"^(_|~[^\s;{}'\"\\$]+|\.?[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9*])?)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_SAFE_PATH = re.compile(r"^(/[A-Za-z0-9._@+-]+)+$")
_PKG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_:-]*$")
_IDENT = re.compile(r"^[A-Za-z0-9_]+$")
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?"
    r"(\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+(\s*,\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*"
    r"|\s*@\s*https://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+)?$"
)
_SOURCE = re.compile(r"^(salt://[A-Za-z0-9._@+/-]+|(/[A-Za-z0-9._@+-]+)+)$")
_WHEEL = re.compile(r"^(https://[A-Za-z0-9._~:/@%+-]+\.whl|salt://[A-Za-z0-9._@+/-]+\.whl|(/[A-Za-z0-9._@+-]+)+\.whl)$")
_CALENDAR = re.compile(r"^[A-Za-z0-9*,./:~+ -]+$")
_CALENDAR_WORDS = (
    "minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually",
    "quarterly", "semiannually",
)
_UNIT_DIRECTIVE = re.compile(r"^[A-Z][A-Za-z]+=[A-Za-z0-9@:/ _.,~+=-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPECIFIER = re.compile(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9][A-Za-z0-9.*+!_-]*\s*$")

REDIS_SCHEMES = ("redis", "rediss", "unix")
# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------


def _path(*parts):
    """``omero_web:gunicorn:workers``, list items as ``omero_web:apps[0]``."""
    text = ROOT
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += "[{}]".format(part)
        else:
            text += ":" + str(part)
    return text


def _kind_name(value):
    """``a list``, ``a string``...: what a value is, without showing it."""
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


def _show(value):
    """A value for a message: JSON-like, short (the caller masks secrets in it)."""
    text = json.dumps(value, default=str, sort_keys=False)
    if len(text) > 120:
        text = text[:117] + "..."
    return text


def _got(expected, value):
    return "expected {}, got {}".format(expected, _show(value))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------
# kinds: each returns problems as [(sub-parts, message)], [] when valid.
# A null value is "not set" and never reaches a checker.
# --------------------------------------------------------------------------


def _one(message):
    return [((), message)] if message else []


def _kind_bool(value, ctx, **_):
    return _one(None if isinstance(value, bool) else _got("true or false", value))


def _kind_int(value, ctx, min=None, max=None, expected=None, **_):  # pylint: disable=redefined-builtin
    if _is_int(value) and (min is None or value >= min) and (max is None or value <= max):
        return []
    if expected is None:
        expected = {1: "a positive integer", 0: "an integer >= 0"}.get(min, "an integer")
    return _one(_got(expected, value))


def _kind_port(value, ctx, **_):
    return _kind_int(value, ctx, min=1, max=65535, expected="a port number (an integer 1-65535)")


def _text_ok(value, pattern=None):
    if not (isinstance(value, str) and value.strip()) or _CONTROL.search(value):
        return False
    return pattern is None or bool(re.match(pattern, value))


def _kind_text(value, ctx, pattern=None, expected="a non-empty string", **_):
    return _one(None if _text_ok(value, pattern) else _got(expected, value))


def _kind_choice(value, ctx, choices=(), **_):
    return _one(None if value in choices else _got("one of " + ", ".join(choices), value))


def _list_of(value, pattern):
    return isinstance(value, (list, tuple)) and all(_text_ok(v, pattern) for v in value)


def _kind_pkg_name(value, ctx, **_):
    return _one(None if _text_ok(value, _PKG_NAME) else _got("a package name", value))


def _kind_pkg_names(value, ctx, **_):
    return _one(None if _list_of(value, _PKG_NAME) else _got("a list of package names", value))


def _kind_ident(value, ctx, expected="a name (letters, digits, _)", **_):
    return _one(None if _text_ok(value, _IDENT) else _got(expected, value))


def _kind_idents(value, ctx, **_):
    return _one(None if _list_of(value, _IDENT) else _got("a list of names (letters, digits, _)", value))


def _kind_property_names(value, ctx, **_):
    ok = _list_of(value, r"^[A-Za-z0-9._-]+$")
    return _one(None if ok else _got("a list of OMERO property names", value))


def normalized_path(value):
    """Whether ``value`` is an absolute, normalised path of plain characters (no .., spaces, quotes)."""
    if not isinstance(value, str) or not _SAFE_PATH.match(value):
        return False
    return all(part not in (".", "..") for part in value.split("/")[1:])


_PATH_EXPECTED = "an absolute, normalised path (letters, digits and ._@+- only; no .. or spaces)"


def _kind_path(value, ctx, **_):
    return _one(None if normalized_path(value) else _got(_PATH_EXPECTED, value))


def _kind_paths(value, ctx, **_):
    ok = isinstance(value, (list, tuple)) and all(normalized_path(v) for v in value)
    return _one(None if ok else _got("a list of absolute, normalised paths", value))


def system_path_problem(path):
    """Why the formula must not own ``path`` (a system directory, a parent of one, inside one), or None."""
    if path in SYSTEM_DIRS:
        return "a system directory"
    if any(system.startswith(path.rstrip("/") + "/") for system in SYSTEM_DIRS):
        return "a parent of system directories"
    for tree in PROTECTED_TREES:
        if path.startswith(tree + "/") and not path.startswith("/usr/local/"):
            return "inside {}".format(tree)
    return None


def _kind_own_dir(value, ctx, **_):
    if not normalized_path(value):
        return _one(_got(_PATH_EXPECTED, value))
    problem = system_path_problem(value)
    if problem:
        return _one(_got("a directory of OMERO.web's own, not " + problem, value))
    return []


def _kind_own_file(value, ctx, **_):
    if not normalized_path(value):
        return _one(_got(_PATH_EXPECTED, value))
    if value in SYSTEM_DIRS or any(value.startswith(t + "/") for t in ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp")):
        return _one(_got("a file of the formula's own (e.g. under /usr/local)", value))
    return []


def _kind_rename(value, ctx, **_):
    ok = isinstance(value, Mapping) and all(
        normalized_path(k) and normalized_path(v) for k, v in value.items()
    )
    return _one(None if ok else _got("a mapping of absolute paths {from: to}", value))


def _kind_file_name(value, ctx, **_):
    ok = _text_ok(value, r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
    return _one(None if ok else _got("a file name", value))


def _kind_account(value, ctx, **_):
    return _one(None if _text_ok(value, _ACCOUNT) else _got("a user/group name", value))


def _kind_own_account(value, ctx, **_):
    """The formula's own user or group: never one of the system's accounts."""
    if not _text_ok(value, _ACCOUNT):
        return _one(_got("a user/group name", value))
    if value in SYSTEM_ACCOUNTS or value.startswith("systemd-"):
        return _one(_got("an account of OMERO.web's own, not the system account", value))
    return []


def _kind_unit_name(value, ctx, **_):
    return _one(None if _text_ok(value, _UNIT_NAME) else _got("a systemd unit name", value))


def _kind_own_unit(value, ctx, **_):
    """The formula's own unit: never a unit the system or a package has."""
    if not _text_ok(value, _UNIT_NAME):
        return _one(_got("a systemd unit name", value))
    base = value[: -len(".service")] if value.endswith(".service") else value
    if base in SYSTEM_UNITS or base.startswith("systemd-") or base.startswith("getty"):
        return _one(_got("a unit name of OMERO.web's own, not the system unit", value))
    return []


def _kind_unit_directives(value, ctx, **_):
    ok = isinstance(value, (list, tuple)) and all(_text_ok(v, _UNIT_DIRECTIVE) for v in value)
    return _one(None if ok else _got('a list of systemd directives ("Name=value")', value))


def _kind_host(value, ctx, **_):
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return []
        except ValueError:
            # a host name, whose last label is not a number (1.2.3.4.5 is no host)
            if _HOSTNAME.match(value) and not value.rsplit(".", 1)[-1].isdigit():
                return []
    return _one(_got("an IP address or a host name", value))


#: A load balancer member's name (a minion id, or a name of the members list):
#: it reaches the nginx file (a comment) and the drain list.
_MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
MEMBER_KEYS = ("name", "address", "port")


def member_problems(member):
    """``[(sub-path, message)]`` of one load balancer member ``{name, address, port}``:
    what the pillar's ``loadbalancer:members`` and the mine's records must satisfy."""
    if not isinstance(member, Mapping):
        return [((), _got("a mapping {name, address, port}", member))]
    problems = [((key,), "unknown key; expected name, address, port")
                for key in member if key not in MEMBER_KEYS]
    name = member.get("name")
    if not (isinstance(name, str) and _MEMBER_NAME.match(name)):
        problems.append((("name",), _got("a name (letters, digits, . _ -)", name)))
    for key, checker in (("address", _kind_host), ("port", _kind_port)):
        problems.extend(((key,) + tuple(sub), message)
                        for sub, message in checker(member.get(key), None))
    return problems


_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def mine_problems(records):
    """
    Messages about the web nodes' records in the Salt mine (``{minion id:
    omero_web.lb_member}``): they come from other minions, and reach the load
    balancer's nginx file only once they hold a name, an address, a port and
    a prefix as the pillar's members must.
    """
    if not isinstance(records, Mapping):
        return ["{}:loadbalancer:mine_target: the mine returned {}, expected a mapping".format(
            ROOT, _kind_name(records))]
    problems = []
    for minion, record in records.items():
        where = "{}:loadbalancer:mine_target: the mine's omero_web.lb_member of {!r}".format(
            ROOT, str(minion)[:253])
        if not isinstance(record, Mapping):
            problems.append("{}: {}".format(where, _got("a mapping {address, port, prefix}", record)))
            continue
        member = {"name": minion, "address": record.get("address"), "port": record.get("port")}
        for sub, message in member_problems(member):
            problems.append("{}: {}: {}".format(where, ":".join(map(str, sub)), message))
        if not (isinstance(record.get("prefix", ""), str) and _PREFIX.match(record.get("prefix", ""))):
            problems.append("{}: prefix: {}".format(where, _got("a URL prefix (/path)", record.get("prefix"))))
    return problems


def _kind_lb_members(value, ctx, **_):
    if not isinstance(value, (list, tuple)):
        return _one(_got("a list of {name, address, port}", value))
    problems, seen = [], set()
    for index, member in enumerate(value):
        problems.extend(((index,) + sub, message) for sub, message in member_problems(member))
        name = member.get("name") if isinstance(member, Mapping) else None
        if isinstance(name, str) and name in seen:
            problems.append(((index, "name"), "{!r} is listed twice".format(name)))
        seen.add(name)
    return problems


def _kind_member_names(value, ctx, **_):
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, str) and _MEMBER_NAME.match(v) for v in value)
    return _one(None if ok else _got("a list of member names (letters, digits, . _ -)", value))


def _kind_server_names(value, ctx, **_):
    ok = isinstance(value, str) and not _CONTROL.search(value) and bool(value.split()) and all(
        _SERVER_NAME.match(name) for name in value.split()
    )
    return _one(None if ok else _got("one or more server names separated by spaces", value))


def _kind_nginx_size(value, ctx, **_):
    ok = (_is_int(value) and value >= 0) or (isinstance(value, str) and _NGINX_SIZE.match(value))
    return _one(None if ok else _got('an nginx size: an integer >= 0 or e.g. "100m"', value))


def _kind_tls_protocols(value, ctx, **_):
    ok = isinstance(value, str) and bool(value.split()) and all(p in TLS_PROTOCOLS for p in value.split())
    return _one(None if ok else _got('TLS protocols among "TLSv1.2 TLSv1.3"', value))


def _kind_gzip(value, ctx, **_):
    ok = isinstance(value, bool) or (_is_int(value) and 1 <= value <= 9)
    return _one(None if ok else _got("false, true, or a compression level 1-9", value))


def _kind_hsts(value, ctx, **_):
    ok = isinstance(value, bool) or (_is_int(value) and value >= 0)
    return _one(None if ok else _got("false, true, or a max-age in seconds", value))


def calendar_ok(value):
    """A plausible systemd OnCalendar expression (the minion's systemd-analyze has the last word)."""
    if not _text_ok(value, _CALENDAR):
        return False
    text = value.strip()
    return text in _CALENDAR_WORDS or bool(re.search(r"[0-9*]", text))


def _kind_calendar(value, ctx, **_):
    ok = calendar_ok(value)
    return _one(None if ok else _got('a systemd OnCalendar expression, e.g. "daily"', value))


def _kind_source(value, ctx, **_):
    ok = _text_ok(value, _SOURCE) and ".." not in value.split("/")
    return _one(None if ok else _got("a path on the minion or a salt:// source", value))


def _kind_sources(value, ctx, **_):
    ok = _list_of(value, r"^salt://[A-Za-z0-9._@+/-]+$")
    return _one(None if ok else _got("a list of salt:// directories", value))


def _kind_wheel(value, ctx, **_):
    if value == "":
        return _one(
            "required: no IcePy wheel is known for this platform; set it to a "
            "URL, a local path or a salt:// source"
        )
    ok = _text_ok(value, _WHEEL) and ".." not in value.split("/")
    return _one(None if ok else _got("a wheel's https:// URL, local path or salt:// source", value))


def _kind_workers(value, ctx, **_):
    ok = value == "auto" or (_is_int(value) and value >= 1)
    return _one(None if ok else _got('a positive integer or "auto"', value))


def _kind_args(value, ctx, **_):
    ok = (isinstance(value, str) and not _CONTROL.search(value)) or _list_of(value, None)
    return _one(None if ok else _got("a string or a list of strings", value))


def _kind_origins(value, ctx, **_):
    ok = _list_of(value, r"^https?://[A-Za-z0-9.*-]+(:[0-9]+)?$")
    return _one(None if ok else _got("a list of origins (https://host[:port])", value))


def _kind_https_origins(value, ctx, **_):
    # Django 4's CSRF_TRUSTED_ORIGINS: scheme and host, "*." for subdomains
    ok = _list_of(value, r"^https?://(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
    return _one(None if ok else _got("a list of origins with their scheme (https://host[:port])", value))


def _kind_secret_text(value, ctx, **_):
    # never the value: it is a secret
    ok = isinstance(value, str) and bool(value.strip()) and not _CONTROL.search(value)
    return _one(None if ok else "expected a non-empty string, got " + _kind_name(value))


def _kind_regex(value, ctx, **_):
    if not _text_ok(value):
        return _one(_got("a regular expression", value))
    try:
        re.compile(value)
    except re.error as err:
        return _one(_got("a regular expression ({})".format(err), value))
    return []


def _kind_packages(value, ctx, **_):
    if not isinstance(value, Mapping):
        return _one(_got("a mapping", value))
    return [
        ((name,), _got("a pip requirement", requirement))
        for name, requirement in value.items()
        if requirement is not None and not _text_ok(requirement, _REQUIREMENT)
    ]


def _kind_lookup(value, ctx, **_):
    return _one(None if isinstance(value, Mapping) else _got("a mapping", value))


def _kind_source_files(value, ctx, **_):
    ok = isinstance(value, Mapping) and all(_list_of(v, r"^[A-Za-z0-9._/-]+$") for v in value.values())
    return _one(None if ok else _got("a mapping of state ID or file: [file names]", value))






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


def _kind_cap(value, ctx, **_):
    ok = isinstance(value, str) and (
        not ctx.schema.join_specifiers(value)
        or _specifier_set(ctx.schema.join_specifiers(value)) is not None
    )
    return _one(None if ok else _got('pip version specifiers, e.g. "<5.23"', value))


def _kind_version(value, ctx, **_):
    expected = 'a version ("5.33.2") or pip version specifiers (">=5.6.1", ">=5.6,<6")'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return _one(_got(expected, value))
    text = ctx.schema.version_spec(value)
    if not text:
        return []
    if _specifier_set(text) is None:
        return _one(_got(expected, value))
    # an exact pin the platform's cap excludes (e.g. 5.33.2 on CentOS 7)
    cap = _section(ctx.mapdata, "pip").get("omero_web_cap")
    if not isinstance(cap, str) or not ctx.schema.join_specifiers(cap) or SpecifierSet is None:
        return []
    cap_set = _specifier_set(ctx.schema.join_specifiers(cap))
    pinned = re.match(r"^==\s*([^*,]+)$", text)
    if pinned and cap_set not in (None, True):
        try:
            allowed = cap_set.contains(pinned.group(1).strip(), prereleases=True)
        except InvalidVersion:
            return []
        if not allowed:
            return _one(
                _got("a version this platform allows (pip:omero_web_cap {})".format(_show(cap)), value)
            )
    return []


def _kind_server_list(value, ctx, **_):
    if not isinstance(value, (list, tuple)):
        return _one(_got("a list of [host, port, name] entries", value))
    problems = []
    for index, entry in enumerate(value):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            problems.append(((index,), _got("[host, port, name]", entry)))
            continue
        host, port, name = entry
        wrong = []
        if _kind_host(host, ctx):
            wrong.append("host an IP address or a host name")
        if not (_is_int(port) and 1 <= port <= 65535):
            wrong.append("port an integer 1-65535")
        if not _text_ok(name):
            wrong.append("name a non-empty string")
        if wrong:
            problems.append(((index,), _got("[host, port, name] with " + ", ".join(wrong), list(entry))))
    return problems


def _kind_prefix(value, ctx, **_):
    if value == "":
        return []
    ok = isinstance(value, str) and bool(re.match(r"^(/[A-Za-z0-9._~-]+)+$", value))
    expected = (
        'an empty string or a path that starts with "/" and does not end '
        'with "/", e.g. "/omero"'
    )
    return _one(None if ok else _got(expected, value))


def _kind_redis_url(value, ctx, **_):
    # checked only where it is used (rule _redis_url_used)
    return []


#: Properties whose value the formula writes into the unit and nginx's files.
PATH_PROPERTIES = ("omero.web.static_root",)


def _kind_properties(value, ctx, appended=False, any_prefix=False, **_):
    """A mapping of OMERO properties (``config``, ``config_append``, an app's)."""
    if not isinstance(value, Mapping):
        return _one("expected a mapping of property: value, got " + _kind_name(value))
    allow_non_web = ctx.mapdata.get("allow_non_web_config") is True
    problems = []
    for key, item in value.items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z0-9._-]+$", key):
            problems.append(((key,), "expected a property name (letters, digits and ._-)"))
            continue
        if not key.startswith("omero.web.") and not allow_non_web and not any_prefix:
            problems.append(
                (
                    (key,),
                    "expected an omero.web.* property; set "
                    "omero_web:allow_non_web_config: true to manage other properties",
                )
            )
        if key in PATH_PROPERTIES and not appended and item is not None:
            # it reaches the unit and nginx (derive's static_root)
            if not normalized_path(item) or system_path_problem(item.rstrip("/")):
                problems.append(((key,), _got("a directory of OMERO.web's own: " + _PATH_EXPECTED, item)))
        if appended and not isinstance(item, (list, tuple)):
            # never the value: it may be a secret
            problems.append(((key,), "expected a list of values to append, got " + _kind_name(item)))
    return problems


def _kind_appends(value, ctx, **_):
    return _kind_properties(value, ctx, appended=True)


CATALOGUE_KEYS = ("name", "package", "version", "omero_web", "url", "config_append", "settings")


def _catalogue(ctx):
    value = ctx.mapdata.get("app_catalogue")
    return value if isinstance(value, Mapping) else {}


def _kind_app_catalogue(value, ctx, **_):
    if not isinstance(value, Mapping):
        return _one(_got("a mapping of app names to their entries", value))
    problems = []
    for short, entry in value.items():
        if not isinstance(entry, Mapping):
            problems.append(((short,), _got("a mapping (name, package, version...)", entry)))
            continue
        for key in entry:
            if key not in CATALOGUE_KEYS:
                problems.append(((short, key), "unknown key; " + _suggest(key, sorted(CATALOGUE_KEYS))))
        if not _text_ok(entry.get("name"), _MODULE_NAME):
            problems.append(((short, "name"), _got("a python module name", entry.get("name"))))
        if not _text_ok(entry.get("package"), r"^[A-Za-z0-9][A-Za-z0-9._-]*$"):
            problems.append(((short, "package"), _got("a pip package name", entry.get("package"))))
        if entry.get("version") is not None and not _text_ok(str(entry["version"]), r"^[0-9][A-Za-z0-9.]*$"):
            problems.append(((short, "version"), _got("a release, e.g. 8.0.1", entry["version"])))
        if entry.get("omero_web") is not None and (
                not isinstance(entry["omero_web"], str) or _specifier_set(entry["omero_web"]) is None):
            problems.append(((short, "omero_web"), _got('pip version specifiers, e.g. ">=5.6.0"',
                                                        entry["omero_web"])))
        for key, appended in (("config_append", True), ("settings", False)):
            if entry.get(key) is not None:
                for sub, message in _kind_properties(entry[key], ctx, appended=appended, any_prefix=True):
                    problems.append(((short, key) + sub, message))
    return problems


def _kind_apps(value, ctx, **_):
    expected = "a list of apps: catalogue names (figure) or {name, package, config, config_append}"
    if not isinstance(value, (list, tuple)):
        return _one(_got(expected, value))
    problems = []
    names = set()
    catalogue = _catalogue(ctx)
    for index, app in enumerate(value):
        if isinstance(app, str):
            entry = catalogue.get(app)
            if not isinstance(entry, Mapping):
                problems.append(((index,), "unknown app {}; {}".format(
                    _show(app), _suggest(app, sorted(str(k) for k in catalogue)).replace("keys", "apps"))))
                continue
            name = entry.get("name")
            if name in names:
                problems.append(((index,), "duplicate app name {}".format(_show(name))))
            names.add(name)
            problems.extend(((index,), message) for message in _app_omero_web(app, entry, ctx))
            continue
        if not isinstance(app, Mapping):
            problems.append(((index,), _got("a catalogue name or a mapping with name and package", app)))
            continue
        for key in app:
            if key not in APP_KEYS:
                problems.append(((index, key), "unknown key; " + _suggest(key, sorted(APP_KEYS))))
        name = app.get("name")
        if name is None or name == "":
            problems.append(
                (
                    (index, "name"),
                    "required: the app's python module, appended to omero.web.apps "
                    "(e.g. omero_figure)",
                )
            )
        elif not isinstance(name, str) or not _MODULE_NAME.match(name):
            problems.append(((index, "name"), _got("a python module name, e.g. omero_figure", name)))
        elif name in names:
            problems.append(((index, "name"), "duplicate app name {}".format(_show(name))))
        else:
            names.add(name)
        package = app.get("package")
        if package is None or package == "":
            problems.append(
                ((index, "package"), "required: the app's pip requirement (e.g. omero-figure)")
            )
        elif not _text_ok(package, _REQUIREMENT):
            problems.append(((index, "package"), _got("a pip requirement, e.g. omero-figure==8.0.1", package)))
        for key, appended in (("config", False), ("config_append", True)):
            if app.get(key) is not None:
                for sub, message in _kind_properties(app[key], ctx, appended=appended):
                    problems.append(((index, key) + sub, message))
    return problems


def _app_omero_web(short, entry, ctx):
    """An exact omero-web pin the catalogued release does not work with."""
    needs = entry.get("omero_web")
    pinned = re.match(r"^==\s*([0-9][^*,\s]*)$", ctx.schema.version_spec(ctx.mapdata.get("version")))
    wanted = _specifier_set(needs) if isinstance(needs, str) else None
    if not pinned or wanted in (None, True):
        return []
    try:
        if wanted.contains(pinned.group(1), prereleases=True):
            return []
    except InvalidVersion:
        return []
    return ["{} {} needs omero-web{}, but omero_web:version is {}; use its long form with a "
            "release that works with it".format(short, entry.get("version"), needs,
                                                 _show(ctx.mapdata.get("version")))]


# --------------------------------------------------------------------------
# rules across keys: each adds (parts, message) to ``problems``
# --------------------------------------------------------------------------


def _section(data, name):
    value = data.get(name) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _rule_redis_url_used(ctx, problems):
    sessions = _section(ctx.mapdata, "sessions")
    if sessions.get("backend") != "redis":
        return
    url = sessions.get("redis_url")
    expected = "a redis://, rediss:// or unix:// URL"
    if not isinstance(url, str) or not url.strip():
        problems.append(
            (("sessions", "redis_url"), _got(expected + " (sessions:backend is redis)", url))
        )
        return
    try:
        parts = urlsplit(url.strip())
        parts.port  # pylint: disable=pointless-statement
        scheme = parts.scheme.lower()
        valid = scheme in REDIS_SCHEMES and (scheme != "unix" or bool(parts.path))
    except ValueError:
        valid = False
    if not valid:
        problems.append((("sessions", "redis_url"), _got(expected, url)))


#: pillar.example's omero.web.secret_key: documentation, never a site's key.
PLACEHOLDER_SECRET_KEY = "change-me-to-a-long-random-string"


def multi_node(mapdata):
    """Why the site has several nodes (which then share one secret key), or None:
    an external session store, or a load balancer with more than one member
    (or members from the mine)."""
    sessions = _section(mapdata, "sessions")
    if sessions.get("backend") == "redis" and sessions.get("redis_external"):
        return "sessions:redis_external"
    balancer = _section(mapdata, "loadbalancer")
    if balancer.get("mine_target"):
        return "loadbalancer:mine_target"
    members = balancer.get("members")
    if isinstance(members, (list, tuple)) and len(members) > 1:
        return "loadbalancer:members (more than one node)"
    return None


def _rule_shared_secret_key(ctx, problems):
    """Nodes that share a session store (an external Redis) or a load
    balancer sign sessions and CSRF tokens with omero.web.secret_key: each
    needs the same one, set in pillar (else each node makes its own and
    rejects the others')."""
    reason = multi_node(ctx.mapdata)
    if reason is None:
        return
    key = _section(ctx.mapdata, "config").get("omero.web.secret_key")
    where = ("config", "omero.web.secret_key")
    why = ("{}: the nodes of a multi-node site must share one secret key; "
           "set the same long random value on every node".format(reason))
    if not isinstance(key, str) or not key.strip():
        problems.append((where, "required: " + why))
    elif key.strip() == PLACEHOLDER_SECRET_KEY:
        problems.append((where, "is pillar.example's placeholder, not a key (" + why + ")"))


def _rule_loadbalancer(ctx, problems):
    """A drained member must be one the list names (unless the mine adds
    members: checked when the load balancer renders), and not every one."""
    balancer = _section(ctx.mapdata, "loadbalancer")
    drain = balancer.get("drain")
    members = balancer.get("members")
    if not isinstance(drain, (list, tuple)) or not isinstance(members, (list, tuple)):
        return
    names = [m.get("name") for m in members if isinstance(m, Mapping)]
    if not balancer.get("mine_target"):
        unknown = [name for name in drain if name not in names]
        if unknown:
            problems.append((("loadbalancer", "drain"), "names no member of loadbalancer:members: "
                             + ", ".join(map(str, unknown))))
        elif names and set(names) <= set(drain):
            problems.append((("loadbalancer", "drain"),
                             "drains every member: the site would serve nothing"))


def _rule_worker_class_options(ctx, problems):
    gunicorn = _section(ctx.mapdata, "gunicorn")
    # options the user set, not defaults of a parameters layer
    raw = _section(ctx.pillar, "gunicorn") if ctx.pillar is not None else gunicorn
    worker_class = gunicorn.get("worker_class")
    classes = ctx.table["gunicorn"]["worker_class"].options["choices"]
    effective = worker_class if worker_class in classes else None
    if worker_class is None:
        effective = "sync"
    # (an option of the other worker class, what to do instead)
    wrong = {
        "gevent": ("threads", "sync", "use worker_connections, or remove threads"),
        "sync": ("worker_connections", "gevent", "use threads, or set worker_class: gevent"),
    }.get(effective)
    if wrong and raw.get(wrong[0]) is not None:
        option, other, advice = wrong
        problems.append((("gunicorn", option), 'only applies to {} workers, but worker_class is "{}" ({})'
                         .format(other, effective, advice)))


def _rule_cors(ctx, problems):
    cors = _section(ctx.mapdata, "cors")
    if cors.get("allow_all") is True and cors.get("whitelist"):
        problems.append((("cors", "allow_all"), "allow_all: true and a non-empty cors:whitelist "
                                                "exclude each other; use one of them"))


def _rule_nginx(ctx, problems):
    nginx = _section(ctx.mapdata, "nginx")
    tls = _section(nginx, "tls")
    cert, key = tls.get("cert"), tls.get("key")
    if bool(cert) != bool(key):
        problems.append(
            (
                ("nginx", "tls", "key" if cert else "cert"),
                "required: nginx:tls needs both cert and key (paths on the minion "
                "or salt:// sources)",
            )
        )
    if cert and key and nginx.get("location_only"):
        problems.append(
            (
                ("nginx", "tls"),
                "not used with location_only: true (your own server block "
                "terminates TLS); remove tls or location_only",
            )
        )
    if nginx.get("enabled") is not True or nginx.get("location_only"):
        return
    port, tls_port = nginx.get("port"), tls.get("port")
    gunicorn_port = _section(ctx.mapdata, "gunicorn").get("port")
    clash = "expected a port other than {}, got {} for both"
    if _is_int(port) and port == gunicorn_port:
        problems.append((("nginx", "port"), clash.format("gunicorn:port", port)))
    if cert and key and _is_int(tls_port):
        if tls_port == gunicorn_port:
            problems.append((("nginx", "tls", "port"), clash.format("gunicorn:port", tls_port)))
        if tls_port == port:
            problems.append((("nginx", "tls", "port"), clash.format("nginx:port", tls_port)))


def _rule_public(ctx, problems):
    public = _section(ctx.mapdata, "public")
    if public.get("enabled") is not True:
        return
    for key in ("user", "password"):
        if public.get(key) in (None, ""):
            problems.append((("public", key), "required: public:enabled needs user and password "
                                               "(the OMERO account anonymous visitors use)"))
    server_id = public.get("server_id")
    servers = ctx.mapdata.get("server_list")
    if _is_int(server_id) and isinstance(servers, (list, tuple)) and server_id > len(servers):
        problems.append((("public", "server_id"), _got(
            "a position in server_list (1-{})".format(len(servers)), server_id)))


#: The header OMERO's generated nginx location sets to its own scheme.
NGINX_PROTO_HEADER = "x-forwarded-proto"


def _rule_proxy(ctx, problems):
    proxy = _section(ctx.mapdata, "proxy")
    header = proxy.get("https_header")
    nginx = _section(ctx.mapdata, "nginx")
    if proxy.get("https") is True and isinstance(header, str) and nginx.get("enabled") is True \
            and header.strip().lower() == NGINX_PROTO_HEADER:
        problems.append((("proxy", "https_header"), _got(
            "a header other than X-Forwarded-Proto: the formula's nginx (OMERO's "
            "location) sets that one to its own scheme, http; let the outer proxy set "
            "e.g. X-Forwarded-Proto-Omero-Web", header)))


def _inside(path, directory):
    return isinstance(path, str) and isinstance(directory, str) and (
        path == directory or path.startswith(directory.rstrip("/") + "/")
    )


def _rule_root_runs_root_files(ctx, problems):
    """
    What root runs (the venv's python, the IcePy wheel it pip-installs) must
    not live in OMERODIR, which the service user owns: that user could swap it.
    """
    omerodir = ctx.mapdata.get("omerodir")
    for parts in (("venv",), ("ice", "cache_dir")):
        value = ctx.mapdata.get(parts[0]) if len(parts) == 1 else _section(ctx.mapdata, parts[0]).get(parts[1])
        if _inside(value, omerodir) or _inside(omerodir, value):
            problems.append(
                (parts, "expected a directory outside omero_web:omerodir (the service user "
                        "owns OMERODIR, and root runs what is in {})".format(parts[-1]))
            )


def _control_characters(value, parts, problems):
    """Every string in the map, at any depth (keys too): no control characters or newlines."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            problems.append((parts, "contains a control character or a newline"))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _CONTROL.search(key):
                problems.append((parts, "a key contains a control character or a newline"))
                continue
            _control_characters(item, parts + (key,), problems)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _control_characters(item, parts + (index,), problems)


def _rule_no_control_characters(ctx, problems):
    found = []
    _control_characters({k: v for k, v in ctx.mapdata.items() if k != "derived"}, (), found)
    known = {parts for parts, _ in problems}
    problems.extend(item for item in found if item[0] not in known)


RULES = (
    _rule_redis_url_used,
    _rule_shared_secret_key,
    _rule_loadbalancer,
    _rule_worker_class_options,
    _rule_cors,
    _rule_nginx,
    _rule_public,
    _rule_proxy,
    _rule_root_runs_root_files,
    _rule_no_control_characters,
)


# --------------------------------------------------------------------------
# the typo guard
# --------------------------------------------------------------------------


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


def _guard(raw, schema, parts, problems, top=None):
    """Every key of ``raw`` must be in ``schema``; ``lookup`` is checked the same way."""
    candidates = sorted(str(key) for key in schema)
    for key, value in raw.items():
        node = schema.get(key)
        if node is None:
            problems.append((parts + (key,), "unknown key; " + _suggest(key, candidates)))
        elif isinstance(node, Mapping) and isinstance(value, Mapping):
            _guard(value, node, parts + (key,), problems, top)
        elif key == "lookup" and not parts and isinstance(value, Mapping):
            # lookup overrides the platform parameters: the same keys
            _guard(value, {k: v for k, v in (top or schema).items() if k != "lookup"}, (), problems)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


class _Context:
    """What a checker may look at besides its own value."""

    def __init__(self, mapdata, pillar, schema):
        self.mapdata = mapdata
        self.pillar = pillar
        self.schema = schema
        self.table = schema.table()


def _check_tree(data, schema, parts, ctx, problems):
    for name, node in schema.items():
        value = data.get(name)
        if value is None:
            continue
        here = parts + (name,)
        if isinstance(node, Mapping):
            if not isinstance(value, Mapping):
                problems.append((here, _got("a mapping", value)))
                continue
            _check_tree(value, node, here, ctx, problems)
            continue
        checker = globals()["_kind_" + node.kind]
        for sub, message in checker(value, ctx, **node.options):
            problems.append((here + tuple(sub), message))


def errors(mapdata, pillar, schema):
    """
    Every problem of the merged map, one message per problem (``[]`` when
    valid).

    schema
        the omero_web_schema module (an object with its ``table``,
        ``version_spec`` and ``join_specifiers``).

    mapdata
        the merged map (parameters/ layers + lookup + pillar).
    pillar
        the raw ``omero_web`` pillar: its keys go through the typo guard, and
        options only the user can set wrongly (gevent with threads) are
        judged on it. None: no typo guard, the map is judged alone.
    """
    if not isinstance(mapdata, Mapping):
        return ["{}: expected a mapping, got {}".format(ROOT, _kind_name(mapdata))]
    problems = []
    table = schema.table()
    if pillar is not None:
        if isinstance(pillar, Mapping):
            _guard(pillar, table, (), problems)
        else:
            return ["{}: expected a mapping, got {}".format(ROOT, _kind_name(pillar))]
    ctx = _Context(mapdata, pillar, schema)
    _check_tree(mapdata, table, (), ctx, problems)
    for rule in RULES:
        rule(ctx, problems)
    return _ordered(problems, table)


def _ordered(problems, table):
    """Messages in schema order (the order of pillar.example), typo guard first."""
    order = {}
    for index, path in enumerate(table):
        order.setdefault(path, index)

    def rank(item):
        parts = item[0]
        top = ":".join(str(p) for p in parts[:1])
        return order.get(top, -1)

    return [
        "{}: {}".format(_path(*parts), message)
        for parts, message in sorted(problems, key=rank)
    ]

