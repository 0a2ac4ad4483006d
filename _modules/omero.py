"""
Execution module for OMERO.web's ``omero`` command line and its configuration.

Wraps ``omero config`` (``$OMERODIR/etc/grid/config.xml``) and the
``omero web`` commands of an OMERO.web installation in a Python virtualenv,
the way :mod:`salt.modules.git` wraps ``git``.

:depends: omero-py and omero-web installed in a virtualenv (``venv``)

Every function accepts the keyword arguments ``user``, ``omerodir`` and
``venv``. When they are not given they default to pillar
``omero_web:user``, ``omero_web:omerodir`` and ``omero_web:venv``, then to
``omero-web``, ``/opt/omero/web/omero-web`` and ``/opt/omero/web/venv3``.

How it works:

* Every ``omero`` process goes through one helper, ``_omero_run``: it runs
  ``<venv>/bin/omero ...`` (or ``<venv>/bin/python -c ...`` for the batch
  writer) as ``user`` (the ``omero`` CLI refuses to run as root), with
  ``OMERODIR`` set, the venv's ``bin`` first on ``PATH`` and umask ``027``
  (``config.xml`` may hold secrets). A failure raises
  :py:exc:`CommandExecutionError <salt.exceptions.CommandExecutionError>`
  carrying the command's own message. The number of processes spawned is
  counted in ``__context__["omero.processes"]``.
* ``config.xml`` is read in-process (the ``omero`` CLI rewrites the file even
  for ``omero config get``, and omero replaces it atomically on every write),
  so checking whether anything needs to change spawns no process at all.
* Writes go through omero-py's own ``omero.config.ConfigXml`` in ONE venv
  process per batch, whatever the number of keys; the file is read back
  afterwards and the write fails if it does not hold what was written.

Values are written the way OMERO.web parses them: lists and dicts as compact
JSON, booleans as ``true``/``false`` (``omeroweb.utils.parse_boolean`` reads
``true``, ``t`` and ``1`` as true), numbers as their text, strings as they
are. They are compared by meaning, not by text: ``{"a": 1}`` equals
``{"a":1}``, ``True`` equals ``true`` and ``True``, ``4080`` equals
``"4080"``.
"""

import glob
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero"

DEFAULT_USER = "omero-web"
DEFAULT_OMERODIR = "/opt/omero/web/omero-web"
DEFAULT_VENV = "/opt/omero/web/venv3"

# PATH for omero processes, after the venv's bin directory. The minion's own
# PATH is not inherited: it may point into the minion's bundled python.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# omero.config.ConfigXml's bookkeeping: the active profile lives in the
# __ACTIVE__ block; these two keys are never user properties.
ACTIVE_BLOCK = "__ACTIVE__"
PROFILE_KEY = "omero.config.profile"
VERSION_KEY = "omero.config.version"
INTERNAL_KEYS = (PROFILE_KEY, VERSION_KEY)

# The property names `omero config set` accepts (prefs.assert_valid_property_name).
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_MAX_BODY_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
_MARKER = "@@omero-salt@@"
_CONTEXT_COUNT = "omero.processes"
_CONTEXT_DEFAULTS = "omero.defaults"

# Python run in the venv by config_batch. Reads the request (JSON) on stdin
# so that values - secrets included - never appear on a command line or in
# the minion's log. Uses omero-py's own ConfigXml: exclusive lock, atomic
# write (temp file + rename), the same file layout as `omero config`.
_WRITER = r"""
import json, os, sys, time
req = json.loads(sys.stdin.read())
os.environ.pop("OMERO_CONFIG", None)
import portalocker
from omero.config import ConfigXml
path = req["path"]
grid = os.path.dirname(path)
try:
    if not os.path.isdir(grid):
        os.makedirs(grid)
except OSError as exc:
    sys.stderr.write("Cannot create %s: %s\n" % (grid, exc))
    sys.exit(2)
deadline = time.time() + 10
while True:
    try:
        cfg = ConfigXml(path)
        break
    except portalocker.LockException:
        if time.time() > deadline:
            sys.stderr.write("Could not acquire lock on %s\n" % path)
            sys.exit(112)
        time.sleep(0.2)
    except Exception as exc:
        sys.stderr.write("Cannot open %s: %s\n" % (path, exc))
        sys.exit(113)
try:
    cur = cfg.as_map()
    stale = sorted(k for k, v in req["expected"].items() if cur.get(k) != v)
    if stale:
        cfg.save_on_close = False
        sys.stderr.write(
            "%s changed since it was read (%s): nothing written\n"
            % (path, ", ".join(stale)))
        sys.exit(3)
    for key, value in req["new"].items():
        if value is None:
            if key in cur:
                del cfg[key]
        else:
            cfg[key] = value
finally:
    cfg.close()
sys.stdout.write("\n" + req["marker"] + json.dumps(sorted(req["new"])) + "\n")
"""

