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

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero_venv"

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def __virtual__():
    if os.name != "posix":
        return (False, "omero_venv needs a POSIX host")
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


def status(venv):
    """
    What the venv is: ``exists`` (its python runs), ``pip`` (pip is there:
    the last file ``-m venv`` writes), ``home`` and ``version`` of the
    interpreter that built it (its ``pyvenv.cfg``).

    CLI Example:

    .. code-block:: bash

        salt '*' omero_venv.status /opt/omero/web/venv3
    """
    venv = _absolute("venv", venv)
    config = {}
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition("=")
                if sep:
                    config[key.strip()] = value.strip()
    except OSError:
        pass
    return {
        "exists": os.access(os.path.join(venv, "bin", "python"), os.X_OK),
        "pip": os.path.exists(os.path.join(venv, "bin", "pip")),
        "home": config.get("home"),
        "version": config.get("version") or config.get("version_info"),
    }


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
