"""Day two (issue 11, part 2): a new Python under the venv, on a host of its own.

The host converges with Debian 12's python3 (3.11: the venv is a real
directory, as the previous formula version and a hand install leave it).
A second real interpreter, CPython 3.13 built for these hosts
(test/kitchen/build-python.sh), is copied to /opt/python3.13 and the pillar's
python:executable names it:

* with an IcePy wheel for the old Python, the rebuild fails: the state says
  why, the old venv keeps serving, unchanged, and nothing restarts;
* with the cp313 wheel, test=True names the rebuild and why, and predicts
  exactly the states the real apply changes; the real apply builds the venv
  beside the old one, links the venv path to it, restarts once, runs the
  health check, and only then removes the old venv; gunicorn runs Python
  3.13 and the login page answers; a second apply changes nothing;
* back to the platform python3: the same, from a link to a link.
"""
import os

import pytest

import kitchen
import site_checks
from day_two import dry_run_then_apply, installed_version, starts_since

HOST_SUFFIX = "-newpy"

PLATFORM = {"executable": "/usr/bin/python3", "version": "3.11",
            "wheel": "/srv/wheels/" + os.path.basename(kitchen.ensure_icepy_wheel("cp311"))}
NEW = dict(kitchen.SECOND_PYTHON)  # its wheel: once copied into the host

STATE_VENV = "omero_web-venv-omero_venv-present"
STATE_SERVICE = "omero_web-service-omero_web-service_running"
STATE_HEALTH = "omero_web-healthcheck-omero-sessions_work"
STATE_OLD = "omero_web-healthcheck-omero_venv-old_removed"


def overrides_for(python, wheel=None):
    return {"python": {"executable": python["executable"], "version": python["version"]},
            "ice": {"wheel": wheel or python["wheel"]}}


@pytest.fixture(scope="module")
def site(own_host):
    NEW["wheel"] = own_host.install_second_python()
    own_host.converge(overrides_for(PLATFORM))
    return own_host


def by_id(result, state_id):
    return [v for k, v in result.states.items() if result.state_id(k) == state_id][0]


def gunicorn_python(web):
    """The interpreter the service's main process (gunicorn's master) runs."""
    pid = web.unit_prop(web.pillar["service"]["name"], "MainPID")
    return web.run(["readlink", "/proc/%s/exe" % pid]).stdout.strip()


def venv_facts(web):
    venv = web.pillar["venv"]
    out = web.run(["bash", "-c", "echo \"$(readlink %s)\"; grep '^version' %s/pyvenv.cfg; ls -d %s.* 2>/dev/null"
                   % (venv, venv, venv)], check=False).stdout.split("\n")
    return {"link": out[0], "version": out[1].split("=")[1].strip(), "beside": sorted(filter(None, out[2:]))}


def switch(web, old, new):
    """From a host converged with ``old`` python to ``new``: all of part 2."""
    web.converge(overrides_for(old))
    before = venv_facts(web)
    assert before["version"].startswith(old["version"] + "."), before
    omero_web = installed_version(web, "omero-web")

    def unchanged():
        assert venv_facts(web) == before, "test=True changed the venv"

    pillar = kitchen.kitchen_pillar(overrides_for(new))
    dry, real, changed, cursor = dry_run_then_apply(web, pillar, unchanged)
    plan = by_id(dry, STATE_VENV)
    why = "the venv was built by Python %s, python:executable %s is Python %s" % (
        old["version"], new["executable"], new["version"])
    assert plan["changes"]["venv"]["why"] == why
    assert plan["comment"].startswith("a rebuild is due: " + why), plan["comment"]
    assert {STATE_VENV, STATE_SERVICE, STATE_OLD} <= set(changed), changed
    assert by_id(real, STATE_VENV)["changes"] == plan["changes"]
    new_dir = plan["changes"]["venv"]["new"]
    old_dir = plan["changes"]["venv"]["old"]
    assert by_id(real, STATE_OLD)["changes"] == by_id(dry, STATE_OLD)["changes"] == {"removed": [old_dir]}
    # one restart; the old venv removed only after the health check passed
    assert starts_since(web, cursor) == 1
    assert by_id(real, STATE_OLD)["__run_num__"] > by_id(real, STATE_HEALTH)["__run_num__"]
    assert by_id(real, STATE_HEALTH)["result"] is True

    after = venv_facts(web)
    assert after == {"link": os.path.basename(new_dir), "version": after["version"], "beside": [new_dir]}
    assert after["version"].startswith(new["version"] + ".")
    assert web.run(["realpath", gunicorn_python(web)]).stdout.strip() == web.run(
        ["realpath", new["executable"]]).stdout.strip()
    assert installed_version(web, "omero-web") == omero_web
    site_checks.login_page_through_nginx(web)
    site_checks.figure_app_installed_listed_and_served(web)

    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()


def test_a_failed_rebuild_leaves_the_old_venv_serving(site):
    site.converge(overrides_for(PLATFORM))
    before = venv_facts(site)
    main_pid = site.unit_prop(site.pillar["service"]["name"], "MainPID")
    # python:executable names Python 3.13, ice:wheel still the cp311 wheel
    pillar = kitchen.kitchen_pillar(overrides_for(NEW, wheel=PLATFORM["wheel"]))
    site.write_pillar(pillar)
    site.current = None
    result = site.apply()
    assert not result.ok
    failed = {result.state_id(k): v for k, v in result.failed.items()}
    comment = failed[STATE_VENV]["comment"]
    assert comment.startswith("rebuilding the venv failed, %s keeps serving (the venv was built by "
                              "Python 3.11" % site.pillar["venv"]), comment
    assert "is not a supported wheel on this platform" in comment, comment
    assert failed[STATE_VENV]["changes"] == {}
    assert venv_facts(site) == before
    assert site.unit_prop(site.pillar["service"]["name"], "MainPID") == main_pid
    assert gunicorn_python(site).startswith("/usr/bin/python3")
    site_checks.login_page_through_nginx(site)


def test_a_new_python_rebuilds_the_venv_and_restarts_once(site):
    switch(site, PLATFORM, NEW)


def test_back_to_the_platform_python(site):
    switch(site, NEW, PLATFORM)
