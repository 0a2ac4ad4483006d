"""
The unit suites' one loader:

* ``utils``: Salt's REAL utility loader over the formula's ``_utils/``
  (``salt.loader.utils`` with ``utils_dirs``): what ``__utils__`` is on a
  minion after ``saltutil.sync_all``;
* ``formula``: the modules under test (unit_support.FORMULA);
* ``fake``, ``venv``, ``omerodir``: a fake omero process, a venv's layout
  and an OMERODIR, fresh per test.
"""

import pytest
import salt.config
import salt.loader

from unit_support import FORMULA, FakeOmero, REPO


@pytest.fixture(scope="session")
def formula():
    return FORMULA


@pytest.fixture(scope="session")
def utils(tmp_path_factory):
    """Salt's real utility loader over _utils/ (``__utils__`` on a synced minion)."""
    opts = salt.config.minion_config(None)
    opts["utils_dirs"] = [str(REPO / "_utils")]
    opts["extension_modules"] = str(tmp_path_factory.mktemp("extmods"))
    opts["cachedir"] = str(tmp_path_factory.mktemp("cachedir"))
    return salt.loader.utils(opts)


@pytest.fixture
def fake():
    return FakeOmero()


@pytest.fixture
def venv(tmp_path):
    """A venv's layout: bin/omero, bin/python and bin/pip (never run)."""
    path = tmp_path / "venv"
    (path / "bin").mkdir(parents=True)
    for exe in ("omero", "python", "pip"):
        (path / "bin" / exe).write_text("#!/bin/sh\nexit 99\n")
        (path / "bin" / exe).chmod(0o755)
    return path


@pytest.fixture
def omerodir(tmp_path):
    path = tmp_path / "omerodir"
    path.mkdir()
    return path
