"""
The venv states (``_states/omero_venv.py`` on the real
``_modules/omero_venv.py``) and the Redis directives state
(``_states/omero_web.py``): what a dry run predicts is what a real run
does, decided inside the state functions.

``cmd.run_all`` is a fake that does what ``python -m venv`` and ``pip
install`` leave on disk (bin/python, bin/pip, a dist-info), so the states'
re-reads see real files. Real venvs are made on the kitchen hosts
(test/integration).
"""

import os
import pathlib
import shutil

import pytest

from unit_support import FORMULA, install_dist

venv_module = FORMULA.omero_venv
venv_state = FORMULA.omero_venv_state
web_state = FORMULA.omero_web_state

WHEEL = "/srv/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"


class FakeVenvTools:
    """``python -m venv`` and ``pip install``, as far as the files go."""

    #: the interpreters' versions (``python -c``); any other is 3.11.2
    versions = {"/opt/python3.13/bin/python3.13": "3.13.5"}

    def __init__(self):
        self.calls = []
        self.failing = None  # a requirement whose pip install fails

    def __call__(self, cmd, **kwargs):
        if cmd[1:2] == ["-c"] and cmd[2].startswith("import sys"):
            return {"retcode": 0, "stdout": self.versions.get(cmd[0], "3.11.2") + "\n", "stderr": ""}
        self.calls.append(cmd)
        if self.failing and self.failing in cmd:
            return {"retcode": 1, "stdout": "", "stderr": "ERROR: No matching distribution found for " + self.failing}
        if cmd[1:3] == ["-m", "venv"]:
            bindir = pathlib.Path(cmd[3]) / "bin"
            bindir.mkdir(parents=True)
            for exe in ("python", "pip"):
                (bindir / exe).write_text("#!/bin/sh\n")
                (bindir / exe).chmod(0o755)
            version = self.versions.get(cmd[0], "3.11.2")
            (pathlib.Path(cmd[3]) / "pyvenv.cfg").write_text(
                "home = {}\nversion = {}\n".format(os.path.dirname(cmd[0]), version))
        elif cmd[1:4] == ["-m", "pip", "install"] and cmd[-1] == WHEEL:
            install_dist(pathlib.Path(cmd[0]).parents[1], "zeroc-ice", "3.6.5")
        return {"retcode": 0, "stdout": "", "stderr": ""}


@pytest.fixture
def tools():
    return FakeVenvTools()


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def pip_installed():
    calls = []

    def state(**kwargs):
        calls.append(kwargs)
        return {"name": kwargs["name"], "result": True, "changes": {}, "comment": "all installed"}

    state.calls = calls
    return state


@pytest.fixture
def configure_loader_modules(tools, opts, pip_installed, utils):
    salt = {"cmd.run_all": tools}
    for name in ("status", "dist_version", "create", "install", "site_packages", "interpreter",
                 "rebuild_plan", "rebuild", "old_venvs", "remove_old"):
        salt["omero_venv." + name] = getattr(venv_module, name)
    return {
        venv_module: {"__salt__": salt, "__opts__": opts, "__utils__": utils},
        venv_state: {"__salt__": salt, "__opts__": opts, "__states__": {"pip.installed": pip_installed}},
        web_state: {"__opts__": opts, "__states__": {}, "__utils__": utils},
    }


def test_present_predicts_then_creates_then_is_a_noop(tmp_path, tools, opts):
    venv = str(tmp_path / "venv3")
    opts["test"] = True
    predicted = venv_state.present(venv, python="/usr/bin/python3", wheel=WHEEL)
    assert predicted["result"] is None and tools.calls == []
    assert set(predicted["changes"]) == {"venv", "icepy"}
    opts["test"] = False
    applied = venv_state.present(venv, python="/usr/bin/python3", wheel=WHEEL)
    assert applied["result"] is True
    assert applied["changes"] == predicted["changes"]
    # python -m venv, pip upgrade, the wheel; all without a shell
    assert tools.calls[0] == ["/usr/bin/python3", "-m", "venv", venv]
    assert tools.calls[-1][-1] == WHEEL
    assert venv_module.status(venv)["version"] == "3.11.2"
    again = venv_state.present(venv, python="/usr/bin/python3", wheel=WHEEL)
    assert again["result"] is True and again["changes"] == {}
    assert len(tools.calls) == 3


