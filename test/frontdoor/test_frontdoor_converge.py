"""The README's first command, exactly as written, on a machine with nothing cached.

``test/kitchen/kitchen converge`` runs with OMERO_WEB_KITCHEN_CACHE pointing
at a new, empty directory: debootstrap, Salt in the golden root, the host copy,
boot and apply all run from nothing. Only the IcePy wheel is seeded into the
new cache's wheels/ (copied from the machine's kitchen cache, when it has one),
to save its 6-8 minute build; without it the command builds it too.

Two additions to the command, both through what the front door offers: a
--pillar file with ports in this suite's range (the machine's 80/4080/6379
may be in use by other kitchen hosts), and OMERO_WEB_KITCHEN_NAME for a host
name of this suite's own (kt-...). Then ``test/kitchen/kitchen destroy``, and
the temporary cache is removed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "test", "kitchen"))
import kitchen  # noqa: E402  (only for the machine's cache paths and the OS's python)

pytestmark = pytest.mark.kitchen

FRONT_DOOR = os.path.join(REPO, "test", "kitchen", "kitchen")
HOST_NAME = "kt-frontdoor"
PILLAR = """\
omero_web:
  nginx: {port: 9180}
  gunicorn: {port: 9181}
  sessions: {redis_url: "redis://127.0.0.1:9182/0"}
"""


def _seed_wheel(cache):
    """Copy the machine's IcePy wheel for the selected OS's python, if it has one."""
    tag = kitchen.OS_RELEASES[kitchen.selected_os()].python_tag
    wheel = kitchen._wheel_in(kitchen.WHEELS, tag)
    if wheel:
        os.makedirs(os.path.join(cache, "wheels"))
        shutil.copy(wheel, os.path.join(cache, "wheels"))
    return wheel


def test_readme_first_command_serves_from_an_empty_cache(tmp_path):
    # Under /var/tmp (disk, not a tmpfs): the roots and the host take ~2 GB.
    cache = tempfile.mkdtemp(prefix="kt-frontdoor-cache-", dir="/var/tmp")
    os.chmod(cache, 0o755)
    pillar = tmp_path / "ports.sls"
    pillar.write_text(PILLAR)
    env = dict(os.environ, OMERO_WEB_KITCHEN_CACHE=cache, OMERO_WEB_KITCHEN_NAME=HOST_NAME)
    stderr_log = tmp_path / "converge.stderr"
    try:
        seeded = _seed_wheel(cache)
        with open(str(stderr_log), "w") as err:
            converge = subprocess.run([FRONT_DOOR, "converge", "--pillar", str(pillar)], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=err, text=True, timeout=3600)
        progress = stderr_log.read_text()
        sys.stderr.write(progress)  # shown by pytest on failure, or with -s
        sys.stdout.write(converge.stdout)
        built = sorted(os.listdir(cache))
        status = body = None
        match = re.search(r"OMERO\.web answers through nginx at (\S+)", converge.stdout)
        if match:
            with urllib.request.urlopen(match.group(1), timeout=30) as resp:
                status, body = resp.status, resp.read().decode("utf-8", "replace")
    finally:
        destroy = subprocess.run([FRONT_DOOR, "destroy"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, timeout=300)
        host_root = os.path.join(cache, "hosts", HOST_NAME)
        host_left = os.path.exists(host_root)
        shutil.rmtree(cache, ignore_errors=True)

    assert converge.returncode == 0, "converge failed:\n" + progress[-5000:] + converge.stdout[-3000:]
    assert "Traceback" not in progress
    # It did every step itself, from the empty cache (only the wheel was seeded).
    release = kitchen.OS_RELEASES[kitchen.selected_os()]
    golden = os.path.basename(kitchen.golden_dir(release.name, kitchen.salt_requirement()))
    assert "debootstrap %s (%s)" % (release.label, release.suite) in progress
    assert "into the golden root's /opt/salt" in progress
    assert "booting %s" % HOST_NAME in progress
    if not seeded:
        assert "building the IcePy 3.6.5 wheel" in progress
    assert {"rootfs-" + release.suite, golden, "wheels", "hosts"} <= set(built), built
    assert match, "no URL printed:\n" + converge.stdout
    assert match.group(1) == "http://127.0.0.1:9180/omero/webclient/login/"
    assert status == 200 and "OMERO.web - Login" in body
    assert destroy.returncode == 0, destroy.stdout
    assert "destroyed %s" % HOST_NAME in destroy.stdout
    assert not host_left