# Python run in the venv to get OMERO.web's built-in default of list
# properties, exactly as `omero config append` computes it
# (omero.plugins.prefs.PrefsControl.get_omeroweb_default).
_DEFAULTS = r"""
import json, sys
marker = sys.argv[1]
try:
    from omeroweb import settings
except Exception as exc:
    sys.stderr.write("Cannot import omeroweb.settings: %s\n" % exc)
    sys.exit(2)
out = {}
for key in sys.argv[2:]:
    setting = settings.CUSTOM_SETTINGS_MAPPINGS.get(key)
    try:
        default = setting[2](setting[1]) if setting else []
    except Exception as exc:
        sys.stderr.write(
            "Cannot retrieve default value for property %s: %s\n" % (key, exc))
        sys.exit(3)
    if not isinstance(default, list):
        sys.stderr.write("Property %s is not a list\n" % key)
        sys.exit(4)
    out[key] = default
sys.stdout.write("\n" + marker + json.dumps(out) + "\n")
"""


def __virtual__():
    if os.name != "posix":
        return (False, "The omero module needs a POSIX host")
    return __virtualname__


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _pillar_settings():
    try:
        data = __pillar__.get("omero_web", {})
    except NameError:  # pragma: no cover - always injected by the loader
        data = {}
    return data if isinstance(data, dict) else {}


def _resolve(user=None, omerodir=None, venv=None):
    """
    Return (user, omerodir, venv): the arguments, else pillar, else defaults.
    """
    pillar = _pillar_settings()
    user = user or pillar.get("user") or DEFAULT_USER
    omerodir = omerodir or pillar.get("omerodir") or DEFAULT_OMERODIR
    venv = venv or pillar.get("venv") or DEFAULT_VENV
    if not isinstance(user, str) or not user.strip():
        raise SaltInvocationError(f"user: expected a user name, got {user!r}")
    for name, value in (("omerodir", omerodir), ("venv", venv)):
        if not isinstance(value, str) or not os.path.isabs(value):
            raise SaltInvocationError(
                f"{name}: expected an absolute path, got {value!r}"
            )
    return user, os.path.normpath(omerodir), os.path.normpath(venv)


def _count_process():
    __context__[_CONTEXT_COUNT] = __context__.get(_CONTEXT_COUNT, 0) + 1


def _omero_run(
    args, user, omerodir, venv, script=None, stdin=None, what=None, quiet=False
):
    """
    Run one omero process and return its stdout.

    ``script`` unset: ``<venv>/bin/omero ARGS``; set: ``<venv>/bin/python -c
    SCRIPT ARGS``. Runs as ``user`` with ``OMERODIR``, the venv first on
    ``PATH``, umask 027, no shell. Raises CommandExecutionError with the
    command's stderr when it fails. ``quiet`` keeps the command and its output
    out of the minion's log.
    """
    try:
        import pwd  # pylint: disable=import-outside-toplevel

        if pwd.getpwnam(user).pw_uid == 0:
            raise SaltInvocationError(
                f"user: omero must not run as root (user {user!r} has uid 0)"
            )
    except KeyError:
        raise CommandExecutionError(f"User '{user}' is not available")
    bindir = os.path.join(venv, "bin")
    args = [str(arg) for arg in args]
    if script is None:
        exe = os.path.join(bindir, "omero")
        cmd = [exe] + args
        what = what or "omero " + " ".join(args[:3])
    else:
        exe = os.path.join(bindir, "python")
        cmd = [exe, "-c", script] + args
        what = what or "omero (venv python)"
    if not os.access(exe, os.X_OK):
        raise CommandExecutionError(
            f"{exe} not found: is OMERO.web installed in the virtualenv {venv}?"
        )
    env = {"OMERODIR": omerodir, "PATH": bindir + os.pathsep + SYSTEM_PATH}
    cwd = omerodir if os.path.isdir(omerodir) else "/"
    _count_process()
    log.debug("omero: running %s as %s (OMERODIR=%s)", what, user, omerodir)
    result = __salt__["cmd.run_all"](
        cmd,
        runas=user,
        cwd=cwd,
        env=env,
        umask="027",
        python_shell=False,
        stdin=stdin,
        ignore_retcode=True,
        output_loglevel="quiet" if quiet else "debug",
    )
    if result["retcode"] != 0:
        message = (result.get("stderr") or "").strip() or (
            result.get("stdout") or ""
        ).strip()
        raise CommandExecutionError(
            "{} failed (exit code {}): {}".format(
                what, result["retcode"], message or "no output"
            )
        )
    return result.get("stdout") or ""


