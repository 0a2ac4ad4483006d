"""Idempotency and exact dry runs on the converged host (issues 4 and 7).

A second apply reports 0 changed states; then one pillar value changes: a
test=True run predicts exactly the states the real apply then changes, the
service restarts once, and the apply after that changes nothing and does not
restart it.
"""
import pytest


@pytest.fixture(scope="module")
def web(host):
    host.converge()
    return host


def test_second_apply_changes_nothing(web):
    result = web.apply()
    assert result.ok, result.summary()
    assert result.changed == {}, result.summary() + "\n" + "\n".join(result.changed)


def test_dry_run_on_converged_host_predicts_nothing(web):
    result = web.apply(test=True)
    assert result.ok, result.summary()
    assert result.predicted == {}, sorted(result.predicted)


def test_changed_pillar_dry_run_is_exact_and_restarts_once(web):
    service = web.pillar["service"]["name"]
    pid_before = web.unit_prop(service, "MainPID")
    overrides = {"gunicorn": {"workers": 3}}
    import kitchen
    pillar = kitchen.kitchen_pillar(overrides)
    web.write_pillar(pillar)
    dry = web.apply(test=True)
    assert dry.ok, dry.summary()
    assert web.unit_prop(service, "MainPID") == pid_before, "test=True restarted the service"
    real = web.apply()
    assert real.ok, real.summary()
    predicted = sorted(map(real.state_id, dry.predicted))
    changed = sorted(map(real.state_id, real.changed))
    assert predicted == changed
    assert any("config" in s for s in changed), changed
    pid_after = web.unit_prop(service, "MainPID")
    assert pid_after != pid_before, "the service did not restart after a config change"
    web.current, web.pillar = None, pillar["omero_web"]
    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
    assert web.unit_prop(service, "MainPID") == pid_after, "restarted on a no-op apply"
    # gunicorn really runs 3 workers now
    out = web.run(["bash", "-c", "pgrep -f 'gunicorn.*omeroweb[.]wsgi' | wc -l"]).stdout
    assert int(out) == 3 + 1


def test_salt_url_wheel_and_apps_dry_run_reports_nothing(web):
    """Issue 7: test=True on a converged host reports 0 changes, also with the
    IcePy wheel given as salt:// (and the apps and service states)."""
    import os
    import kitchen
    wheel = os.path.basename(kitchen.ensure_icepy_wheel())
    pillar = kitchen.kitchen_pillar({"ice": {"wheel": "salt://" + wheel}})
    web.write_pillar(pillar)
    web.current = None
    first = web.apply()
    assert first.ok, first.summary()
    dry = web.apply(test=True)
    assert dry.ok and dry.predicted == {}, sorted(dry.predicted)
    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
