"""
States of omero-web-formula that Salt has no built-in for.

``redis_directives``: ``directive value`` lines in the Redis package's own
configuration file, like ``file.replace`` but knowing what the package
ships, so that a dry run before the package is installed predicts exactly
what the real apply then changes.

``service_running``: OMERO.web's unit runs what is on disk, with a graceful
reload where that is enough and a restart where it is not.

.. code-block:: yaml

    /etc/redis/redis.conf:
      omero_web.redis_directives:
        - directives:
            port: 6380
        - package_defaults:
            port: 6379
"""

import grp
import os
import pwd
import re

from salt.exceptions import CommandExecutionError

__virtualname__ = "omero_web"


def __virtual__():
    return __virtualname__


def _find(lines, directive):
    """(index of the last active line, index of the first commented one) for ``directive``."""
    active = commented = None
    pattern = re.compile(r"^(#\s*)?" + re.escape(directive) + r"[ \t]+\S")
    for index, line in enumerate(lines):
        match = pattern.match(line.strip())
        if not match:
            continue
        if match.group(1):
            commented = commented if commented is not None else index
        else:
            active = index
    return active, commented


def _value(lines, directive):
    active, _ = _find(lines, directive)
    if active is None:
        return None
    return lines[active].strip().split(None, 1)[1].strip()


def _apply(lines, directives):
    """Lines with each directive set: its last active line replaced, else a commented one, else appended."""
    lines = list(lines)
    for directive, value in directives.items():
        text = "{} {}".format(directive, value)
        active, commented = _find(lines, directive)
        if active is not None:
            lines[active] = text
        elif commented is not None:
            lines[commented] = text
        else:
            lines.append(text)
    return lines


