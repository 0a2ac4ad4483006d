"""
OMERO.web's Python virtualenv: create it with the platform's interpreter,
install wheels into it, and say what it holds.

One concern around one helper, ``_run``: every process (``python -m venv``,
``pip install``) goes through it, as root (the walkthrough creates the venv
as root), without a shell. Reads (``status``, ``dist_version``) look at the
venv's files and start no process.
"""

import glob
import logging
import os
import re
import shutil

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero_venv"

MARK = ".omero-web-formula"  # venv/init.sls writes it: clean.sls may remove the venv
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def __virtual__():
    if os.name != "posix":
        return (False, "omero_venv needs a POSIX host")
    if "omero_web_venv.rebuild_reason" not in __utils__:
        return (False, "omero_venv: the formula's _utils/ are not synced (run saltutil.sync_all)")
    return __virtualname__


def _absolute(name, value):
    if not isinstance(value, str) or not os.path.isabs(value):
        raise SaltInvocationError(f"{name}: expected an absolute path, got {value!r}")
    return os.path.normpath(value)


def _run(cmd, what):
    """Run one process (a list, no shell); return its stdout or raise with its stderr."""
    result = __salt__["cmd.run_all"](
        cmd,
        python_shell=False,
        env={"PATH": SYSTEM_PATH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        ignore_retcode=True,
        output_loglevel="debug",
    )
    if result["retcode"] != 0:
        message = (result.get("stderr") or "").strip() or (result.get("stdout") or "").strip()
        raise CommandExecutionError(
            "{} failed (exit code {}): {}".format(what, result["retcode"], message[-2000:])
        )
    return result.get("stdout") or ""


def _canonical_name(name):
    """PEP 503 normalisation, as dist-info directory names use it (with ``_``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def site_packages(venv):
    """The venv's site-packages directories (globbed: the venv's own python decides)."""
    venv = _absolute("venv", venv)
    return sorted(glob.glob(os.path.join(venv, "lib*", "python*", "site-packages")))


def dist_version(venv, name):
    """
    The version of distribution ``name`` installed in the venv (from its
    ``*.dist-info`` directory), or ``None``.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.dist_version /opt/omero/web/venv3 zeroc-ice
    """
    wanted = _canonical_name(name)
    for directory in site_packages(venv):
        for path in glob.glob(os.path.join(directory, "*.dist-info")):
            base = os.path.basename(path)[: -len(".dist-info")]
            dist, _, version = base.rpartition("-")
            if _canonical_name(dist) == wanted:
                return version
    return None


def _read_cfg(venv):
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as handle:
            return __utils__["omero_web_venv.parse_pyvenv_cfg"](handle.read())
    except OSError:
        return {}


def _target(venv):
    """The directory the venv path is: itself, or where its link points."""
    if os.path.islink(venv):
        return os.path.normpath(os.path.join(os.path.dirname(venv), os.readlink(venv)))
    return venv


def status(venv):
    """
    What the venv is: ``exists`` (its python runs), ``pip`` (pip is there:
    the last file ``-m venv`` writes), ``home`` and ``version`` of the
    interpreter that built it (its ``pyvenv.cfg``), ``base`` (the
    interpreter its bin/python runs: the link's target, else pyvenv.cfg's
    ``executable``), ``base_exists``, and ``dir`` (the directory the venv
    path is, or links to).

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.status /opt/omero/web/venv3
    """
    venv = _absolute("venv", venv)
    config = _read_cfg(venv)
    python = os.path.join(venv, "bin", "python")
    if os.path.islink(python):
        base = os.path.realpath(python)
    else:
        base = os.path.realpath(config["executable"]) if config.get("executable") else None
    return {
        "exists": os.access(python, os.X_OK),
        "pip": os.path.exists(os.path.join(venv, "bin", "pip")),
        "home": config.get("home"),
        "version": config.get("version") or config.get("version_info"),
        "base": base,
        "base_exists": bool(base) and os.path.exists(base),
        "dir": _target(venv),
    }


def interpreter(python):
    """
    The interpreter ``python`` names: ``executable``, ``realpath`` and
    ``version`` (``"3.13.5"``; None when it does not run).

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.interpreter /usr/bin/python3
    """
    python = _absolute("python", python)
    try:
        out = _run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                   "{} --version".format(python))
        version = out.strip() or None
    except CommandExecutionError:
        version = None
    return {"executable": python, "realpath": os.path.realpath(python), "version": version}


def rebuild_plan(venv, python):
    """
    None, or why the venv must be rebuilt by ``python`` and where:
    ``{"reason", "new": the directory the rebuilt venv goes to, "old": where
    the current venv is once the venv path links to the new one}``
    (``_utils/omero_web_venv.py``).

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.rebuild_plan /opt/omero/web/venv3 /usr/bin/python3
    """
    venv = _absolute("venv", venv)
    facts = status(venv)
    if not (facts["base"] or facts["version"]) or (facts["exists"] and not facts["pip"]):
        return None  # no venv yet, or a half-made one: created (again), not rebuilt
    python_facts = interpreter(python)
    reason = __utils__["omero_web_venv.rebuild_reason"](facts, python_facts)
    if reason is None:
        return None
    if python_facts["version"] is None:
        raise CommandExecutionError(
            "{}; but python:executable {} does not run".format(reason, python))
    new = __utils__["omero_web_venv.versioned_dir"](venv, python_facts["version"], facts["dir"])
    old = facts["dir"]
    if old == venv:
        old = __utils__["omero_web_venv.aside_dir"](venv, facts["version"], new)
    return {"reason": reason, "new": new, "old": old}


def _same_versions(venv, pkgs):
    """The requirements, each pinned to the version the venv has when that
    version still meets it (a rebuild installs what ran, not what is newest)."""
    from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel

    pinned = []
    for text in pkgs:
        try:
            requirement = Requirement(text)
        except Exception:  # pylint: disable=broad-except
            pinned.append(text)
            continue
        installed = dist_version(venv, requirement.name)
        if installed and requirement.specifier.contains(installed, prereleases=True) and not requirement.url:
            extras = "[{}]".format(",".join(sorted(requirement.extras))) if requirement.extras else ""
            marker = "; {}".format(requirement.marker) if requirement.marker else ""
            pinned.append("{}{}=={}{}".format(requirement.name, extras, installed, marker))
        else:
            pinned.append(text)
    return pinned


def rebuild(venv, python, wheel, pkgs=(), upgrade_pip=True):
    """
    Rebuild the venv with ``python`` beside the old one (``rebuild_plan``):
    create it, install IcePy's ``wheel`` and ``pkgs`` (at the versions the
    old venv has, where they still meet the requirement), check that IcePy
    loads, copy the
    formula's mark, then point the venv path at it (an adopted venv, a real
    directory, moves aside first). The old venv stays until
    :py:func:`remove_old`. On any failure the new directory is removed and
    the venv path still is the old venv. Returns the plan, or None when no
    rebuild is due.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.rebuild /opt/omero/web/venv3 /usr/bin/python3 /srv/wheels/zeroc_ice-3.6.5-cp313-cp313-linux_x86_64.whl '["omero-web==5.33.2"]'
    """
    venv = _absolute("venv", venv)
    plan = rebuild_plan(venv, python)
    if plan is None:
        return None
    new = plan["new"]
    try:
        if os.path.lexists(new):
            shutil.rmtree(new)  # what a failed rebuild left (never the current venv: rebuild_plan)
        create(new, python, upgrade_pip=upgrade_pip)
        install(new, wheel, upgrade=True)
        requirements = _same_versions(venv, list(pkgs or ()))
        if requirements:
            _run([os.path.join(new, "bin", "python"), "-m", "pip", "install", "--quiet"] + requirements,
                 "pip install {}".format(" ".join(requirements)))
        # pip checks a wheel's tags, not the libraries it links against (a
        # wheel built on a newer glibc installs, then fails to load)
        _run([os.path.join(new, "bin", "python"), "-c", "import IcePy"],
             "import IcePy in the new venv")
        mark = os.path.join(venv, MARK)
        if os.path.exists(mark):
            shutil.copy2(mark, os.path.join(new, MARK))
    except (CommandExecutionError, OSError) as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise CommandExecutionError(
            "rebuilding the venv failed, {} keeps serving ({}): {}".format(venv, plan["reason"], exc))
    link = os.path.basename(new)  # relative: the directories move together
    if os.path.islink(venv):
        tmp = venv + ".link.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(link, tmp)
        os.replace(tmp, venv)  # atomic
    else:
        os.rename(venv, plan["old"])
        os.symlink(link, venv)
    return plan


def old_venvs(venv, current=False):
    """
    The formula's venv directories beside ``venv`` (``<venv>.py*``,
    ``<venv>.old``) that the venv path does not link to: old venvs a
    rebuild left for :py:func:`remove_old`. ``current``: the one it links
    to as well (clean.sls).

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.old_venvs /opt/omero/web/venv3
    """
    venv = _absolute("venv", venv)
    target = _target(venv)
    found = []
    for path in sorted(glob.glob(glob.escape(venv) + ".*")):
        if ((current or path != target) and __utils__["omero_web_venv.is_sibling"](venv, path)
                and not os.path.islink(path) and os.path.exists(os.path.join(path, "pyvenv.cfg"))):
            found.append(path)
    return found


def remove_old(venv, current=False):
    """
    Remove :py:func:`old_venvs` (after the health check passed on the new
    one; ``current``: the one the venv path links to too, for clean.sls).
    Returns the directories removed.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.remove_old /opt/omero/web/venv3
    """
    removed = []
    for path in old_venvs(venv, current=current):
        shutil.rmtree(path)
        removed.append(path)
    return removed


def create(venv, python, upgrade_pip=True):
    """
    Create the venv with ``python -m venv`` (the platform's interpreter, not
    Salt's own), then upgrade its pip (old pips cannot install the manylinux
    wheels omero-web's dependencies ship). Returns :py:func:`status`.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.create /opt/omero/web/venv3 /usr/bin/python3
    """
    venv = _absolute("venv", venv)
    python = _absolute("python", python)
    _run([python, "-m", "venv", venv], "{} -m venv {}".format(python, venv))
    if upgrade_pip:
        install(venv, "pip", upgrade=True)
    return status(venv)


def install(venv, requirement, upgrade=True):
    """
    ``pip install [--upgrade] REQUIREMENT`` in the venv: a requirement, a
    wheel's local path or an https:// URL.

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.install /opt/omero/web/venv3 /srv/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl
    """
    venv = _absolute("venv", venv)
    if not isinstance(requirement, str) or not requirement.strip() or requirement.startswith("-"):
        raise SaltInvocationError(f"requirement: expected a requirement, got {requirement!r}")
    cmd = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet"]
    cmd += (["--upgrade"] if upgrade else []) + [requirement]
    _run(cmd, "pip install {}".format(requirement))
    return True