def test_present_installs_only_a_missing_icepy(tmp_path, tools, opts):
    venv = tmp_path / "venv3"
    tools(["/usr/bin/python3", "-m", "venv", str(venv)])
    tools.calls.clear()
    opts["test"] = True
    predicted = venv_state.present(str(venv), python="/usr/bin/python3", wheel=WHEEL)
    assert set(predicted["changes"]) == {"icepy"}
    opts["test"] = False
    applied = venv_state.present(str(venv), python="/usr/bin/python3", wheel=WHEEL)
    assert applied["changes"] == predicted["changes"] and applied["result"] is True
    assert tools.calls == [[str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--upgrade", WHEEL]]


def test_present_a_wheel_that_installs_nothing_fails(tmp_path, tools):
    venv = str(tmp_path / "venv3")
    ret = venv_state.present(venv, python="/usr/bin/python3", wheel="/srv/wheels/other.whl")
    assert ret["result"] is False and "still missing" in ret["comment"]


def test_packages_before_the_venv(tmp_path, opts, pip_installed):
    venv = str(tmp_path / "venv3")
    opts["test"] = True
    ret = venv_state.packages_installed("pkgs", venv=venv, pkgs=["omero-web>=5.6.1"])
    assert ret["result"] is None and ret["changes"] == {"installed": ["omero-web>=5.6.1"]}
    opts["test"] = False
    ret = venv_state.packages_installed("pkgs", venv=venv, pkgs=["omero-web>=5.6.1"])
    assert ret["result"] is False and "does not exist" in ret["comment"]
    assert pip_installed.calls == []


def test_packages_in_the_venv_are_pips(tmp_path, tools, pip_installed):
    venv = tmp_path / "venv3"
    tools(["/usr/bin/python3", "-m", "venv", str(venv)])
    ret = venv_state.packages_installed("pkgs", venv=str(venv), pkgs=["omero-web>=5.6.1", "whitenoise"])
    assert ret["result"] is True
    assert pip_installed.calls == [
        {"name": "pkgs", "pkgs": ["omero-web>=5.6.1", "whitenoise"], "bin_env": str(venv)}
    ]


@pytest.mark.parametrize("requirement", ["", "--index-url=http://evil", None])
def test_install_refuses_options_as_requirements(tmp_path, requirement):
    with pytest.raises(Exception):
        venv_module.install(str(tmp_path), requirement)


# ---------------------------------------------------------------- a new Python

PY313 = "/opt/python3.13/bin/python3.13"


def converged_venv(tmp_path, tools):
    """A venv as the previous formula left it: a real directory, Python 3.11,
    IcePy, omero-web 5.33.2, the formula's mark."""
    venv = tmp_path / "venv3"
    tools(["/usr/bin/python3", "-m", "venv", str(venv)])
    install_dist(venv, "zeroc-ice", "3.6.5")
    install_dist(venv, "omero-web", "5.33.2")
    (venv / ".omero-web-formula").write_text("mark")
    tools.calls.clear()
    return venv


def test_rebuild_for_another_python_predicted_then_done(tmp_path, tools, opts):
    venv = converged_venv(tmp_path, tools)
    pkgs = ["omero-web>=5.6.1", "whitenoise"]
    opts["test"] = True
    predicted = venv_state.present(str(venv), python=PY313, wheel=WHEEL, pkgs=pkgs)
    removal = venv_state.old_removed(str(venv), python=PY313)
    assert predicted["result"] is None and tools.calls == [] and venv.is_dir() and not venv.is_symlink()
    assert predicted["changes"]["venv"] == {
        "old": str(venv) + ".py3.11", "new": str(venv) + ".py3.13",
        "why": "the venv was built by Python 3.11, python:executable {} is Python 3.13".format(PY313)}
    assert "a rebuild is due: the venv was built by Python 3.11" in predicted["comment"]
    assert removal["result"] is None and removal["changes"] == {"removed": [str(venv) + ".py3.11"]}

    opts["test"] = False
    applied = venv_state.present(str(venv), python=PY313, wheel=WHEEL, pkgs=pkgs)
    assert applied["result"] is True, applied["comment"]
    assert applied["changes"] == predicted["changes"]
    # the new venv beside the old, with IcePy and the packages (omero-web at
    # the version that ran), then the stable path links to it
    new = str(venv) + ".py3.13"
    assert tools.calls[0] == [PY313, "-m", "venv", new]
    assert tools.calls[-2][-2:] == ["omero-web==5.33.2", "whitenoise"]
    assert tools.calls[-1] == [new + "/bin/python", "-c", "import IcePy"]
    assert os.readlink(str(venv)) == "venv3.py3.13"
    assert (venv / ".omero-web-formula").read_text() == "mark"
    assert venv_module.status(str(venv))["version"] == "3.13.5"
    assert venv_module.old_venvs(str(venv)) == [str(venv) + ".py3.11"]
    # re-read: nothing is due any more; the old venv goes after the health check
    assert venv_state.present(str(venv), python=PY313, wheel=WHEEL, pkgs=pkgs)["changes"] == {}
    removed = venv_state.old_removed(str(venv), python=PY313)
    assert removed["result"] is True and removed["changes"] == removal["changes"]
    assert not os.path.exists(str(venv) + ".py3.11") and os.path.isdir(new)
    assert venv_state.old_removed(str(venv), python=PY313)["changes"] == {}


def test_a_failed_rebuild_leaves_the_old_venv(tmp_path, tools):
    venv = converged_venv(tmp_path, tools)
    tools.failing = "nosuchapp==1.0"
    ret = venv_state.present(str(venv), python=PY313, wheel=WHEEL, pkgs=["nosuchapp==1.0"])
    assert ret["result"] is False and ret["changes"] == {}
    assert "rebuilding the venv failed, {} keeps serving".format(venv) in ret["comment"]
    assert "No matching distribution found for nosuchapp==1.0" in ret["comment"]
    assert venv.is_dir() and not venv.is_symlink() and not os.path.exists(str(venv) + ".py3.13")
    assert venv_module.status(str(venv))["version"] == "3.11.2"


def test_a_wheel_that_installs_but_does_not_load_fails_the_rebuild(tmp_path, tools):
    """A wheel built against a newer glibc: pip installs it, ``import IcePy`` fails."""
    venv = converged_venv(tmp_path, tools)
    tools.failing = "import IcePy"
    ret = venv_state.present(str(venv), python=PY313, wheel=WHEEL, pkgs=[])
    assert ret["result"] is False and "import IcePy in the new venv failed" in ret["comment"]
    assert venv.is_dir() and not venv.is_symlink() and not os.path.exists(str(venv) + ".py3.13")


def test_a_second_rebuild_replaces_the_link(tmp_path, tools):
    """A linked venv (rebuilt before) whose interpreter is gone: rebuilt again
    by the same Python version, beside the current one (``-2``)."""
    venv = converged_venv(tmp_path, tools)
    tools.versions = dict(tools.versions, **{str(tmp_path / "py" / "python3.13"): "3.13.5"})
    venv_module.rebuild(str(venv), PY313, WHEEL)
    new = pathlib.Path(str(venv) + ".py3.13")
    (new / "bin" / "python").unlink()
    (new / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.13")
    plan = venv_module.rebuild_plan(str(venv), PY313)
    assert plan == {"reason": "the venv's interpreter {} no longer exists (removed by an OS upgrade?): "
                              "rebuilt with {} (Python 3.13)".format(tmp_path / "gone" / "python3.13", PY313),
                    "new": str(venv) + ".py3.13-2", "old": str(new)}
    venv_module.rebuild(str(venv), PY313, WHEEL)
    assert os.readlink(str(venv)) == "venv3.py3.13-2"
    assert venv_module.old_venvs(str(venv)) == [str(venv) + ".py3.11", str(new)]


def test_the_platform_python_that_built_the_venv_needs_no_rebuild(tmp_path, tools):
    venv = converged_venv(tmp_path, tools)
    assert venv_module.rebuild_plan(str(venv), "/usr/bin/python3") is None
    assert venv_module.rebuild_plan(str(tmp_path / "none"), PY313) is None


# ---------------------------------------------------------------- redis.conf

REDIS_CONF = """\
bind 127.0.0.1 -::1
port 6379
# unixsocket /run/redis/redis-server.sock
# unixsocketperm 700
daemonize yes
"""


class FileManaged:
    def __call__(self, name, contents, **kwargs):
        pathlib.Path(name).write_text(contents)
        return {"name": name, "result": True, "changes": {"diff": "..."}, "comment": "updated"}


@pytest.fixture
def redis_conf(tmp_path):
    path = tmp_path / "redis.conf"
    path.write_text(REDIS_CONF)
    os.chmod(path, 0o640)
    web_state.__states__["file.managed"] = FileManaged()
    return path


@pytest.mark.parametrize(
    "directives,lines",
    [
        ({"port": 6380}, ["port 6380"]),
        ({"unixsocket": "/run/redis/r.sock", "unixsocketperm": 770},
         ["unixsocket /run/redis/r.sock", "unixsocketperm 770"]),
    ],
)
def test_redis_directives_predict_set_then_noop(redis_conf, opts, directives, lines):
    opts["test"] = True
    predicted = web_state.redis_directives(str(redis_conf), directives)
    assert predicted["result"] is None and redis_conf.read_text() == REDIS_CONF
    opts["test"] = False
    applied = web_state.redis_directives(str(redis_conf), directives)
    assert applied["result"] is True and applied["changes"] == predicted["changes"]
    text = redis_conf.read_text().splitlines()
    assert all(line in text for line in lines)
    assert "bind 127.0.0.1 -::1" in text and "daemonize yes" in text
    assert web_state.redis_directives(str(redis_conf), directives)["changes"] == {}


def test_redis_directives_before_the_package(tmp_path, opts):
    missing = str(tmp_path / "nowhere" / "redis.conf")
    opts["test"] = True
    same = web_state.redis_directives(missing, {"port": 6379}, package_defaults={"port": 6379})
    other = web_state.redis_directives(missing, {"port": 6380}, package_defaults={"port": 6379})
    assert same["result"] is True and same["changes"] == {}
    assert other["result"] is None and other["changes"] == {"port": {"old": "6379", "new": "6380"}}
    opts["test"] = False
    assert web_state.redis_directives(missing, {"port": 6380})["result"] is False


def test_requirepass_is_masked_and_resolved_from_the_secret_file(redis_conf, tmp_path, opts):
    secret = tmp_path / "redis-password"
    ref = "@@omero-web-secret:{}@@".format(secret)
    opts["test"] = True
    predicted = web_state.redis_directives(str(redis_conf), {"requirepass": ref})
    assert predicted["result"] is None  # the secret does not exist yet
    opts["test"] = False
    assert web_state.redis_directives(str(redis_conf), {"requirepass": ref})["result"] is False
    assert web_state.secret_present(str(secret))["changes"] == {"secret": "generated"}
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    value = secret.read_text().strip()
    applied = web_state.redis_directives(str(redis_conf), {"requirepass": ref})
    assert applied["result"] is True
    assert applied["changes"] == {"requirepass": {"old": None, "new": "********"}}
    assert value not in str(applied)
    assert "requirepass " + value in redis_conf.read_text()
    assert web_state.secret_present(str(secret))["changes"] == {}
    assert secret.read_text().strip() == value  # generated once


def test_packages_dry_run_names_each_upgrade_or_downgrade(tmp_path, tools, opts, pip_installed):
    """pip.installed's dry run lists every package once one needs installing;
    the state's changes name only those whose installed version misses the
    requirement, with the installed and the wanted version (issue 11)."""
    venv = tmp_path / "venv3"
    tools(["/usr/bin/python3", "-m", "venv", str(venv)])
    install_dist(venv, "omero-web", "5.29.3")
    install_dist(venv, "whitenoise", "6.12.0")
    install_dist(venv, "omero-figure", "7.4.1")
    pkgs = ["omero-web==5.33.2", "whitenoise", "omero-figure>=7,<8", "django-redis"]

    def would_install(**kwargs):
        return {"name": kwargs["name"], "result": None, "changes": {},
                "comment": "Python package(s) set to be installed:\n" + "\n".join(kwargs["pkgs"])}

    venv_state.__states__["pip.installed"] = would_install
    opts["test"] = True
    ret = venv_state.packages_installed("pkgs", venv=str(venv), pkgs=pkgs)
    assert ret["result"] is None
    assert ret["changes"] == {"omero-web": {"old": "5.29.3", "new": "omero-web==5.33.2"},
                              "django-redis": {"old": None, "new": "django-redis"}}
    # one package: pip.installed's other wording
    venv_state.__states__["pip.installed"] = lambda **kw: {
        "name": kw["name"], "result": None, "changes": {},
        "comment": "Python package omero-web==5.29.3 is set to be installed"}
    install_dist(venv, "omero-web", "5.33.2")
    for old in (venv / "lib" / "python3.11" / "site-packages").glob("omero_web-5.29.3.dist-info"):
        shutil.rmtree(old)
    ret = venv_state.packages_installed("pkgs", venv=str(venv), pkgs=["omero-web==5.29.3"])
    assert ret["changes"] == {"omero-web": {"old": "5.33.2", "new": "omero-web==5.29.3"}}
