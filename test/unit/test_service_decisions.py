"""
What a running OMERO.web needs (``_utils/omero_web_service.py``), declared
once: nothing, a reload (properties new workers read) or a restart (what the
gunicorn master fixed at its start, the venv, the unit). The real host
proves it end to end (test/integration/test_55_trust.py).
"""

import pytest


@pytest.fixture
def svc(utils):
    return lambda name: utils["omero_web_service." + name]


RUNNING = {"active": True, "main_pid": 100, "started": 1000.0}


def record(svc, config=None, venv="v1", unit="u1", pid=100):
    return {"main_pid": pid, "config": svc("config_digests")(config or {"omero.web.prefix": "/omero"}),
            "venv": venv, "unit": unit}


def disk(svc, config=None, venv="v1", unit="u1", mtime=900.0):
    return dict(record(svc, config, venv, unit), mtime=mtime)


@pytest.mark.parametrize(
    "props,expected",
    [
        ({}, "nothing"),
        ({"omero.web.server_list"}, "reload"),
        ({"omero.web.cors_origin_whitelist", "omero.web.caches"}, "reload"),
        ({"omero.web.server_list", "omero.web.wsgi_workers"}, "restart"),
        ({"omero.web.apps"}, "restart"),
        ({"omero.web.prefix"}, "restart"),
    ],
)
def test_needs(svc, props, expected):
    assert svc("needs")(props) == expected


def test_not_running_starts(svc):
    action, _ = svc("decide")({"active": False, "main_pid": 0, "started": 0}, None, disk(svc))
    assert action == "start"


def test_reload_for_a_property_new_workers_read(svc):
    action, reasons = svc("decide")(RUNNING, record(svc), disk(svc, {"omero.web.prefix": "/omero",
                                                                     "omero.web.debug": "true"}))
    assert action == "reload" and "omero.web.debug changed (read by new workers)" in reasons[0]


def test_restart_for_a_master_property_the_venv_or_the_unit(svc):
    decide = svc("decide")
    assert decide(RUNNING, record(svc), disk(svc, {"omero.web.prefix": "/web"}))[0] == "restart"
    assert decide(RUNNING, record(svc), disk(svc, venv="v2"))[0] == "restart"
    assert decide(RUNNING, record(svc), disk(svc, unit="u2"))[0] == "restart"
    assert decide(RUNNING, record(svc), disk(svc))[0] == "nothing"


def test_a_process_the_formula_did_not_start(svc):
    """Started by systemd since the record (boot, Restart=): it read what was on
    disk then; only a change the formula made after its start is owed."""
    decide = svc("decide")
    later = dict(RUNNING, main_pid=200)
    assert decide(later, record(svc), disk(svc, mtime=900.0))[0] == "nothing"
    assert decide(later, None, disk(svc, mtime=900.0))[0] == "nothing"
    assert decide(later, record(svc), disk(svc, mtime=1100.0))[0] == "restart"


def test_a_rebuilt_venv_restarts(svc):
    """The venv path now links to another directory (a new Python): a
    restart, even when the packages are the same; a record from before
    rebuilds existed ran the venv path itself."""
    decide = svc("decide")
    ran = dict(record(svc), venv_dir="/opt/w/venv3.py3.11", venv_path="/opt/w/venv3")
    now = dict(disk(svc), venv_dir="/opt/w/venv3.py3.13", venv_path="/opt/w/venv3")
    action, reasons = decide(RUNNING, ran, now)
    assert action == "restart" and reasons == ["the venv was rebuilt (/opt/w/venv3.py3.13)"]
    assert decide(RUNNING, dict(ran, venv_dir="/opt/w/venv3.py3.13"), now)[0] == "nothing"
    legacy = record(svc)
    assert decide(RUNNING, legacy, dict(disk(svc), venv_dir="/opt/w/venv3", venv_path="/opt/w/venv3"))[0] == "nothing"
    assert decide(RUNNING, legacy, now)[0] == "restart"