# Run when an `omero web` command fails without saying why: the CLI reports
# an error importing omeroweb.settings (e.g. a property value OMERO.web
# cannot parse) as "Error printing text" (it dies with the exception object
# instead of its text).
_SETTINGS_CHECK = r"""
import sys
try:
    import omeroweb.settings  # noqa: F401
except Exception as exc:
    sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
    sys.exit(1)
"""


def _omero_web_run(args, user, omerodir, venv):
    """
    ``_omero_run`` for ``omero web ...``, with the real reason when the CLI
    only says "Error printing text".
    """
    try:
        return _omero_run(args, user, omerodir, venv)
    except CommandExecutionError as exc:
        if "Error printing text" not in str(exc):
            raise
        try:
            _omero_run(
                [],
                user,
                omerodir,
                venv,
                script=_SETTINGS_CHECK,
                what="omero: loading omeroweb.settings",
            )
        except CommandExecutionError as reason:
            raise CommandExecutionError(
                f"{exc}. OMERO.web cannot load its settings: {reason}"
            ) from None
        raise


def _marked_json(stdout, what):
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER) :])
    raise CommandExecutionError(f"{what}: unexpected output: {stdout[-500:]!r}")


def _config_path(omerodir):
    return os.path.join(omerodir, "etc", "grid", "config.xml")


def _read_config(omerodir):
    """
    Properties of the active profile of config.xml, as {key: text}, read
    in-process like omero.config.ConfigXml does (no omero process). A missing
    file (or OMERODIR) reads as empty.
    """
    path = _config_path(omerodir)
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CommandExecutionError(f"Cannot read {path}: {exc}")
    if not text.strip():
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CommandExecutionError(f"Cannot parse {path}: {exc}")
    blocks = {}
    for block in root.findall("./properties"):
        blocks.setdefault(block.get("id"), block)
    profile = "default"
    active = blocks.get(ACTIVE_BLOCK)
    if active is not None:
        for prop in active.findall("./property"):
            if prop.get("name") == PROFILE_KEY:
                profile = prop.get("value", "")
    block = blocks.get(profile)
    if block is None:
        return {}
    props = {}
    for prop in block.findall("./property"):
        name = prop.get("name")
        if name is not None and name not in INTERNAL_KEYS:
            props[name] = prop.get("value", "")
    return props


def _serialize(value, key=None):
    """
    The text OMERO.web parses back into ``value``.
    """
    where = f"{key}: " if key else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise SaltInvocationError(f"{where}value is not JSON-serialisable: {exc}")
    if value is None:
        raise SaltInvocationError(f"{where}None is not a value (unset the key instead)")
    raise SaltInvocationError(
        f"{where}unsupported value type {type(value).__name__}: {value!r}"
    )


