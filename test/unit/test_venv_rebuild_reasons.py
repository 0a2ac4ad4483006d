"""
When a venv must be rebuilt for another interpreter
(``_utils/omero_web_venv.py``): the edge cases of the decision and of the
directory names. The states around it: test_venv_and_redis_states.py; the
real host: test/integration/test_93_new_python.py.
"""

import pytest


@pytest.fixture
def venv_utils(utils):
    return lambda name: utils["omero_web_venv." + name]


def facts(version="3.11.2", base="/usr/bin/python3.11", base_exists=True):
    return {"exists": base_exists, "version": version, "base": base, "base_exists": base_exists}


def python(executable="/usr/bin/python3", realpath="/usr/bin/python3.11", version="3.11.2"):
    return {"executable": executable, "realpath": realpath, "version": version}


def test_parse_pyvenv_cfg(venv_utils):
    cfg = venv_utils("parse_pyvenv_cfg")("home = /usr/bin\ninclude-system-site-packages = false\n"
                                         "version = 3.11.2\nexecutable = /usr/bin/python3.11\n")
    assert cfg["home"] == "/usr/bin" and cfg["version"] == "3.11.2"
    assert venv_utils("major_minor")("3.11.2.final.0") == "3.11"  # virtualenv's version_info
    assert venv_utils("major_minor")(None) is None


@pytest.mark.parametrize("venv,interpreter,reason", [
    (facts(), python(), None),
    # a patch release of the same interpreter (Debian's 3.11.2 -> 3.11.4): no rebuild
    (facts(version="3.11.2"), python(version="3.11.4"), None),
    (facts(), python("/opt/python3.13/bin/python3.13", "/opt/python3.13/bin/python3.13", "3.13.5"),
     "the venv was built by Python 3.11, python:executable /opt/python3.13/bin/python3.13 is Python 3.13"),
    (facts(base_exists=False), python(realpath="/usr/bin/python3.13", version="3.13.5"),
     "the venv's interpreter /usr/bin/python3.11 no longer exists (removed by an OS upgrade?): "
     "rebuilt with /usr/bin/python3 (Python 3.13)"),
    (facts(), python("/opt/py/bin/python3", "/opt/py/bin/python3.11"),
     "the venv runs /usr/bin/python3.11, python:executable /opt/py/bin/python3 is another "
     "interpreter (/opt/py/bin/python3.11)"),
    # a venv of copies (no link, no `executable` in pyvenv.cfg): the version decides
    (facts(base=None), python("/opt/py/bin/python3", "/opt/py/bin/python3.11"), None),
    # no venv yet: created, not rebuilt
    ({"exists": False, "version": None, "base": None, "base_exists": False}, python(version="3.13.5"), None),
])
def test_rebuild_reason(venv_utils, venv, interpreter, reason):
    assert venv_utils("rebuild_reason")(venv, interpreter) == reason


def test_directory_names(venv_utils):
    versioned, aside, sibling = venv_utils("versioned_dir"), venv_utils("aside_dir"), venv_utils("is_sibling")
    assert versioned("/opt/w/venv3", "3.13.5", "/opt/w/venv3") == "/opt/w/venv3.py3.13"
    assert versioned("/opt/w/venv3", "3.13.5", "/opt/w/venv3.py3.13") == "/opt/w/venv3.py3.13-2"
    assert aside("/opt/w/venv3", "3.11.2", "/opt/w/venv3.py3.13") == "/opt/w/venv3.py3.11"
    assert aside("/opt/w/venv3", "3.11.2", "/opt/w/venv3.py3.11") == "/opt/w/venv3.old"
    assert aside("/opt/w/venv3", None, "/opt/w/venv3.py3.13") == "/opt/w/venv3.old"
    assert sibling("/opt/w/venv3", "/opt/w/venv3.py3.11") and sibling("/opt/w/venv3", "/opt/w/venv3.old")
    assert sibling("/opt/w/venv3", "/opt/w/venv3.py3.13-2")
    for other in ("/opt/w/venv3", "/opt/w/venv3.py3", "/opt/w/venv3.backup", "/opt/x/venv3.py3.11",
                  "/opt/w/venv3.py3.11/../etc"):
        assert not sibling("/opt/w/venv3", other), other