def redis_directives(name, directives, package_defaults=None):
    """
    Ensure each ``directive value`` of ``directives`` in the Redis
    configuration file ``name`` (Redis reads the last occurrence; the
    formula replaces that one, or uncomments the package's commented
    example, or appends).

    name
        The file, e.g. ``/etc/redis/redis.conf``. It is the package's: it
        must exist for a real apply.

    directives
        ``{directive: value}``, e.g. ``{port: 6380}`` or ``{unixsocket:
        /run/redis/redis-server.sock, unixsocketperm: 770}``.

    package_defaults
        What the package's file says when it is not installed yet (e.g.
        ``{port: 6379}``; a directive not named here is commented out in
        it), so that a dry run on a fresh host predicts the changes.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    wanted = {str(k): str(v) for k, v in (directives or {}).items()}
    unresolved = __utils__["omero_web_secrets.refs"](wanted)
    wanted = __utils__["omero_web_secrets.resolve"](wanted, read_secret)
    missing = [f for f in unresolved if read_secret(f) is None]
    if missing and not __opts__["test"]:
        ret["comment"] = "the secret in {} does not exist".format(", ".join(sorted(missing)))
        return ret
    ret = _redis_directives(name, wanted, package_defaults, ret)
    ret["changes"] = __utils__["omero_web_secrets.mask_changes"](ret["changes"])
    return ret


def _redis_directives(name, wanted, package_defaults, ret):
    if not os.path.exists(name):
        if not __opts__["test"]:
            ret["comment"] = "{} does not exist (is Redis installed?)".format(name)
            return ret
        defaults = {str(k): str(v) for k, v in (package_defaults or {}).items()}
        changes = {
            key: {"old": defaults.get(key), "new": value}
            for key, value in wanted.items()
            if defaults.get(key) != value
        }
        ret["result"] = None if changes else True
        ret["changes"] = changes
        ret["comment"] = "{} is not installed yet: {}".format(
            name, "would set " + ", ".join(sorted(changes)) if changes else "the package's values are wanted"
        )
        return ret
    with open(name, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    changes = {
        key: {"old": _value(lines, key), "new": value}
        for key, value in wanted.items()
        if _value(lines, key) != value
    }
    if not changes:
        ret["result"] = True
        ret["comment"] = "{} already sets {}".format(name, ", ".join(sorted(wanted)))
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = "would set " + ", ".join(sorted(changes))
        return ret
    # file.managed writes it: same owner and mode, atomic replace.
    stat = os.stat(name)
    written = __states__["file.managed"](
        name,
        contents="\n".join(_apply(lines, wanted)) + "\n",
        user=pwd.getpwuid(stat.st_uid).pw_name,
        group=grp.getgrgid(stat.st_gid).gr_name,
        mode="0{:o}".format(stat.st_mode & 0o7777),
        show_changes=False,
    )
    if not written["result"]:
        ret["comment"] = written["comment"]
        return ret
    with open(name, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    left = {key for key, value in wanted.items() if _value(lines, key) != value}
    if left:
        ret["comment"] = "{} still does not set {}".format(name, ", ".join(sorted(left)))
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = "set " + ", ".join(sorted(changes))
    return ret


# --------------------------------------------------------------------------
# the OMERO.web service
# --------------------------------------------------------------------------

_PAST = {"start": "started", "restart": "restarted", "reload": "reloaded"}


def _changed_properties_in(reqs):
    """
    The properties, venv and unit changes that the watched states report
    in this run (``__running__``): what a dry run predicts for them.
    """
    watched = {(chunk.get("state"), chunk.get("__id__")) for chunk in (reqs or {}).get("watch", [])}
    properties, other = set(), []
    for tag, result in (globals().get("__running__") or {}).items():
        parts = tag.split("_|-")
        if len(parts) != 4 or (parts[0], parts[1]) not in watched or not result.get("changes"):
            continue
        if parts[0] == "omero":
            properties.update(result["changes"])
        else:
            other.append(parts[1])
    return properties, other


def _session_upgrade(name, venv, version):
    """
    ``(old, new, reasons)``: the omero-web release whose sessions the store
    holds (what the running process was started with), the one the service
    will run (installed; in a dry run, the pillar's exact pin), and why the
    store must be cleared between them (``_utils/omero_web_upgrade.py``).
    """
    old = (__salt__["omero_service.recorded"](name) or {}).get("omero_web_version")
    new = __salt__["omero_venv.dist_version"](venv, "omero-web")
    if __opts__["test"]:
        new = __utils__["omero_web_upgrade.exact_pin"](version) or new
    return old, new, __utils__["omero_web_upgrade.session_clear_reasons"](old, new)


def _sessions_change(old, new, reasons, cleared="all"):
    return {"cleared": cleared,
            "why": "omero-web {} -> {}: {}".format(old, new, "; ".join(reasons))}


def _act(name, action, enable, omerodir, venv, unit_file, clear_as=None):
    """Start, restart or reload; ``clear_as`` (a user): clear the session store while stopped."""
    before = __salt__["omero_service.running"](name)
    cleared = None
    if clear_as and action == "restart":
        __salt__["service.stop"](name)
        action = "start"
    if clear_as and action == "start":
        cleared = __salt__["omero.clear_all_sessions"](user=clear_as, omerodir=omerodir, venv=venv)
    if action == "start":
        __salt__["service.start"](name)
    elif action == "restart":
        __salt__["service.restart"](name)
    elif action == "reload":
        __salt__["service.reload"](name)
    if enable is not None and __salt__["service.enabled"](name) != enable:
        (__salt__["service.enable"] if enable else __salt__["service.disable"])(name)
    if action in ("start", "restart"):
        __salt__["omero_service.wait_new_master"](name, before["main_pid"])
    __salt__["omero_service.record"](name, omerodir, venv, unit_file)
    return cleared


def service_running(name, omerodir, venv, unit_file, enable=True, user=None, version=None):
    """
    Ensure OMERO.web's unit ``name`` runs what is on disk: started when it
    is not running; reloaded gracefully (the unit's ExecReload: new workers
    read config.xml again, no request dropped) when only properties that new workers read
    changed; restarted when something the gunicorn master fixed at its
    start changed (the venv's packages, the unit, bind address, workers,
    apps...: ``_utils/omero_web_service.py``). The comment says which, and why.

    What is owed comes from a record of what the running process was
    started or reloaded with, against the files on disk: a restart owed by a
    run that failed after changing the configuration is made by the next
    run. Under ``test=True`` the changes predicted by the watched states
    (config, venv, unit) count too (``mod_watch``).

    name
        The unit, e.g. ``omero-web``.

    omerodir, venv, unit_file
        What the unit runs: OMERODIR (its config.xml), the virtualenv, the
        unit file.

    enable : True
        Enable the unit at boot (``None``: leave it).

    user, version
        The service user and the pillar's omero-web requirement: when the
        omero-web release changes across a session serializer or Django
        major version (``_utils/omero_web_upgrade.py``), the session store
        is cleared once, as ``user``, between the stop and the start of the
        restart; a dry run predicts it from an exact pin (``==5.33.2``).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        owed = __salt__["omero_service.owed"](name, omerodir, venv, unit_file)
        enabled = __salt__["service.enabled"](name)
        old, new, clear = _session_upgrade(name, venv, version) if user else (None, None, [])
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    action = owed["action"]
    if clear and owed["action"] in ("nothing", "reload"):
        action = "restart"
        owed["reasons"].append("omero-web {} -> {}".format(old, new))
    enable_change = enable is not None and enabled != enable
    if action == "nothing" and not enable_change:
        if not __opts__["test"] and not __salt__["omero_service.recorded"](name):
            # First look at a process that runs what is on disk: remember it.
            __salt__["omero_service.record"](name, omerodir, venv, unit_file)
        ret["result"] = True
        ret["comment"] = "{} runs what is on disk".format(name)
        return ret
    changes = {}
    if action != "nothing":
        changes[name] = {"action": action, "why": "; ".join(owed["reasons"])}
    if enable_change:
        changes["enabled"] = {"old": enabled, "new": enable}
    if clear:
        changes["sessions"] = _sessions_change(old, new, clear)
    cleared_note = "; the session store is cleared ({})".format(changes["sessions"]["why"]) if clear else ""
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = "{} would be {}: {}{}".format(
            name, _PAST.get(action, "enabled"), "; ".join(owed["reasons"]) or "enabled at boot",
            cleared_note.replace("is cleared", "would be cleared"))
        return ret
    try:
        cleared = _act(name, None if action == "nothing" else action, enable, omerodir, venv,
                       unit_file, clear_as=user if clear else None)
        after = __salt__["omero_service.owed"](name, omerodir, venv, unit_file)
    except CommandExecutionError as exc:
        ret["comment"] = "{} could not be {}: {}".format(name, _PAST.get(action, "enabled"), exc)
        return ret
    if cleared:
        changes["sessions"] = _sessions_change(old, new, clear, cleared["cleared"])
        cleared_note = "; the session store ({}) was cleared ({})".format(
            cleared["engine"], changes["sessions"]["why"])
    ret["changes"] = changes
    if after["action"] != "nothing":
        ret["comment"] = "{} still needs a {}: {}".format(name, after["action"], "; ".join(after["reasons"]))
        return ret
    ret["result"] = True
    ret["comment"] = "{} {}: {}{}".format(name, _PAST.get(action, "enabled"),
                                          "; ".join(owed["reasons"]) or "enabled at boot", cleared_note)
    return ret


def mod_watch(name, sfun=None, omerodir=None, venv=None, unit_file=None, enable=True, user=None,
              version=None, **kwargs):
    """
    A watched state changed and ``service_running`` found nothing owed: in a
    dry run, the watched states' predicted changes say what the real run
    will do (a reload for properties new workers read, else a restart).
    In a real run the record on disk already said all there was to do.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": "{} runs what is on disk".format(name)}
    if not __opts__["test"]:
        return ret
    properties, other = _changed_properties_in(kwargs.get("__reqs__"))
    need = __utils__["omero_web_service.needs"](properties)
    reasons = []
    if properties:
        reasons.append("{} would change".format(", ".join(sorted(properties))))
    if other:
        need = "restart"
        reasons.append("{} would change".format(", ".join(sorted(other))))
    if need == "nothing":
        return ret
    ret["result"] = None
    ret["changes"] = {name: {"action": need, "why": "; ".join(reasons)}}
    ret["comment"] = "{} would be {}: {}".format(name, _PAST[need], "; ".join(reasons))
    old, new, clear = _session_upgrade(name, venv, version) if user and venv else (None, None, [])
    if clear and need == "restart":
        ret["changes"]["sessions"] = _sessions_change(old, new, clear)
        ret["comment"] += "; the session store would be cleared ({})".format(
            ret["changes"]["sessions"]["why"])
    return ret


# --------------------------------------------------------------------------
# nginx files: tested before they stay
# --------------------------------------------------------------------------

_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NGINX_RECORD = "/run/omero-web-formula/nginx.json"


def _nginx():
    """nginx's absolute path, or None when it is not installed."""
    import shutil  # pylint: disable=import-outside-toplevel

    return shutil.which("nginx", path=_SYSTEM_PATH)


def _nginx_run(*args):
    result = __salt__["cmd.run_all"]([_nginx()] + list(args), python_shell=False,
                                      ignore_retcode=True, output_loglevel="quiet")
    return result["retcode"], (result.get("stdout") or ""), (result.get("stderr") or "").strip()


def _nginx_test():
    """``(ok, nginx's message)`` of ``nginx -t`` with the files as they are now."""
    if not _nginx():
        # no nginx on this host: nothing loads the file yet
        return True, "nginx is not installed"
    retcode, _, message = _nginx_run("-t", "-q")
    return retcode == 0, message


def _restore(name, previous, mode):
    if previous is None:
        if os.path.exists(name):
            os.unlink(name)
        return
    with open(name, "wb") as handle:
        handle.write(previous)
    os.chmod(name, mode)


def nginx_file(name, **kwargs):
    """
    ``file.managed`` for a file root's nginx loads, with ``nginx -t`` before
    the new content may stay: when nginx rejects it (or cannot be asked),
    the previous content (or no file, for a new one) is put back, the state
    fails with nginx's message, and nginx keeps serving what it served. So a
    broken file never stays on disk for a later run to miss.

    Takes ``file.managed``'s arguments (``source``, ``contents``,
    ``template``, ``context``, ``user``, ``group``, ``mode``...).
    """
    previous, mode = None, 0o644
    if os.path.isfile(name):
        with open(name, "rb") as handle:
            previous = handle.read()
        mode = os.stat(name).st_mode & 0o7777
    ret = __states__["file.managed"](name, **kwargs)
    ret["name"] = name
    if __opts__["test"] or not ret.get("result") or not ret.get("changes"):
        return ret
    try:
        ok, message = _nginx_test()
    except Exception as exc:  # pylint: disable=broad-except
        ok, message = False, "nginx -t could not run: {}".format(exc)
    if ok:
        return ret
    _restore(name, previous, mode)
    ret["result"] = False
    ret["changes"] = {}
    ret["comment"] = "nginx rejected the new {}, the previous one was put back: {}".format(
        name, message)
    return ret


def _nginx_loaded(files=None):
    """
    ``(digest, newest mtime)`` of the whole configuration nginx would load
    now (``nginx -T``); ``files``, a list, gets the files it loads and the
    patterns it includes.
    """
    retcode, out, message = _nginx_run("-T", "-q")
    if retcode != 0:
        raise CommandExecutionError("nginx -t failed: " + message)
    newest = 0.0
    for line in out.splitlines():
        if line.startswith("# configuration file ") and line.endswith(":"):
            path = line[len("# configuration file "):-1]
            if files is not None:
                files.append(path)
            try:
                newest = max(newest, os.stat(path).st_mtime)
            except OSError:
                pass
        elif files is not None:
            found = re.match(r"^\s*include\s+(\S+?);", line)
            if found:
                files.append(found.group(1))
    return __utils__["omero_web_service.digest"](out), newest


#: The functions that write a file nginx may load.
NGINX_FILE_STATES = ("omero.nginx_config", "omero.nginx_http_config", "omero_web.nginx_file",
                     "file.absent", "file.replace", "file.rename")


def _nginx_files_would_change(loaded):
    """
    Under test=True: the files of this run's earlier states that would change
    and that nginx loads (``loaded``: its files and include patterns), e.g. a
    regenerated server block. Their new content is not on disk in a dry run,
    so nginx -T cannot show the reload they will cause.
    """
    import fnmatch  # pylint: disable=import-outside-toplevel

    running = globals().get("__running__") or {}
    would = []
    for key, result in running.items():
        parts = key.split("_|-")
        if len(parts) != 4 or "{}.{}".format(parts[0], parts[3]) not in NGINX_FILE_STATES:
            continue
        if not result.get("changes"):
            continue
        path = result.get("name") or parts[2]
        if any(path == entry or fnmatch.fnmatch(path, entry) for entry in loaded):
            would.append(path)
    return sorted(set(would))


def _nginx_recorded():
    import json  # pylint: disable=import-outside-toplevel

    try:
        with open(NGINX_RECORD, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _nginx_record(pid, digest):
    import json  # pylint: disable=import-outside-toplevel

    os.makedirs(os.path.dirname(NGINX_RECORD), mode=0o700, exist_ok=True)
    with open(os.open(NGINX_RECORD + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
              "w", encoding="utf-8") as handle:
        json.dump({"main_pid": pid, "config": digest}, handle)
    os.replace(NGINX_RECORD + ".tmp", NGINX_RECORD)


def nginx_running(name, enable=True):
    """
    nginx runs the configuration on disk: ``nginx -t`` first (on every run,
    also under ``test=True``: a configuration nginx rejects, from this
    formula or anyone else, fails the apply now rather than at nginx's next
    reload); started when it is not running; reloaded when what it would
    load (``nginx -T``) differs from what it loaded at its last start or
    reload, which the formula records. A reload owed by a failed run is so
    made by the next one.

    name
        nginx's unit, e.g. ``nginx``.

    enable : True
        Enable it at boot.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if not _nginx():
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = {name: {"action": "start", "why": "not installed yet"}}
            ret["comment"] = "nginx would be started once it is installed"
        else:
            ret["comment"] = "nginx is not installed"
        return ret
    try:
        ok, message = _nginx_test()
        if not ok:
            ret["comment"] = "nginx -t failed: " + message
            return ret
        state = __salt__["omero_service.running"](name)
        loaded = []
        digest, newest = _nginx_loaded(loaded)
        enabled = __salt__["service.enabled"](name)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    record = _nginx_recorded()
    if not state["active"]:
        action, why = "start", "not running"
    elif record and record.get("main_pid") == state["main_pid"]:
        changed = record.get("config") != digest
        action, why = ("reload", "its configuration changed since it loaded it") if changed else ("nothing", "")
    elif newest > state["started"]:
        # started (by its package, at boot...) before its files last changed
        action, why = "reload", "its configuration changed after it started"
    else:
        action, why = "nothing", ""
        if not __opts__["test"]:
            _nginx_record(state["main_pid"], digest)
    if action == "nothing" and __opts__["test"]:
        would = _nginx_files_would_change(loaded)
        if would:
            action, why = "reload", "this run changes what it loads: " + ", ".join(would)
    changes = {name: {"action": action, "why": why}} if action != "nothing" else {}
    if enable and not enabled:
        changes["enabled"] = {"old": False, "new": True}
    if not changes:
        ret["result"] = True
        ret["comment"] = "nginx runs the configuration on disk"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = "nginx would be {}: {}".format(
            {"start": "started", "reload": "reloaded"}.get(action, "enabled"), why)
        return ret
    try:
        if action == "start":
            __salt__["service.start"](name)
        elif action == "reload":
            __salt__["service.reload"](name)
        if enable and not enabled:
            __salt__["service.enable"](name)
        state = __salt__["omero_service.running"](name)
        _nginx_record(state["main_pid"], digest)
    except CommandExecutionError as exc:
        ret["comment"] = "nginx could not be {}: {}".format(action, exc)
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = "nginx {}: {}".format({"start": "started", "reload": "reloaded"}.get(
        action, "enabled"), why)
    return ret


# --------------------------------------------------------------------------
# secrets the formula generates itself
# --------------------------------------------------------------------------


def read_secret(path):
    """The secret kept in ``path`` (None when it does not exist yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def secret_present(name, length=32):
    """
    A secret generated once and kept on the minion in ``name`` (root's, mode
    0600, in a 0700 directory), e.g. a local Redis's password. States get a
    reference to it, never its value (``omero_web_secrets.ref``); it is never
    shown.

    name
        The file, e.g. ``/etc/omero-web/redis-password``.

    length : 32
        Random bytes (as URL-safe text).
    """
    import secrets as random_source  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if read_secret(name) is not None:
        mode = os.stat(name).st_mode & 0o777
        if mode & 0o077 and not __opts__["test"]:
            os.chmod(name, 0o600)
            ret["changes"] = {"mode": {"old": "0{:o}".format(mode), "new": "0600"}}
        ret["comment"] = "the secret in {} is present".format(name)
        return ret
    ret["changes"] = {"secret": "generated"}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "a secret would be generated in {}".format(name)
        return ret
    os.makedirs(os.path.dirname(name), mode=0o700, exist_ok=True)
    descriptor = os.open(name + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(random_source.token_urlsafe(length) + "\n")
    os.replace(name + ".tmp", name)
    ret["comment"] = "a secret was generated in {}".format(name)
    return ret