def _decode(text):
    """
    The meaning of a stored value: JSON when it decodes to something other
    than a string, a boolean for any spelling of true/false, else the text.
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if isinstance(value, str):
        return text
    return value


def _canonical(value):
    """
    A text that is equal for equal meanings (dict order, spacing, bool spelling).
    """
    if isinstance(value, str):
        value = _decode(value)
        if isinstance(value, str):
            return "s:" + value
    return "j:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same(current, desired):
    """
    Whether two values (stored texts or Python values) mean the same to
    OMERO.web: ``{"a": 1}`` equals ``'{"a":1}'``, ``True`` equals ``"true"``
    and ``"True"``, ``4080`` equals ``"4080"``.
    """
    if current is None or desired is None:
        return current is None and desired is None
    if not isinstance(current, str):
        current = _serialize(current)
    if not isinstance(desired, str):
        desired = _serialize(desired)
    return current == desired or _canonical(current) == _canonical(desired)


def _element_key(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _check_key(key):
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SaltInvocationError(f"Illegal property name: {key!r}")
    if key in INTERNAL_KEYS:
        raise SaltInvocationError(f"{key} is managed by omero itself")
    return key


def _check_mapping(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SaltInvocationError(
            f"{name}: expected a mapping of property names, got {type(value).__name__}"
        )
    for key in value:
        _check_key(key)
    return value


def _as_elements(value):
    """
    Append/remove values: a list is a list of elements, anything else one element.
    """
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    for item in items:
        try:
            json.dumps(item)
        except (TypeError, ValueError) as exc:
            raise SaltInvocationError(f"list element {item!r} is not JSON: {exc}")
    return items


def _normalize_args(properties, appends, removals, unsets):
    properties = dict(_check_mapping("properties", properties))
    appends = {
        k: _as_elements(v) for k, v in _check_mapping("appends", appends).items()
    }
    removals = {
        k: _as_elements(v) for k, v in _check_mapping("removals", removals).items()
    }
    if unsets is None:
        unsets = []
    elif isinstance(unsets, str):
        unsets = [unsets]
    elif not isinstance(unsets, (list, tuple, set)):
        raise SaltInvocationError("unsets: expected a list of property names")
    unsets = [_check_key(key) for key in unsets]
    # A property given as None in `properties` means "unset it".
    for key in [k for k, v in properties.items() if v is None]:
        del properties[key]
        unsets.append(key)
    for key, value in properties.items():
        _serialize(value, key)
    both = sorted(set(properties) & (set(appends) | set(removals) | set(unsets)))
    if both:
        raise SaltInvocationError(
            "set as a whole and also appended/removed/unset: " + ", ".join(both)
        )
    both = sorted(set(unsets) & (set(appends) | set(removals)))
    if both:
        raise SaltInvocationError("both unset and appended/removed: " + ", ".join(both))
    for key in set(appends) & set(removals):
        common = {_element_key(v) for v in appends[key]} & {
            _element_key(v) for v in removals[key]
        }
        if common:
            raise SaltInvocationError(f"{key}: the same value is appended and removed")
    return properties, appends, removals, sorted(set(unsets))


def _defaults_cache_file(venv):
    """
    Where OMERO.web's default lists are kept between runs: in the minion's
    cachedir, one file per venv and omero-web version (the defaults only
    change with omero-web), so a no-op run spawns no process for them.
    """
    cachedir = (globals().get("__opts__") or {}).get("cachedir")
    installed = version(venv=venv)
    if not cachedir or not installed:
        return None
    import hashlib  # pylint: disable=import-outside-toplevel

    tag = hashlib.sha256(venv.encode("utf-8")).hexdigest()[:12]
    return os.path.join(cachedir, "omero", "defaults-%s-%s.json" % (tag, installed))


def _list_defaults(keys, user, omerodir, venv):
    """
    OMERO.web's built-in default lists for ``keys`` (cached per run, and on
    disk per omero-web version).
    """
    cache = __context__.setdefault(_CONTEXT_DEFAULTS, {})
    missing = sorted(k for k in keys if (venv, k) not in cache)
    cache_file = _defaults_cache_file(venv) if missing else None
    if cache_file:
        try:
            with open(cache_file, encoding="utf-8") as handle:
                stored = json.load(handle)
            for key in missing:
                if isinstance(stored.get(key), list):
                    cache[(venv, key)] = stored[key]
        except (OSError, ValueError):
            pass
        missing = [k for k in missing if (venv, k) not in cache]
    if missing:
        out = _omero_run(
            [_MARKER] + missing,
            user,
            omerodir,
            venv,
            script=_DEFAULTS,
            what="omero: reading OMERO.web's default values",
        )
        values = _marked_json(out, "omero defaults")
        for key in missing:
            cache[(venv, key)] = values[key]
        if cache_file:
            stored = {k: v for (env, k), v in cache.items() if env == venv}
            try:
                os.makedirs(os.path.dirname(cache_file), mode=0o700, exist_ok=True)
                tmp = cache_file + ".tmp"
                with open(tmp, "w", encoding="utf-8") as handle:
                    json.dump(stored, handle)
                os.replace(tmp, cache_file)
            except OSError as exc:
                log.debug("omero: cannot keep default lists in %s: %s", cache_file, exc)
    return {k: list(cache[(venv, k)]) for k in keys}


def _current_list(key, text):
    try:
        value = json.loads(text)
    except ValueError:
        raise CommandExecutionError(f"{key}: No JSON object could be decoded")
    if not isinstance(value, list):
        raise CommandExecutionError(f"Property {key} is not a list")
    return value


def _plan_texts(
    current,
    properties,
    appends,
    removals,
    unsets,
    prune,
    prune_prefix,
    user,
    omerodir,
    venv,
):
    """
    {key: (old_text, new_text)} of what must change; texts None mean unset.
    """
    changes = {}
    for key, value in properties.items():
        text = _serialize(value, key)
        old = current.get(key)
        if old is None or not _same(old, text):
            changes[key] = (old, text)

    list_keys = sorted(set(appends) | set(removals))
    # With prune, an appended list is exactly OMERO.web's default list plus
    # the declared values: values appended earlier and no longer declared
    # (or added by hand) are dropped.
    need_defaults = [
        k
        for k in list_keys
        if k.startswith("omero.web.") and (k not in current or (prune and k in appends))
    ]
    defaults = _list_defaults(need_defaults, user, omerodir, venv) if need_defaults else {}
    for key in list_keys:
        old = current.get(key)
        if old is not None:
            base = _current_list(key, old)
        else:
            base = defaults.get(key, [])
        new = list(base)
        if prune and key in appends:
            new = list(defaults.get(key, []))
        drop = {_element_key(v) for v in removals.get(key, [])}
        if drop:
            new = [v for v in new if _element_key(v) not in drop]
        present = {_element_key(v) for v in new}
        for value in appends.get(key, []):
            if _element_key(value) not in present:
                new.append(value)
                present.add(_element_key(value))
        if [_element_key(v) for v in new] == [_element_key(v) for v in base]:
            # `omero config append --set` of values already there changes
            # nothing, not even an unset key.
            continue
        changes[key] = (old, json.dumps(new, separators=(",", ":")))

    for key in unsets:
        if key in current:
            changes[key] = (current[key], None)

    if prune:
        declared = set(properties) | set(appends) | set(removals) | set(unsets)
        for key in sorted(current):
            if key.startswith(prune_prefix or "") and key not in declared:
                changes[key] = (current[key], None)
    return changes


def _display(changes):
    return {
        key: {"old": _decode(old), "new": _decode(new)}
        for key, (old, new) in sorted(changes.items())
    }


# --------------------------------------------------------------------------
# omero config
# --------------------------------------------------------------------------


def config_get(key, raw=False, user=None, omerodir=None, venv=None):
    """
    Return the value of one property of the active profile, or ``None`` when
    it is not set. Read in-process: spawns no ``omero`` process.

    key
        The property name, e.g. ``omero.web.prefix``.

    raw : False
        Return the text as stored instead of its meaning (JSON decoded,
        booleans as ``True``/``False``).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_get omero.web.server_list
        salt '*' omero.config_get omero.web.prefix raw=True omerodir=/srv/omero-web
    """
    _check_key(key)
    user, omerodir, venv = _resolve(user, omerodir, venv)
    text = _read_config(omerodir).get(key)
    return text if raw else _decode(text)


def _is_secret(key):
    lowered = key.lower()
    return (
        lowered == "omero.web.secret_key"
        or lowered.endswith("password")
        or lowered.endswith("pass")
    )


def config_get_all(raw=False, show_password=False, user=None, omerodir=None, venv=None):
    """
    Return all properties of the active profile as a dict (in-process read,
    no ``omero`` process). ``omero.config.*`` bookkeeping keys are left out.

    raw : False
        Return the texts as stored instead of their meaning.

    show_password : False
        Like ``omero config get --show-password``: without it, the values of
        secrets (``omero.web.secret_key``, keys ending in ``password`` or
        ``pass``) are shown as ``********``. ``config_get`` of a single key
        always returns its value.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_get_all
        salt '*' omero.config_get_all raw=True show_password=True
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    props = _read_config(omerodir)
    result = {}
    for key, text in sorted(props.items()):
        if not show_password and _is_secret(key) and text:
            result[key] = "********"
        else:
            result[key] = text if raw else _decode(text)
    return result


