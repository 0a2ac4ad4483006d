"""
OMERO.web's systemd service: what the running process was started with, and
what it needs now (nothing, a graceful reload, a restart).

After every (re)start or reload the formula records what the process then
read: digests of config.xml's properties, of the venv's installed packages
and of the unit file (``/run/omero-web-formula/<service>.json``, root's; on
a reboot it goes, and the process started at boot read what was on disk).
Comparing that record with the files on disk tells what is owed, also when
an earlier run failed after it changed the configuration but before it
restarted OMERO.web.

systemctl runs through Salt's ``service`` module; reads look at files and
``systemctl show``.
"""

import glob
import json
import os
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "omero_service"

RECORD_DIR = "/run/omero-web-formula"


def __virtual__():
    if "omero_web_service.decide" not in __utils__:
        return (False, "omero_service: the formula's _utils/ are not synced (run saltutil.sync_all)")
    return __virtualname__


def _svc(name):
    return __utils__["omero_web_service." + name]


def _show(name, *props):
    """``systemctl show -p A -p B name`` as a dict."""
    cmd = ["systemctl", "show", "--no-pager"]
    for prop in props:
        cmd += ["-p", prop]
    result = __salt__["cmd.run_all"](cmd + ["--", name + ".service"], python_shell=False,
                                      ignore_retcode=True, output_loglevel="trace")
    if result["retcode"] != 0:
        raise CommandExecutionError("systemctl show {}: {}".format(name, result.get("stderr")))
    values = {}
    for line in result["stdout"].splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def running(name):
    """
    ``{"active", "main_pid", "started"}`` of the unit: whether it is active,
    its main process and when the unit became active (epoch seconds): after
    its start completed, since ``omero web start`` itself rewrites
    config.xml while it starts.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_service.running omero-web
    """
    values = _show(name, "ActiveState", "MainPID", "ActiveEnterTimestampMonotonic")
    pid = int(values.get("MainPID") or 0)
    started = 0.0
    monotonic = int(values.get("ActiveEnterTimestampMonotonic") or 0)
    if monotonic:
        started = time.time() - (time.monotonic() - monotonic / 1e6)
    return {"active": values.get("ActiveState") == "active" and pid > 0, "main_pid": pid,
            "started": started}


def _venv_digest(venv):
    dists = sorted(os.path.basename(path) for path in
                   glob.glob(os.path.join(venv, "lib*", "python*", "site-packages", "*.dist-info")))
    return _svc("digest")("\n".join(dists))


def _mtime(*paths):
    newest = 0.0
    for path in paths:
        try:
            newest = max(newest, os.stat(path).st_mtime)
        except OSError:
            pass
    return newest


def on_disk(omerodir, venv, unit_file):
    """
    What a process started now would read: ``config`` (digests of
    config.xml's properties), ``venv`` and ``unit`` digests, ``venv_dir``
    (the directory the ``venv_path`` is or links to), and ``mtime``:
    the newest of the formula's last change of config.xml (not the file's
    own mtime: OMERO.web's processes rewrite it as they read it), the
    venv's site-packages and the unit.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_service.on_disk /opt/omero/web/omero-web /opt/omero/web/venv3 /etc/systemd/system/omero-web.service
    """
    config = __utils__["omero_web_configxml.read"](omerodir)
    try:
        with open(unit_file, encoding="utf-8") as handle:
            unit = _svc("digest")(handle.read())
    except OSError:
        unit = None
    site = glob.glob(os.path.join(venv, "lib*", "python*", "site-packages"))
    return {
        "config": _svc("config_digests")(config),
        "venv": _venv_digest(venv),
        # which venv directory the venv path is: a rebuild links it to a new one
        "venv_path": os.path.normpath(venv),
        "venv_dir": __salt__["omero_venv.status"](venv)["dir"],
        "unit": unit,
        "mtime": max(_mtime(unit_file, *site), __salt__["omero.written_at"](omerodir)),
    }


def _record_path(name):
    return os.path.join(RECORD_DIR, name + ".json")


def recorded(name):
    """What the running process was last started or reloaded with (None if unknown)."""
    try:
        with open(_record_path(name), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def record(name, omerodir, venv, unit_file):
    """Record what the running process has just read (after a start, restart or reload)."""
    state = running(name)
    data = dict(on_disk(omerodir, venv, unit_file), main_pid=state["main_pid"])
    # the release whose sessions the store now holds (omero_web_upgrade)
    data["omero_web_version"] = __salt__["omero_venv.dist_version"](venv, "omero-web")
    data.pop("mtime", None)
    os.makedirs(RECORD_DIR, mode=0o700, exist_ok=True)
    tmp = _record_path(name) + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, _record_path(name))
    return data


def owed(name, omerodir, venv, unit_file):
    """
    ``{"action": nothing|reload|restart|start, "reasons": [...]}``: what the
    service needs so that it runs what is on disk.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_service.owed omero-web /opt/omero/web/omero-web /opt/omero/web/venv3 /etc/systemd/system/omero-web.service
    """
    action, reasons = _svc("decide")(running(name), recorded(name), on_disk(omerodir, venv, unit_file))
    return {"action": action, "reasons": reasons}


def wait_new_master(name, old_pid, timeout=120):
    """Wait until the unit is active with a main process other than ``old_pid``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = running(name)
        if state["active"] and state["main_pid"] != old_pid:
            return state
        time.sleep(0.5)
    raise CommandExecutionError("{} has no new main process after {} s".format(name, timeout))
