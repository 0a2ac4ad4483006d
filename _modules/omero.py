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
* The pure parts live in the formula's utility modules (``_utils/``):
  reading config.xml, encoding and comparing values and planning changes
  (``omero_web_configxml``), the programs run in the venv
  (``omero_web_scripts``) and the secret rule (``omero_web_secrets``).

OMERO.web itself is started, stopped and reloaded by systemd (the
formula's ``service`` sls), never by this module.

Values are written the way OMERO.web parses them: lists and dicts as compact
JSON, booleans as ``true``/``false`` (``omeroweb.utils.parse_boolean`` reads
``true``, ``t`` and ``1`` as true), numbers as their text, strings as they
are. They are compared by meaning, not by text: ``{"a": 1}`` equals
``{"a":1}``, ``True`` equals ``true`` and ``True``, ``4080`` equals
``"4080"``.
"""

import glob
import hashlib
import json
import logging
import os
import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero"

DEFAULT_USER = "omero-web"
DEFAULT_OMERODIR = "/opt/omero/web/omero-web"
DEFAULT_VENV = "/opt/omero/web/venv3"

# PATH for omero processes, after the venv's bin directory. The minion's own
# PATH is not inherited: it may point into the minion's bundled python.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_MAX_BODY_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
_CONTEXT_COUNT = "omero.processes"
_CONTEXT_DEFAULTS = "omero.defaults"


def __virtual__():
    if os.name != "posix":
        return (False, "The omero module needs a POSIX host")
    if "omero_web_configxml.read" not in __utils__:
        return (False, "omero: the formula's _utils/ are not synced (run saltutil.sync_all)")
    return __virtualname__


def _xml(name):
    return __utils__["omero_web_configxml." + name]


# --------------------------------------------------------------------------
# running omero
# --------------------------------------------------------------------------


def _pillar_settings():
    data = (globals().get("__pillar__") or {}).get("omero_web", {})
    return data if isinstance(data, dict) else {}


def _resolve(user=None, omerodir=None, venv=None):
    """(user, omerodir, venv): the arguments, else pillar, else the walkthrough's."""
    pillar = _pillar_settings()
    user = user or pillar.get("user") or DEFAULT_USER
    omerodir = omerodir or pillar.get("omerodir") or DEFAULT_OMERODIR
    venv = venv or pillar.get("venv") or DEFAULT_VENV
    if not isinstance(user, str) or not user.strip():
        raise SaltInvocationError(f"user: expected a user name, got {user!r}")
    for name, value in (("omerodir", omerodir), ("venv", venv)):
        if not isinstance(value, str) or not os.path.isabs(value):
            raise SaltInvocationError(f"{name}: expected an absolute path, got {value!r}")
    return user, os.path.normpath(omerodir), os.path.normpath(venv)


def _omero_run(args, user, omerodir, venv, script=None, stdin=None, what=None, quiet=False):
    """
    Run one omero process and return its stdout.

    ``script`` unset: ``<venv>/bin/omero ARGS``; set: ``<venv>/bin/python -c
    <the omero_web_scripts program of that name>``, its request on stdin.
    Runs as ``user`` with ``OMERODIR``, the venv first on ``PATH``, umask
    027, no shell. Raises CommandExecutionError with the command's stderr
    when it fails. ``quiet`` keeps the output out of the minion's log.
    """
    import pwd  # pylint: disable=import-outside-toplevel

    try:
        if pwd.getpwnam(user).pw_uid == 0:
            raise SaltInvocationError(f"user: omero must not run as root (user {user!r} has uid 0)")
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
        cmd = [exe, "-c", __utils__["omero_web_scripts.program"](script)]
        what = what or "omero (venv python: {})".format(script)
    if not os.access(exe, os.X_OK):
        raise CommandExecutionError(
            f"{exe} not found: is OMERO.web installed in the virtualenv {venv}?"
        )
    env = {"OMERODIR": omerodir, "PATH": bindir + os.pathsep + SYSTEM_PATH}
    tmpdir = os.path.join(omerodir, "var", "tmp")
    if os.path.isdir(tmpdir):
        # where the units keep Django's file sessions (their TMPDIR)
        env["TMPDIR"] = tmpdir
    cwd = omerodir if os.path.isdir(omerodir) else "/"
    __context__[_CONTEXT_COUNT] = __context__.get(_CONTEXT_COUNT, 0) + 1
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
        message = (result.get("stderr") or "").strip() or (result.get("stdout") or "").strip()
        raise CommandExecutionError(
            "{} failed (exit code {}): {}".format(what, result["retcode"], message or "no output")
        )
    return result.get("stdout") or ""


def _run_script(script, request, user, omerodir, venv, what=None, quiet=False):
    """Run an omero_web_scripts program in the venv; return its JSON answer."""
    out = _omero_run(
        [], user, omerodir, venv, script=script, stdin=json.dumps(request), what=what, quiet=quiet
    )
    marker = __utils__["omero_web_scripts.marker"]()
    for line in reversed(out.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    raise CommandExecutionError(f"{what or script}: unexpected output: {out[-500:]!r}")


def _omero_web_run(args, user, omerodir, venv):
    """``omero web ...``, with the real reason when the CLI only says "Error printing text"."""
    try:
        return _omero_run(args, user, omerodir, venv)
    except CommandExecutionError as exc:
        if "Error printing text" not in str(exc):
            raise
        try:
            _run_script("load_settings", {}, user, omerodir, venv,
                        what="omero: loading omeroweb.settings")
        except CommandExecutionError as reason:
            raise CommandExecutionError(
                f"{exc}. OMERO.web cannot load its settings: {reason}"
            ) from None
        raise


# --------------------------------------------------------------------------
# OMERO.web's default lists
# --------------------------------------------------------------------------


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
    tag = hashlib.sha256(venv.encode("utf-8")).hexdigest()[:12]
    return os.path.join(cachedir, "omero", "defaults-%s-%s.json" % (tag, installed))


def _list_defaults(keys, user, omerodir, venv):
    """OMERO.web's built-in default lists for ``keys`` (cached per run, and on disk per version)."""
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
        values = _run_script("default_lists", {"keys": missing}, user, omerodir, venv,
                             what="omero: reading OMERO.web's default values")
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
    _xml("check_key")(key)
    user, omerodir, venv = _resolve(user, omerodir, venv)
    text = _xml("read")(omerodir).get(key)
    return text if raw else _xml("decode")(text)


def config_get_all(raw=False, show_password=False, secret_keys=None, user=None,
                   omerodir=None, venv=None):
    """
    Return all properties of the active profile as a dict (in-process read,
    no ``omero`` process). ``omero.config.*`` bookkeeping keys are left out.

    raw : False
        Return the texts as stored instead of their meaning.

    show_password : False
        Like ``omero config get --show-password``: without it, secrets (the
        formula's one rule: known secret properties, ``secret_keys``, URL
        passwords) are masked. ``config_get`` of a single key always returns
        its value.

    secret_keys
        More properties to treat as secrets (pillar ``omero_web:secret_keys``).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_get_all
        salt '*' omero.config_get_all raw=True show_password=True
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    props = _xml("read")(omerodir)
    extra = secret_keys or _pillar_settings().get("secret_keys") or ()
    mask = __utils__["omero_web_secrets.mask_value"]
    result = {}
    for key, text in sorted(props.items()):
        value = text if raw else _xml("decode")(text)
        result[key] = value if show_password else mask(key, value, extra)
    return result


def _plan(properties, appends, removals, unsets, prune, prune_prefix, user, omerodir, venv):
    """
    The changes ``{key: (old_text, new_text)}`` that the arguments ask for
    against config.xml as it is now, and the resolved (user, omerodir, venv).
    """
    props, appends, removals, unsets = _xml("normalize")(properties, appends, removals, unsets)
    user, omerodir, venv = _resolve(user, omerodir, venv)
    current = _xml("read")(omerodir)
    needed = _xml("defaults_needed")(current, appends, removals, prune)
    defaults = _list_defaults(needed, user, omerodir, venv) if needed else {}
    changes = _xml("plan")(current, props, appends, removals, unsets, prune, prune_prefix, defaults)
    return changes, (user, omerodir, venv)


#: Where the formula notes when it last changed a config.xml. The file's own
#: mtime says nothing: OMERO.web's processes rewrite config.xml whenever they
#: read it (each gunicorn worker, `omero web start`).
WRITES_DIR = "/run/omero-web-formula"


def written_at(omerodir):
    """When the formula last changed ``$OMERODIR``'s config.xml (epoch seconds; 0: unknown)."""
    try:
        return os.stat(_write_note(omerodir)).st_mtime
    except OSError:
        return 0.0


def _write_note(omerodir):
    tag = hashlib.sha256(os.path.normpath(omerodir).encode("utf-8")).hexdigest()[:12]
    return os.path.join(WRITES_DIR, "config-written-" + tag)


def _note_write(omerodir):
    try:
        os.makedirs(WRITES_DIR, mode=0o700, exist_ok=True)
        with open(_write_note(omerodir), "w", encoding="utf-8") as handle:
            handle.write(omerodir + "\n")
    except OSError as exc:  # not root (the functional tests): nothing owes a restart then
        log.debug("omero: cannot note the config write in %s: %s", WRITES_DIR, exc)


def config_plan(properties=None, appends=None, removals=None, unsets=None, prune=False,
                prune_prefix="omero.web.", user=None, omerodir=None, venv=None):
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
        named in ``properties``, ``appends``, ``removals`` or ``unsets``, and
        reset appended lists to OMERO.web's default plus the declared values.

    prune_prefix : omero.web.
        The namespace ``prune`` cleans.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_plan properties='{"omero.web.prefix": "/omero"}'
        salt '*' omero.config_plan appends='{"omero.web.apps": ["omero_figure"]}' prune=True
    """
    changes, _ = _plan(properties, appends, removals, unsets, prune, prune_prefix, user,
                       omerodir, venv)
    return _xml("display")(changes)


def config_batch(properties=None, appends=None, removals=None, unsets=None, prune=False,
                 prune_prefix="omero.web.", user=None, omerodir=None, venv=None):
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
    changes, (user, omerodir, venv) = _plan(properties, appends, removals, unsets, prune,
                                            prune_prefix, user, omerodir, venv)
    if not changes:
        return {}
    request = {
        "path": _xml("path")(omerodir),
        "expected": {key: old for key, (old, _) in changes.items()},
        "new": {key: new for key, (_, new) in changes.items()},
    }
    _run_script("write_config", request, user, omerodir, venv,
                what="omero config (batch write)", quiet=True)
    _note_write(omerodir)
    after = _xml("read")(omerodir)
    wrong = sorted(key for key, (_, new) in changes.items() if after.get(key) != new)
    if wrong:
        raise CommandExecutionError(
            "config.xml does not hold the written value of: " + ", ".join(wrong)
        )
    log.debug("omero: changed %s", ", ".join(sorted(changes)))
    return _xml("display")(changes)


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
    _xml("check_key")(key)
    if value is None:
        raise SaltInvocationError("value: None is not a value; use omero.config_unset")
    return config_batch(properties={key: value}, user=user, omerodir=omerodir, venv=venv)


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
    _xml("check_key")(key)
    return config_batch(appends={key: [value]}, user=user, omerodir=omerodir, venv=venv)


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
    _xml("check_key")(key)
    return config_batch(removals={key: [value]}, user=user, omerodir=omerodir, venv=venv)


def config_unset(key, user=None, omerodir=None, venv=None):
    """
    Unset a property (``omero config set KEY`` with no value). Returns the
    changes, ``{}`` when it was not set.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.config_unset omero.web.debug
    """
    _xml("check_key")(key)
    return config_batch(unsets=[key], user=user, omerodir=omerodir, venv=venv)


# --------------------------------------------------------------------------
# omero web
# --------------------------------------------------------------------------


def web_config_nginx(http=None, servername=None, max_body_size=None, location=False,
                     properties=None, user=None, omerodir=None, venv=None):
    """
    Return the nginx configuration that ``omero web config nginx`` (or
    ``nginx-location`` with ``location=True``) generates: for OMERODIR's
    configuration, or, with ``properties``, for those properties alone.

    http
        The port nginx listens on (``--http``).

    servername
        The ``server_name`` (``--servername``).

    max_body_size
        ``client_max_body_size`` (``--max-body-size``), e.g. ``0`` or ``10m``.

    location : False
        Generate only the location blocks (``nginx-location``), to include in
        a server block of your own.

    properties
        ``{property: value}``: generate from a throwaway OMERODIR whose
        config.xml holds only these (e.g. prefix, static_url, static_root,
        application_server.host/.port, nginx_server_extra_config), never
        from OMERODIR's own config.xml, which its user can edit: root's
        nginx then loads only what the caller validated. The maintenance
        page's root is pointed back at OMERODIR.

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
    if properties is None:
        return _omero_web_run(args, user, omerodir, venv)
    return _in_throwaway_omerodir(args, properties, user, omerodir, venv)


def _in_throwaway_omerodir(args, properties, user, omerodir, venv):
    """Run ``omero ARGS`` with OMERODIR a new directory holding only ``properties``."""
    import pwd  # pylint: disable=import-outside-toplevel
    import shutil  # pylint: disable=import-outside-toplevel
    import tempfile  # pylint: disable=import-outside-toplevel

    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise CommandExecutionError(f"User '{user}' is not available")
    scratch = tempfile.mkdtemp(prefix="omero-web-nginx-")
    try:
        grid = os.path.join(scratch, "etc", "grid")
        os.makedirs(grid)
        with open(os.path.join(grid, "config.xml"), "w", encoding="utf-8") as handle:
            handle.write(_xml("render")(properties))
        for path, _, files in os.walk(scratch):
            os.chown(path, account.pw_uid, account.pw_gid)
            for name in files:
                os.chown(os.path.join(path, name), account.pw_uid, account.pw_gid)
        text = _omero_web_run(args, user, scratch, venv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return text.replace(scratch, omerodir)


def session_check(user=None, omerodir=None, venv=None):
    """
    Write a session with OMERO.web's configured session engine, read it
    back and delete it; return the engine. Raises CommandExecutionError with
    the backend's own error when sessions cannot be stored (a Redis that
    refuses the password, a session directory the user cannot write...).

    CLI Example:

    .. code-block:: bash

        salt '*' omero.session_check
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    return _run_script("session_roundtrip", {}, user, omerodir, venv,
                       what="omero: storing a session", quiet=True)


def clear_all_sessions(user=None, omerodir=None, venv=None):
    """
    Delete EVERY session of OMERO.web's configured session engine (file,
    Redis...), decoding none: what an upgrade across a session serializer or
    Django major version needs (``_utils/omero_web_upgrade.py``). Run it
    while OMERO.web is stopped. Returns ``{"engine", "cleared"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' omero.clear_all_sessions
    """
    user, omerodir, venv = _resolve(user, omerodir, venv)
    return _run_script("clear_sessions", {}, user, omerodir, venv,
                       what="omero: clearing the session store", quiet=True)


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