def _plan(properties, appends, removals, unsets, prune, prune_prefix, user, omerodir, venv):
    """
    The changes ``{key: (old_text, new_text)}`` that the arguments ask for
    against config.xml as it is now, and the resolved (user, omerodir, venv).
    """
    props, appends, removals, unsets = _normalize_args(
        properties, appends, removals, unsets
    )
    user, omerodir, venv = _resolve(user, omerodir, venv)
    changes = _plan_texts(
        _read_config(omerodir),
        props,
        appends,
        removals,
        unsets,
        prune,
        prune_prefix,
        user,
        omerodir,
        venv,
    )
    return changes, (user, omerodir, venv)


def config_plan(
    properties=None,
    appends=None,
    removals=None,
    unsets=None,
    prune=False,
    prune_prefix="omero.web.",
    user=None,
    omerodir=None,
    venv=None,
):
    """
    Return what :py:func:`config_batch` would change, as
    ``{key: {"old": value, "new": value}}`` (``None`` means unset), without
    writing anything.

    config.xml is read in-process; an ``omero`` (venv python) process is
    spawned only to learn OMERO.web's built-in default of a list property that
    is appended to (or removed from) while unset, as ``omero config append``
    starts from that default.

    properties
        ``{key: value}`` to set. A value of ``None`` unsets the key.

    appends
        ``{key: [values]}`` to append to list properties, ``omero config
        append --set`` semantics: a value already in the list is not added
        again. A non-list value is one element.

    removals
        ``{key: [values]}`` to remove from list properties (every occurrence;
        a value not in the list is no change).

    unsets
        List of keys to unset.

    prune : False
        Also unset every property starting with ``prune_prefix`` that is not
        named in ``properties``, ``appends``, ``removals`` or ``unsets``.

    prune_prefix : omero.web.
        The namespace ``prune`` cleans.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_plan properties='{"omero.web.prefix": "/omero"}'
        salt '*' omero.config_plan appends='{"omero.web.apps": ["omero_figure"]}' prune=True
    """
    changes, _ = _plan(
        properties, appends, removals, unsets, prune, prune_prefix, user, omerodir, venv
    )
    return _display(changes)


