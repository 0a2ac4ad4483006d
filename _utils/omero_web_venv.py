"""
Day two: a new Python under the venv.

A venv belongs to the interpreter that built it: its ``bin/python`` links
to it and its ``pyvenv.cfg`` names it (``home``, ``version``,
``executable``). When the OS upgrade removes that interpreter, or the
pillar's ``python:executable`` names another one, the venv is rebuilt
beside the old one (``<venv>.py<X.Y>``) and the pillar's ``venv`` path
becomes a link to it; the old venv goes only after the health check.

Pure code: the facts come from ``omero_venv.status`` and
``omero_venv.interpreter``; no processes, no file access.
"""

import os
import re

_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")


def parse_pyvenv_cfg(text):
    """``pyvenv.cfg``'s ``key = value`` lines as a dict (keys stripped)."""
    config = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip()
    return config


def major_minor(version):
    """``"3.11.2"`` (or ``version_info``'s ``"3.11.2.final.0"``) -> ``"3.11"``; None if unknown."""
    found = _VERSION.match(version or "")
    return "{}.{}".format(*found.groups()) if found else None


def rebuild_reason(venv, python):
    """
    Why the venv must be rebuilt by ``python``, as a sentence; None when it
    need not be (or does not exist yet: it is then simply created).

    venv
        ``omero_venv.status``: ``exists``, ``version`` (pyvenv.cfg),
        ``base`` (the interpreter it runs: its bin/python's target, else
        pyvenv.cfg's ``executable``) and ``base_exists``.
    python
        ``omero_venv.interpreter``: ``executable`` (the pillar's),
        ``realpath`` and ``version`` (None when it does not run).
    """
    if not (venv.get("base") or venv.get("version")):
        return None
    built, wanted = major_minor(venv.get("version")), major_minor(python.get("version"))
    base = venv.get("base")
    if base and not venv.get("base_exists"):
        return "the venv's interpreter {} no longer exists (removed by an OS upgrade?): " \
               "rebuilt with {} (Python {})".format(base, python["executable"], wanted)
    if built and wanted and built != wanted:
        return "the venv was built by Python {}, python:executable {} is Python {}".format(
            built, python["executable"], wanted)
    if base and python.get("realpath") and os.path.normpath(base) != os.path.normpath(python["realpath"]):
        return "the venv runs {}, python:executable {} is another interpreter ({})".format(
            base, python["executable"], python["realpath"])
    return None


def versioned_dir(venv, version, current):
    """
    Where the rebuilt venv goes: ``<venv>.py<X.Y>`` beside the stable path,
    or ``<venv>.py<X.Y>-2`` when the current venv already is that
    directory (same version, another interpreter).
    """
    venv = os.path.normpath(venv)
    first = "{}.py{}".format(venv, major_minor(version))
    return first + "-2" if os.path.normpath(current or "") == first else first


def aside_dir(venv, version, new_dir):
    """
    Where an adopted venv (a real directory at the stable path) moves when
    the stable path becomes a link: ``<venv>.py<X.Y>`` of its own version,
    ``<venv>.old`` if that is the new venv's place or the version is unknown.
    """
    venv = os.path.normpath(venv)
    built = major_minor(version)
    candidate = "{}.py{}".format(venv, built) if built else None
    if candidate is None or candidate == os.path.normpath(new_dir):
        return venv + ".old"
    return candidate


def is_sibling(venv, path):
    """Whether ``path`` is one of the formula's venv directories beside ``venv``
    (``<venv>.py*`` or ``<venv>.old``): the only ones it ever removes."""
    venv, path = os.path.normpath(venv), os.path.normpath(path)
    if os.path.dirname(path) != os.path.dirname(venv):
        return False
    name, base = os.path.basename(path), os.path.basename(venv)
    return name == base + ".old" or bool(re.match(re.escape(base) + r"\.py\d+\.\d+(-2)?$", name))
