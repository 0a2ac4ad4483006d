"""
What a running OMERO.web needs after a change: nothing, a graceful reload,
or a restart. Declared here once, used by the ``omero_service`` execution
module (the real decision, from what the running process was started with)
and by the state's dry run (from the changes the other states predict).

A reload keeps the gunicorn master: the unit's ExecReload (the formula's
reload script) has it start new workers, which import OMERO.web's settings
(config.xml) again, and stops the old ones gracefully once the new ones
have loaded; no request fails and none waits (gunicorn's own SIGHUP stops
the old workers at once: requests then wait seconds for the new ones). What ``omero web start`` turns into the master's own
command line and environment, and what needs its ``collectstatic``, needs a
new master: a restart.

Pure code: no processes.
"""

import hashlib

#: Properties read only when the gunicorn master starts (omero-web's
#: omero/plugins/web.py: its command line, SCRIPT_NAME), or that need the
#: static files collected again (apps and where static files live).
RESTART_PROPERTIES = frozenset(
    (
        "omero.web.application_server",
        "omero.web.application_server.host",
        "omero.web.application_server.port",
        "omero.web.application_server.max_requests",
        "omero.web.wsgi_workers",
        "omero.web.wsgi_threads",
        "omero.web.wsgi_worker_class",
        "omero.web.wsgi_worker_connections",
        "omero.web.wsgi_timeout",
        "omero.web.wsgi_args",
        "omero.web.prefix",
        "omero.web.apps",
        "omero.web.static_root",
    )
)

NOTHING, RELOAD, RESTART, START = "nothing", "reload", "restart", "start"
_RANK = {NOTHING: 0, RELOAD: 1, RESTART: 2, START: 3}


def needs(changed_properties):
    """``reload`` or ``restart`` for a set of changed properties (``nothing`` for none)."""
    changed = set(changed_properties or ())
    if not changed:
        return NOTHING
    return RESTART if changed & RESTART_PROPERTIES else RELOAD


def stronger(*actions):
    """The strongest of several actions (start > restart > reload > nothing)."""
    return max(actions or (NOTHING,), key=lambda action: _RANK[action])


def digest(text):
    """A short digest of a text (the record keeps digests, never values)."""
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:16]


def config_digests(properties):
    """``{key: digest}`` of config.xml's properties (``{key: text}``)."""
    return {key: digest(text) for key, text in (properties or {}).items()}


def changed_properties(recorded, current):
    """The properties whose digest differs between two ``config_digests``."""
    keys = set(recorded or {}) | set(current or {})
    return sorted(key for key in keys if (recorded or {}).get(key) != (current or {}).get(key))


def decide(running, record, current):
    """
    ``(action, reasons)`` for a service.

    running
        ``{"active": bool, "main_pid": int, "started": epoch seconds}``.
    record
        what the running process was last (re)started or reloaded with:
        ``{"main_pid", "config", "venv", "unit", "venv_dir"}`` (None if
        unknown; a record without ``venv_dir`` ran ``venv_path``).
    current
        the same facts of the files on disk, plus ``mtime``: the newest
        modification time of config.xml, the venv and the unit.
    """
    if not running.get("active"):
        return START, ["not running"]
    if not record or record.get("main_pid") != running.get("main_pid"):
        # Started by systemd (boot, Restart=on-failure) since the last record:
        # it read what was on disk when it started.
        if current.get("mtime", 0) > running.get("started", 0):
            return RESTART, ["the configuration, the venv or the unit changed after it started"]
        return NOTHING, []
    reasons = []
    action = NOTHING
    if record.get("unit") != current.get("unit"):
        action, reasons = RESTART, reasons + ["its unit changed"]
    if record.get("venv") != current.get("venv"):
        action, reasons = RESTART, reasons + ["the venv's packages changed"]
    # A record from before venv rebuilds existed ran the venv path itself.
    ran = record.get("venv_dir", current.get("venv_path"))
    if ran != current.get("venv_dir"):
        action, reasons = RESTART, reasons + ["the venv was rebuilt ({})".format(current.get("venv_dir"))]
    changed = changed_properties(record.get("config"), current.get("config"))
    if changed:
        need = needs(changed)
        action = stronger(action, need)
        reasons.append("{} changed ({})".format(", ".join(changed), "needs a new gunicorn master"
                                                 if need == RESTART else "read by new workers"))
    return action, reasons
