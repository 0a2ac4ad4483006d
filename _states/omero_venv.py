"""
OMERO.web's virtualenv as states: the venv with IcePy (``present``), and the
pip packages installed into it (``packages_installed``).

Each decides what a dry run says inside the state function (check -> test
-> act -> re-read), so the compiled state is the same with and without
``test=True``.

.. code-block:: yaml

    /opt/omero/web/venv3:
      omero_venv.present:
        - python: /usr/bin/python3
        - wheel: /srv/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl
        - ice_version: "3.6.5"

    omero-web-packages:
      omero_venv.packages_installed:
        - venv: /opt/omero/web/venv3
        - pkgs: [omero-web>=5.6.1, whitenoise]
"""

import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "omero_venv"


def __virtual__():
    if "omero_venv.status" in __salt__:
        return __virtualname__
    return (False, "omero_venv state: the omero_venv execution module is not available")


def _missing(venv, ice_version):
    """What the venv lacks: ``venv`` (no python or pip yet) and/or ``icepy``."""
    status = __salt__["omero_venv.status"](venv)
    missing = []
    if not (status["exists"] and status["pip"]):
        missing.append("venv")
    if "venv" in missing or __salt__["omero_venv.dist_version"](venv, "zeroc-ice") != ice_version:
        missing.append("icepy")
    return missing


def present(name, python, wheel, ice_version="3.6.5", upgrade_pip=True, pkgs=None):
    """
    Ensure the virtualenv ``name`` exists (created by ``python -m venv``,
    with its pip upgraded) and holds IcePy ``ice_version`` from ``wheel``.

    A venv that another interpreter built (``python`` is another Python
    version, another interpreter, or the venv's is gone) is rebuilt beside
    the old one, with IcePy and ``pkgs``, and ``name`` then links to it
    (``omero_venv.rebuild``): the service state restarts OMERO.web once,
    ``old_removed`` removes the old venv after the health check. A failed
    rebuild leaves ``name`` as it was.

    name
        The venv's path, e.g. ``/opt/omero/web/venv3``.

    python
        The platform interpreter that creates it, e.g. ``/usr/bin/python3``.

    wheel
        IcePy's wheel: a local path or an https:// URL.

    ice_version : 3.6.5
        The zeroc-ice version the wheel holds: the venv's
        ``zeroc_ice-<version>.dist-info`` marks it installed, so an installed
        wheel is never reinstalled.

    upgrade_pip : True
        Upgrade pip right after creating the venv.

    pkgs
        The pip requirements a rebuilt venv gets before the switch (the
        ``packages_installed`` state's).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        plan = __salt__["omero_venv.rebuild_plan"](name, python)
        if plan:
            return _rebuild(ret, plan, python, wheel, ice_version, upgrade_pip, pkgs)
        missing = _missing(name, ice_version)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = str(exc)
        return ret
    if not missing:
        ret["result"] = True
        ret["comment"] = "virtualenv {} with IcePy {} is present".format(name, ice_version)
        return ret
    planned = {}
    if "venv" in missing:
        planned["venv"] = {"old": None, "new": "created by {} -m venv".format(python)}
    planned["icepy"] = {
        "old": __salt__["omero_venv.dist_version"](name, "zeroc-ice"),
        "new": "{} ({})".format(ice_version, wheel),
    }
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = planned
        ret["comment"] = "would be done: " + ", ".join(sorted(planned))
        return ret
    try:
        if "venv" in missing:
            __salt__["omero_venv.create"](name, python, upgrade_pip=upgrade_pip)
        __salt__["omero_venv.install"](name, wheel, upgrade=True)
        left = _missing(name, ice_version)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = planned
    if left:
        ret["comment"] = "still missing after the install: " + ", ".join(left)
        return ret
    ret["result"] = True
    ret["comment"] = "done: " + ", ".join(sorted(planned))
    return ret


def _rebuild(ret, plan, python, wheel, ice_version, upgrade_pip, pkgs):
    """present's rebuild: check (the plan) -> test -> act -> re-read."""
    name = ret["name"]
    ret["changes"] = {"venv": {"old": plan["old"], "new": plan["new"], "why": plan["reason"]}}
    steps = "{} built by {} with IcePy {} and {}, {} linked to it, the old venv moved to {} " \
            "until the health check passed".format(plan["new"], python, ice_version,
                                                   ", ".join(pkgs or []) or "no packages", name, plan["old"])
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "a rebuild is due: {}; would be: {}".format(plan["reason"], steps)
        return ret
    try:
        __salt__["omero_venv.rebuild"](name, python, wheel, pkgs=pkgs or [], upgrade_pip=upgrade_pip)
        left = __salt__["omero_venv.rebuild_plan"](name, python)
        missing = _missing(name, ice_version)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["changes"] = {}
        ret["comment"] = str(exc)
        return ret
    if left or missing:
        ret["comment"] = "after the rebuild: {}".format(
            left["reason"] if left else "still missing: " + ", ".join(missing))
        return ret
    ret["result"] = True
    ret["comment"] = "rebuilt ({}): {}".format(plan["reason"], steps.replace(" until", ", kept until"))
    return ret


