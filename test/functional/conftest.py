"""
Fixtures for the functional tests of the ``omero`` execution and state
modules against the REAL omero CLI.

* ``icepy_wheel``: the zeroc-ice 3.6.5 wheel in
  /var/cache/omero-web-formula/wheels; when it is missing it is BUILT with
  test/kitchen/build-icepy-wheel.sh (about 5-10 minutes, once). A build that
  is already running (the kitchen's) is waited for, not duplicated.
* ``omero_venv``: /var/cache/omero-web-formula/venv-functional, a venv of the
  system python (/usr/bin/python3: the unprivileged user cannot reach pyenv's
  python under /root) with the wheel, omero-web and gunicorn from PyPI. It is
  reused while its stamp (python version, wheel, requirement spec) matches;
  the stamp also records the installed omero-web/omero-py versions.
  ``OMERO_FUNCTIONAL_OMERO_WEB=omero-web==5.33.2`` pins another release
  (and rebuilds the venv).
* ``omero_user``: the unprivileged system user ``omerotest`` (created once).
* ``omerodir``: a fresh OMERODIR per test, owned by that user.
* ``loaders``: Salt's real loader (pytest-salt-factories ``Loaders``) with
  file_roots at the repository (``saltutil.sync_all`` syncs ``_modules`` and
  ``_states`` like a highstate would) and pillar ``omero_web:user|venv``
  pointing at the test user and venv. State functions run through
  ``state.single``, i.e. the real state machinery.
* ``spawned``: counts omero processes from outside the modules, with a
  Python audit hook on ``subprocess.Popen`` (every process Salt's
  ``cmd.run_all`` starts goes through it): argv[0] in the venv's bin/.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("OMERO_FORMULA_CACHE", "/var/cache/omero-web-formula"))
WHEELS = CACHE / "wheels"
VENV = CACHE / "venv-functional"
BUILD_SCRIPT = REPO / "test" / "kitchen" / "build-icepy-wheel.sh"
VENV_PYTHON = os.environ.get("OMERO_FUNCTIONAL_PYTHON", "/usr/bin/python3")
OMERO_WEB_SPEC = os.environ.get("OMERO_FUNCTIONAL_OMERO_WEB", "omero-web")
USER = "omerotest"
USER_HOME = pathlib.Path("/var/lib/omerotest")


def pytest_collection_modifyitems(items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.functional)


@contextlib.contextmanager
def _file_lock(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _python_tag(python):
    out = subprocess.run(
        [python, "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _find_wheel(tag):
    found = sorted(WHEELS.glob(f"zeroc_ice-3.6.5-{tag}-*.whl"))
    return found[0] if found else None


def _running_builds():
    out = subprocess.run(["pgrep", "-f", "build-icepy"], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split() if int(pid) != os.getpid()]


@pytest.fixture(scope="session")
def icepy_wheel():
    tag = _python_tag(VENV_PYTHON)
    wheel = _find_wheel(tag)
    if wheel:
        return wheel
    # Somebody (the kitchen) may be building it right now: wait, don't duplicate.
    deadline = time.time() + 45 * 60
    while _running_builds() and not _find_wheel(tag):
        if time.time() > deadline:
            pytest.fail("an IcePy wheel build has been running for 45 minutes")
        time.sleep(10)
    with _file_lock(CACHE / ".icepy-build.lock"):
        wheel = _find_wheel(tag)
        if wheel:
            return wheel
        sys.stderr.write(f"\n>> building the IcePy wheel with {BUILD_SCRIPT} (5-10 minutes)\n")
        subprocess.run(
            ["bash", str(BUILD_SCRIPT), VENV_PYTHON, str(WHEELS)],
            check=True,
            timeout=60 * 60,
        )
    wheel = _find_wheel(tag)
    assert wheel, f"{BUILD_SCRIPT} did not produce a {tag} wheel in {WHEELS}"
    return wheel


def _venv_key(wheel):
    version = subprocess.run(
        [VENV_PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {"python": f"{VENV_PYTHON} {version}", "wheel": wheel.name, "spec": OMERO_WEB_SPEC}


def _installed_versions(venv):
    code = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({p: m.version(p) for p in ('omero-web', 'omero-py', 'zeroc-ice')}))"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def omero_venv(icepy_wheel):
    key = _venv_key(icepy_wheel)
    stamp = VENV / "functional-stamp.json"
    with _file_lock(CACHE / ".venv-functional.lock"):
        if stamp.exists() and (VENV / "bin" / "omero").exists():
            data = json.loads(stamp.read_text())
            if data.get("key") == key:
                return VENV
        shutil.rmtree(VENV, ignore_errors=True)
        sys.stderr.write(f"\n>> creating {VENV} ({OMERO_WEB_SPEC}, {icepy_wheel.name})\n")
        old_umask = os.umask(0o022)
        try:
            subprocess.run([VENV_PYTHON, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [str(VENV / "bin" / "pip"), "install", "--quiet", str(icepy_wheel), OMERO_WEB_SPEC, "gunicorn"],
                check=True,
                timeout=30 * 60,
            )
        finally:
            os.umask(old_umask)
        stamp.write_text(json.dumps({"key": key, "installed": _installed_versions(VENV)}, indent=2))
    return VENV


@pytest.fixture(scope="session")
def omero_user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--create-home",
                "--home-dir",
                str(USER_HOME),
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ],
            check=True,
        )
    return pwd.getpwnam(USER)


@pytest.fixture(scope="session")
def workspace():
    # Under /var/tmp: pytest's tmp_path lives in a root-only (0700) directory.
    path = pathlib.Path(tempfile.mkdtemp(prefix="omero-functional-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def omerodir(workspace, omero_user, request):
    prefix = "".join(c if c.isalnum() or c in "_-" else "_" for c in request.node.name[:40])
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix + "-", dir=workspace))
    base.chmod(0o755)
    path = base / "omero-web"
    path.mkdir()
    os.chown(path, omero_user.pw_uid, omero_user.pw_gid)
    path.chmod(0o750)
    return path


@pytest.fixture(scope="session")
def salt_opts(workspace, omero_venv, omero_user):
    import salt.config  # pylint: disable=import-outside-toplevel

    root = workspace / "salt"
    pillar_dir = root / "pillar"
    pillar_dir.mkdir(parents=True)
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - omero_web\n")
    (pillar_dir / "omero_web.sls").write_text(
        json.dumps({"omero_web": {"user": omero_user.pw_name, "venv": str(omero_venv)}})
    )
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "omero-functional",
            "root_dir": str(root),
            "conf_file": str(root / "minion"),
            "cachedir": str(root / "cache"),
            "extension_modules": str(root / "extmods"),  # outside cachedir: Loaders wipes cachedir
            "pki_dir": str(root / "pki"),
            "sock_dir": str(root / "sock"),
            "log_file": str(root / "minion.log"),
            "file_client": "local",
            "file_roots": {"base": [str(REPO)]},
            "pillar_roots": {"base": [str(pillar_dir)]},
            "state_events": False,
            "test": False,
        }
    )
    return opts


@pytest.fixture(scope="session")
def minion_python():
    """
    ``cmd.run_all(runas=...)`` reads the user's login environment by running
    ``su - USER -c <sys.executable>``. A real minion's python (onedir under
    /opt/saltstack) is executable by everyone; this test run's python lives
    under /root (0700), so point sys.executable at the system python while
    the modules run, as on a real minion.
    """
    saved = sys.executable
    if not os.access(saved, os.X_OK) or os.path.realpath(saved).startswith("/root/"):
        sys.executable = VENV_PYTHON
    yield sys.executable
    sys.executable = saved


@pytest.fixture(scope="session")
def loaders(salt_opts, minion_python):
    from saltfactories.utils.functional import Loaders  # pylint: disable=import-outside-toplevel

    # Salt queues log records in a temporary handler bound to the stderr pytest
    # had at import time and flushes them at exit, after pytest closed it
    # ("--- Logging error ---"). Hand them to pytest's log capture instead.
    try:
        import salt._logging.impl  # pylint: disable=import-outside-toplevel

        salt._logging.impl.shutdown_temp_handler()
    except (ImportError, AttributeError):  # pragma: no cover - other salt versions
        pass
    loaders = Loaders(salt_opts)
    assert "omero.config_batch" in loaders.modules, "the omero execution module did not load"
    assert "omero.config_managed" in loaders.states, "the omero state module did not load"
    return loaders


@pytest.fixture
def mods(loaders, salt_opts):
    loaders.context.clear()
    # Each test starts like a first run: no default lists cached on disk yet
    # (the omero module keeps them in the minion's cachedir between runs).
    shutil.rmtree(os.path.join(salt_opts["cachedir"], "omero"), ignore_errors=True)
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states


class Spawned:
    """Processes started by this Python process (audit hook on subprocess.Popen)."""

    def __init__(self):
        self.argvs = []
        self.recording = False

    def hook(self, event, args):
        if event == "subprocess.Popen" and self.recording:
            argv = args[1]
            if isinstance(argv, (str, bytes, os.PathLike)):
                argv = [argv]
            self.argvs.append([os.fsdecode(a) for a in argv])

    def omero(self, venv):
        prefix = str(venv / "bin") + os.sep
        return [argv for argv in self.argvs if argv and argv[0].startswith(prefix)]


_SPAWNED = Spawned()
sys.addaudithook(_SPAWNED.hook)


@pytest.fixture
def spawned(omero_venv):
    """Record processes spawned during the test; ``spawned.count()``: omero ones."""
    _SPAWNED.argvs = []
    _SPAWNED.recording = True

    class View:
        def count(self):
            return len(_SPAWNED.omero(omero_venv))

        def reset(self):
            _SPAWNED.argvs = []

        @property
        def argvs(self):
            return list(_SPAWNED.omero(omero_venv))

    yield View()
    _SPAWNED.recording = False


@pytest.fixture
def omero_cli(omero_venv, omero_user):
    """Run the real omero CLI as the test user: omero_cli(omerodir, *args)."""

    def run(omerodir, *args, check=True):
        env = {
            "OMERODIR": str(omerodir),
            "PATH": f"{omero_venv}/bin:/usr/bin:/bin",
            "HOME": omero_user.pw_dir,
            "LANG": "C.UTF-8",
        }
        recording, _SPAWNED.recording = _SPAWNED.recording, False  # not the modules' doing
        try:
            proc = _run_as_user(args, env)
        finally:
            _SPAWNED.recording = recording
        if check and proc.returncode != 0:
            raise AssertionError(f"omero {' '.join(args)} failed: {proc.stderr}")
        return proc

    def _run_as_user(args, env):
        return subprocess.run(
            [str(omero_venv / "bin" / "omero"), *args],
            env=env,
            cwd="/",
            user=omero_user.pw_uid,
            group=omero_user.pw_gid,
            extra_groups=[],
            umask=0o027,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