def config_batch(
    properties=None,
    appends=None,
    removals=None,
    unsets=None,
    prune=False,
    prune_prefix="omero.web.",
    user=None,
    omerodir=None,
    venv=None,
):
    """
    Apply sets, appends, removals, unsets (and ``prune``) in one go and
    return the changes made, ``{key: {"old": value, "new": value}}``.

    Takes the same arguments as :py:func:`config_plan`. Nothing is spawned
    when nothing has to change; otherwise all changes are written by ONE venv
    python process through ``omero.config.ConfigXml`` (exclusive lock, atomic
    replace), which refuses to write if config.xml changed since it was read.
    The file is then read back; a value that differs raises
    CommandExecutionError.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_batch properties='{"omero.web.prefix": "/omero", "omero.web.debug": false}' appends='{"omero.web.apps": ["omero_figure"]}'
    """
    changes, (user, omerodir, venv) = _plan(
        properties, appends, removals, unsets, prune, prune_prefix, user, omerodir, venv
    )
    if not changes:
        return {}
    request = {
        "path": _config_path(omerodir),
        "marker": _MARKER,
        "expected": {key: old for key, (old, _) in changes.items()},
        "new": {key: new for key, (_, new) in changes.items()},
    }
    out = _omero_run(
        [],
        user,
        omerodir,
        venv,
        script=_WRITER,
        stdin=json.dumps(request),
        what="omero config (batch write)",
        quiet=True,
    )
    _marked_json(out, "omero config (batch write)")
    after = _read_config(omerodir)
    wrong = sorted(key for key, (_, new) in changes.items() if after.get(key) != new)
    if wrong:
        raise CommandExecutionError(
            "config.xml does not hold the written value of: " + ", ".join(wrong)
        )
    log.debug("omero: changed %s", ", ".join(sorted(changes)))
    return _display(changes)