def _dirs_removed(name, find, remove, what):
    """Remove venv directories beside ``name``: ``find()`` lists them,
    ``remove()`` removes them and returns those it removed."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        dirs = find()
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = str(exc)
        return ret
    if not dirs:
        ret["result"] = True
        ret["comment"] = "no {} beside {}".format(what, name)
        return ret
    ret["changes"] = {"removed": dirs}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "would be removed: " + ", ".join(dirs)
        return ret
    try:
        ret["changes"] = {"removed": remove()}
    except (CommandExecutionError, SaltInvocationError, OSError) as exc:
        ret["changes"] = {}
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    ret["comment"] = "removed: " + ", ".join(ret["changes"]["removed"])
    return ret


def old_removed(name, python):
    """
    Remove the old venvs a rebuild left beside the virtualenv ``name``
    (``<name>.py*``, ``<name>.old``: never another directory), once the
    health check passed on the new one (the sls requires it). A dry run also
    names the venv that a rebuild due in this run (``python``) will leave.
    """

    def find():
        old = __salt__["omero_venv.old_venvs"](name)
        if __opts__["test"]:
            plan = __salt__["omero_venv.rebuild_plan"](name, python)
            if plan and plan["old"] not in old:
                old.append(plan["old"])
        return old

    return _dirs_removed(name, find, lambda: __salt__["omero_venv.remove_old"](name), "old venv")


def rebuilt_absent(name):
    """
    clean.sls: remove the venv directories rebuilds made beside ``name``
    (the one its link points to, the old ones); the path itself (a link or
    an adopted directory) is ``file.absent``'s.
    """
    return _dirs_removed(name, lambda: __salt__["omero_venv.old_venvs"](name, current=True),
                         lambda: __salt__["omero_venv.remove_old"](name, current=True), "rebuilt venv")


def packages_installed(name, venv, pkgs):
    """
    Ensure the pip requirements ``pkgs`` are installed in ``venv``: Salt's
    ``pip.installed`` (one ``pip list`` for all of them), except that before
    the venv exists a dry run predicts the install instead of failing.

    name
        An identifier.

    venv
        The virtualenv.

    pkgs
        The pip requirements, e.g. ``[omero-web>=5.6.1, whitenoise]``.
    """
    try:
        ready = __salt__["omero_venv.status"](venv)["pip"]
    except SaltInvocationError as exc:
        return {"name": name, "result": False, "changes": {}, "comment": str(exc)}
    if not ready:
        ret = {"name": name, "result": False, "changes": {}, "comment": ""}
        if __opts__["test"]:
            ret["result"] = None
            ret["changes"] = {"installed": list(pkgs)}
            ret["comment"] = "would be installed into the new virtualenv {}".format(venv)
        else:
            ret["comment"] = "the virtualenv {} does not exist".format(venv)
        return ret
    ret = __states__["pip.installed"](name=name, pkgs=list(pkgs), bin_env=venv)
    ret["name"] = name
    if __opts__["test"] and ret.get("result") is None and not ret.get("changes"):
        # pip.installed's dry run only comments; the changes name each
        # package's installed and wanted version (an upgrade, a downgrade),
        # and make the service state predict its restart.
        ret["changes"] = _planned(venv, ret.get("comment") or "", pkgs)
    return ret


def _planned(venv, comment, pkgs):
    """``{package: {old: installed version, new: requirement}}`` for the
    requirements pip.installed's dry-run comment lists as to be installed."""
    listed = {line.strip() for line in comment.splitlines()[1:]}
    single = re.match(r"^Python package (.+) is set to be installed$", comment.strip())
    if single:
        listed.add(single.group(1))
    planned = {}
    for requirement in pkgs:
        if requirement not in listed:
            continue
        dist = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
        installed = __salt__["omero_venv.dist_version"](venv, dist)
        if not _satisfied(requirement, installed):
            planned[dist] = {"old": installed, "new": requirement}
    return planned


def _satisfied(requirement, installed):
    """Whether the installed version meets the requirement (pip.installed's
    dry run lists every package when one needs installing)."""
    if installed is None:
        return False
    try:
        from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel

        return Requirement(requirement).specifier.contains(installed, prereleases=True)
    except Exception:  # pylint: disable=broad-except
        return False
