"""
Functional tests: nginx configuration (``omero web config``), OMERO.web
start/status/stop and clearsessions through the ``omero`` modules, against
the real omero CLI, as an unprivileged user.
"""

import json
import os
import socket
import stat
import urllib.request

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_gone(pid):
    """Exited: no /proc entry, or a zombie nobody reaped (no init in this container)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_web_config_nginx(mods, omerodir):
    mods.omero.config_set("omero.web.prefix", "/omero", omerodir=str(omerodir))
    text = mods.omero.web_config_nginx(
        http=8080, servername="omero.example.org", max_body_size="10m", omerodir=str(omerodir)
    )
    assert "listen 8080;" in text
    assert "server_name omero.example.org;" in text
    assert "client_max_body_size 10m;" in text
    assert "location /omero {" in text
    location = mods.omero.web_config_nginx(location=True, omerodir=str(omerodir))
    assert "server_name" not in location.replace("##", "").split("include")[-1]
    assert "location /omero {" in location


def test_nginx_config_state(states, mods, omerodir, workspace, spawned):
    target = workspace / f"nginx-{omerodir.parent.name}.conf"
    kwargs = {
        "name": str(target),
        "http": 8080,
        "servername": "omero.example.org",
        "max_body_size": 0,
        "mode": "0640",
        "omerodir": str(omerodir),
    }
    ret = states.omero.nginx_config(test=True, **kwargs)
    assert ret.result is None, ret.comment
    assert not target.exists()
    ret = states.omero.nginx_config(**kwargs)
    assert ret.result is True, ret.comment
    assert ret.changes
    content = target.read_text()
    assert "omero-web-formula-fingerprint: inputs=" in content
    assert "server_name omero.example.org;" in content
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert spawned.count() == 2  # one per run (test mode also generates, to diff)

    # unchanged inputs: no omero process, no change (test mode and real)
    spawned.reset()
    for test in (True, False):
        ret = states.omero.nginx_config(test=test, **kwargs)
        assert ret.result is True and ret.changes == {}, ret.raw
    assert spawned.count() == 0

    # a property the generator reads changed: regenerated
    mods.omero.config_set("omero.web.prefix", "/omero", omerodir=str(omerodir))
    spawned.reset()
    ret = states.omero.nginx_config(**kwargs)
    assert ret.result is True and ret.changes
    assert spawned.count() == 1
    assert "location /omero {" in target.read_text()

    # an unrelated property changed: still skipped
    mods.omero.config_set("omero.web.debug", True, omerodir=str(omerodir))
    spawned.reset()
    ret = states.omero.nginx_config(**kwargs)
    assert ret.result is True and ret.changes == {}
    assert spawned.count() == 0

    # a hand edit is put back
    target.write_text(target.read_text().replace("listen 8080;", "listen 9999;"))
    ret = states.omero.nginx_config(**kwargs)
    assert ret.result is True and ret.changes
    assert "listen 8080;" in target.read_text()

    # mode drift is fixed without running omero
    target.chmod(0o666)
    spawned.reset()
    ret = states.omero.nginx_config(**kwargs)
    assert ret.result is True and ret.changes
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert spawned.count() == 0


def test_nginx_location_only(states, omerodir, workspace):
    target = workspace / f"location-{omerodir.parent.name}.include"
    ret = states.omero.nginx_config(name=str(target), location_only=True, omerodir=str(omerodir))
    assert ret.result is True, ret.comment
    content = target.read_text()
    assert "`omero web config nginx-location`" in content
    assert "location @proxy_to_app" in content


def test_web_lifecycle(mods, omerodir, spawned):
    port = free_port()
    mods.omero.config_batch(
        properties={
            "omero.web.application_server.port": port,
            "omero.web.server_list": [["localhost", 4064, "functional"]],
            "omero.web.wsgi_workers": 1,
        },
        omerodir=str(omerodir),
    )
    assert mods.omero.web_status(omerodir=str(omerodir)) is False
    spawned.reset()
    try:
        assert mods.omero.web_start(keep_sessions=True, omerodir=str(omerodir)) is True
        assert mods.omero.web_status(omerodir=str(omerodir)) is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v0/servers/", timeout=30) as resp:
            servers = json.loads(resp.read())
        assert servers["data"][0]["server"] == "functional"
        # already running: start is a no-op
        count = spawned.count()
        assert mods.omero.web_start(omerodir=str(omerodir)) is True
        assert spawned.count() == count
        pid = int((omerodir / "var" / "django.pid").read_text())
        # restart: a new gunicorn master, serving again
        assert mods.omero.web_restart(keep_sessions=True, omerodir=str(omerodir)) is True
        assert process_gone(pid)
        pid = int((omerodir / "var" / "django.pid").read_text())
        assert mods.omero.web_status(omerodir=str(omerodir)) is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v0/servers/", timeout=30) as resp:
            assert json.loads(resp.read())["data"][0]["server"] == "functional"
    finally:
        assert mods.omero.web_stop(omerodir=str(omerodir)) is True
    assert mods.omero.web_status(omerodir=str(omerodir)) is False
    assert process_gone(pid)
    # stale pid file (process gone): not running, and `omero web status` is not trusted
    (omerodir / "var" / "django.pid").write_text(f"{pid}\n")
    assert mods.omero.web_status(omerodir=str(omerodir)) is False
    (omerodir / "var" / "django.pid").unlink()


def test_clearsessions(mods, omerodir):
    assert mods.omero.clearsessions(omerodir=str(omerodir)) is True


@pytest.mark.parametrize("venv_override", ["/nonexistent/venv"])
def test_missing_venv_is_a_clear_error(mods, omerodir, venv_override):
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError, match="not found"):
        mods.omero.web_config_nginx(omerodir=str(omerodir), venv=venv_override)