def config_set(key, value, user=None, omerodir=None, venv=None):
    """
    Set a property (``omero config set KEY VALUE``), unless it already has
    that meaning. Returns the changes, ``{}`` when nothing changed.

    Lists and dicts are written as JSON, booleans as ``true``/``false``. The
    value is passed to the writer on stdin, never on a command line.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_set omero.web.prefix /omero
        salt '*' omero.config_set omero.web.server_list '[["localhost", 4064, "omero"]]'
    """
    _check_key(key)
    if value is None:
        raise SaltInvocationError("value: None is not a value; use omero.config_unset")
    return config_batch(
        properties={key: value}, user=user, omerodir=omerodir, venv=venv
    )


def config_append(key, value, user=None, omerodir=None, venv=None):
    """
    Append a value to a list property unless it is already there (``omero
    config append --set KEY VALUE``). On an unset ``omero.web.*`` key the list
    starts from OMERO.web's built-in default, as the CLI does. Returns the
    changes.

    value
        The element to append (a string, number, list or dict); a list given
        here is ONE element (e.g. a ``omero.web.ui.top_links`` entry).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_append omero.web.apps omero_figure
        salt '*' omero.config_append omero.web.middleware '{"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}'
    """
    _check_key(key)
    return config_batch(
        appends={key: [value]}, user=user, omerodir=omerodir, venv=venv
    )


def config_remove(key, value, user=None, omerodir=None, venv=None):
    """
    Remove a value from a list property (``omero config remove KEY VALUE``).
    On an unset ``omero.web.*`` key the built-in default list is the starting
    point, as for the CLI. A value that is not in the list is no change.
    Returns the changes.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_remove omero.web.apps omero_figure
    """
    _check_key(key)
    return config_batch(
        removals={key: [value]}, user=user, omerodir=omerodir, venv=venv
    )


def config_unset(key, user=None, omerodir=None, venv=None):
    """
    Unset a property (``omero config set KEY`` with no value). Returns the
    changes, ``{}`` when it was not set.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_unset omero.web.debug
    """
    _check_key(key)
    return config_batch(unsets=[key], user=user, omerodir=omerodir, venv=venv)


# --------------------------------------------------------------------------
# omero web
# --------------------------------------------------------------------------


def web_config_nginx(
    http=None,
    servername=None,
    max_body_size=None,
    location=False,
    user=None,
    omerodir=None,
    venv=None,
):
    """
    Return the nginx configuration that ``omero web config nginx`` (or
    ``nginx-location`` with ``location=True``) generates for the current
    configuration.

    http
        The port nginx listens on (``--http``).

    servername
        The ``server_name`` (``--servername``).

    max_body_size
        ``client_max_body_size`` (``--max-body-size``), e.g. ``0`` or ``10m``.

    location : False
        Generate only the location blocks (``nginx-location``), to include in
        a server block of your own.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.web_config_nginx http=80 servername=omero.example.org
        salt '*' omero.web_config_nginx location=True
    """
    args = ["web", "config", "nginx-location" if location else "nginx"]
    if http is not None:
        if isinstance(http, bool) or not str(http).isdigit() or not 0 < int(http) < 65536:
            raise SaltInvocationError(f"http: expected a TCP port, got {http!r}")
        args += ["--http", str(int(http))]
    if servername is not None:
        if not isinstance(servername, str) or not servername.strip() or ";" in servername:
            raise SaltInvocationError(f"servername: invalid server name {servername!r}")
        args += ["--servername", servername]
    if max_body_size is not None:
        if isinstance(max_body_size, bool) or not _MAX_BODY_RE.match(str(max_body_size)):
            raise SaltInvocationError(
                f"max_body_size: expected a size like 0, 512k or 10m, got {max_body_size!r}"
            )
        args += ["--max-body-size", str(max_body_size)]
    user, omerodir, venv = _resolve(user, omerodir, venv)
    return _omero_web_run(args, user, omerodir, venv)


