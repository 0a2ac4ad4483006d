"""
Functional tests: nginx configuration (``omero web config``) and
clearsessions through the ``omero`` modules, against the real omero CLI, as
an unprivileged user. (Starting OMERO.web is systemd's job: the kitchen
hosts test it.)
"""

import json
import os
import socket
import stat
import urllib.request

import pytest


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


def test_clearsessions(mods, omerodir):
    assert mods.omero.clearsessions(omerodir=str(omerodir)) is True


@pytest.mark.parametrize("venv_override", ["/nonexistent/venv"])
def test_missing_venv_is_a_clear_error(mods, omerodir, venv_override):
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError, match="not found"):
        mods.omero.web_config_nginx(omerodir=str(omerodir), venv=venv_override)
