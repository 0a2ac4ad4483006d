"""salt-lint over every sls of the formula, yamllint over its YAML."""

import shutil
import subprocess
import sys

import pytest

from render_support import REPO


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail("{} is not installed (pip install -r test/requirements.txt)".format(name))
    return path


def test_salt_lint_is_clean():
    sls = sorted(str(path.relative_to(REPO)) for path in (REPO / "omero_web").rglob("*.sls"))
    assert len(sls) >= 20
    proc = subprocess.run(
        [_tool("salt-lint"), "-c", ".salt-lint", *sls],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[2" not in proc.stdout, proc.stdout  # no rule violation listed


def test_yamllint_is_clean():
    paths = [
        "pillar.example",
        "omero_web/parameters",
        ".yamllint",
        ".salt-lint",
        "kitchen.yml",
        "FORMULA",
    ]
    proc = subprocess.run(
        # The yamllint command test/requirements.txt installs (sys.executable
        # may point at another python while test/functional's session
        # fixture is active).
        [shutil.which("yamllint") or "yamllint", "--strict", "-c", ".yamllint", *paths],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_sls_folder_has_init_and_clean():
    folders = [path for path in (REPO / "omero_web").iterdir()
               # orch: orchestrations, run on the master, not applied to a minion
               if path.is_dir() and path.name not in ("files", "parameters", "_mapdata", "orch")]
    assert len(folders) >= 11
    for folder in folders:
        assert (folder / "init.sls").is_file(), folder
        assert (folder / "clean.sls").is_file(), folder