def _pid(omerodir):
    path = os.path.join(omerodir, "var", "django.pid")
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid):
    """
    Whether ``pid`` is a live OMERO.web (gunicorn) process, not a reused pid.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ")
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
    except (OSError, IndexError):
        pass
    return b"gunicorn" in cmdline or b"omeroweb" in cmdline


def web_status(user=None, omerodir=None, venv=None):
    """
    Return ``True`` when OMERO.web is running: its pid file
    (``$OMERODIR/var/django.pid``) names a live gunicorn process.
    (``omero web status`` exits 0 either way, so it is not used.)

    CLI Example:

    .. code-block:: bash

        salt '*' omero.web_status
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    pid = _pid(omerodir)
    return pid is not None and _alive(pid)


def _wait_status(omerodir, running, timeout):
    deadline = time.time() + timeout
    while True:
        pid = _pid(omerodir)
        state = pid is not None and _alive(pid)
        if state == running:
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.25)


def web_start(keep_sessions=False, timeout=60, user=None, omerodir=None, venv=None):
    """
    Start OMERO.web (``omero web start``) unless it is running, and wait until
    its gunicorn process is up. Returns ``True``.

    keep_sessions : False
        Skip the clean-up of expired sessions at startup (``--keep-sessions``).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.web_start
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    if web_status(user=user, omerodir=omerodir, venv=venv):
        return True
    args = ["web", "start"] + (["--keep-sessions"] if keep_sessions else [])
    out = _omero_web_run(args, user, omerodir, venv)
    if not _wait_status(omerodir, True, timeout):
        raise CommandExecutionError(
            f"omero web start: OMERO.web is not running after {timeout}s: {out.strip()}"
        )
    return True


def web_stop(timeout=60, user=None, omerodir=None, venv=None):
    """
    Stop OMERO.web (``omero web stop``) and wait until its gunicorn process
    has exited. Returns ``True`` (also when it was not running).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.web_stop
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    pid = _pid(omerodir)
    if pid is None:
        return True
    _omero_web_run(["web", "stop"], user, omerodir, venv)
    deadline = time.time() + timeout
    while _alive(pid):
        if time.time() > deadline:
            raise CommandExecutionError(
                f"omero web stop: gunicorn (pid {pid}) still running after {timeout}s"
            )
        time.sleep(0.25)
    return True


def web_restart(keep_sessions=False, timeout=60, user=None, omerodir=None, venv=None):
    """
    Restart OMERO.web: stop it, wait until gunicorn has exited (so the port is
    free), start it and wait until it runs. Returns ``True``.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.web_restart
    """
    web_stop(timeout=timeout, user=user, omerodir=omerodir, venv=venv)
    return web_start(
        keep_sessions=keep_sessions,
        timeout=timeout,
        user=user,
        omerodir=omerodir,
        venv=venv,
    )


def clearsessions(user=None, omerodir=None, venv=None):
    """
    Delete expired sessions (``omero web clearsessions``). Returns ``True``.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.clearsessions
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    _omero_web_run(["web", "clearsessions"], user, omerodir, venv)
    return True


def version(user=None, omerodir=None, venv=None):
    """
    Return the version of omero-web installed in the venv (read from its
    ``*.dist-info/METADATA``, no process), or ``None`` when it is not
    installed.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.version
        salt '*' omero.version venv=/opt/omero/web/venv3
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    found = []
    pattern = os.path.join(venv, "lib*", "python*", "site-packages", "*.dist-info")
    for path in glob.glob(pattern):
        if not re.match(r"^omero[-_.]web-", os.path.basename(path), re.I):
            continue
        try:
            with open(os.path.join(path, "METADATA"), encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        found.append((os.path.getmtime(path), line.split(":", 1)[1].strip()))
                        break
                    if not line.strip():
                        break
        except OSError:
            continue
    if not found:
        return None
    return max(found)[1]


def paths(user=None, omerodir=None, venv=None):
    """
    Return the ``user``, ``omerodir`` and ``venv`` the other functions use
    (arguments, else pillar ``omero_web:*``, else the defaults).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.paths
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    return {"user": user, "omerodir": omerodir, "venv": venv}
