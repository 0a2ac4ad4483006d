"""Issue 14, part 1: a change that only new workers read reloads OMERO.web
gracefully (the unit's ExecReload: new gunicorn workers load next to the
old ones), and no request fails while it is applied.

A bounded probe (test/kitchen/probe.py: a thread GETting the login page
through nginx on 127.0.0.1, a few hundred requests at most, stopping by
itself) runs during the whole apply of a server_list change: 0 requests
fail, the gunicorn master keeps its PID while its workers are new, the
state's comment says "reloaded" and why, and /api/v0/servers/ returns the
new list right after the apply. ``test=True`` predicted that reload.
"""
import time

import pytest

import kitchen
from probe import Probe
from site_checks import servers_api_returns_the_pillar_server_list

pytestmark = pytest.mark.kitchen

SERVICE_STATE = "omero_web-service-omero_web-service_running"
# omero.web.server_list: read by new workers, a reload is enough
RELOAD_CLASS = {"server_list": [["omero-reload.example.org", 4064, "reloaded"]]}


@pytest.fixture(scope="module")
def web(host):
    host.converge()
    return host


def service_result(result):
    found = [v for k, v in result.states.items() if result.state_id(k) == SERVICE_STATE]
    assert len(found) == 1, sorted(result.states)
    return found[0]


def workers(web):
    """PIDs of the gunicorn workers: the children of the unit's main process."""
    main = web.unit_prop(web.pillar["service"]["name"], "MainPID")
    return set(web.run(["pgrep", "-P", main], check=False).stdout.split())


def test_reload_class_change_drops_no_request(web):
    service = web.pillar["service"]["name"]
    master_before, workers_before = web.unit_prop(service, "MainPID"), workers(web)
    pillar = kitchen.kitchen_pillar(RELOAD_CLASS)
    web.write_pillar(pillar)
    web.current = None

    dry = web.apply(test=True)
    assert dry.ok, dry.summary()
    predicted = service_result(dry)
    assert predicted["result"] is None, predicted
    assert predicted["changes"][service]["action"] == "reload", predicted
    assert "omero.web.server_list" in predicted["changes"][service]["why"], predicted

    probe = Probe(web.base_url() + "/webclient/login/", max_requests=600, max_seconds=150,
                  interval=0.1)
    with probe:
        applied_from = time.time()
        real = web.apply()
        applied_to = time.time()
    web.current, web.pillar = None, pillar["omero_web"]
    assert real.ok, real.summary()
    print("probe during the reload-class apply: " + probe.summary())
    # The probe ran from before the apply until after it: the reload is in it.
    assert not probe.bound_reached and probe.covered(applied_from, applied_to), probe.summary()
    assert len(probe.requests) >= 20, probe.summary()
    assert probe.failed == [], probe.summary() + "\n" + "\n".join(map(str, probe.failed[:10]))

    done = service_result(real)
    assert done["changes"][service]["action"] == "reload", done
    assert done["comment"].startswith(service + " reloaded: "), done["comment"]
    assert "omero.web.server_list" in done["comment"] and "read by new workers" in done["comment"]
    # a reload: the same gunicorn master, new workers
    assert web.unit_prop(service, "MainPID") == master_before
    assert workers_before and not workers(web) & workers_before
    # live right after the apply, no wait
    servers_api_returns_the_pillar_server_list(web)
    # the dry run named exactly what the apply changed
    assert sorted(map(real.state_id, dry.predicted)) == sorted(map(real.state_id, real.changed))

    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
