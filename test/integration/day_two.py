"""What the day-two scenarios (test_90_*) look at on a host: the service's
starts, Django sessions as OMERO.web stores them, OMEROweb.log."""
import json


def service_cursor(web):
    """A journal cursor: count the service's starts after it."""
    out = web.run(["journalctl", "-n", "0", "--show-cursor", "-q"]).stdout
    return out.strip().rpartition("cursor: ")[2]


def starts_since(web, cursor):
    """How many times the service was started (or restarted) since ``cursor``."""
    service = web.pillar["service"]["name"] + ".service"
    out = web.run(["journalctl", "-u", service, "--after-cursor", cursor, "-o", "cat", "-q"],
                  check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Started "))


_DJANGO = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")
import django; django.setup()
from django.conf import settings
from importlib import import_module
engine = import_module(settings.SESSION_ENGINE)
request = json.loads(sys.stdin.read())
if request["op"] == "create":
    store = engine.SessionStore(); store["day_two"] = request["value"]; store.save()
    print(json.dumps(store.session_key))
else:
    print(json.dumps(engine.SessionStore().exists(request["key"])))
"""


def django_session(web, op, **request):
    """Create a session (returns its key) or say whether a key exists, with
    OMERO.web's own session engine, as its user."""
    pillar = web.pillar
    cmd = ["runuser", "-u", pillar["user"], "--", "env", "OMERODIR=" + pillar["omerodir"],
           "TMPDIR=" + pillar["omerodir"] + "/var/tmp", pillar["venv"] + "/bin/python", "-c", _DJANGO]
    out = web.run(cmd, input=json.dumps(dict(request, op=op))).stdout
    return json.loads(out.strip().splitlines()[-1])


def omeroweb_log(web):
    path = web.pillar["omerodir"] + "/var/log/OMEROweb.log"
    return web.run(["cat", path], check=False).stdout


def installed_version(web, dist):
    out = web.run([web.pillar["venv"] + "/bin/pip", "show", dist], check=False).stdout
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def dry_run_then_apply(web, pillar, unchanged):
    """Write ``pillar``; a dry run, after which ``unchanged()`` must hold (it
    changed nothing); the real apply. Both succeed and the dry run predicts
    exactly the states the real apply changes. Returns ``(dry, real,
    changed state ids, journal cursor from before the real apply)``."""
    web.write_pillar(pillar)
    web.current, web.pillar = None, pillar["omero_web"]
    dry = web.apply(test=True)
    assert dry.ok, dry.summary()
    unchanged()
    cursor = service_cursor(web)
    real = web.apply()
    assert real.ok, real.summary()
    predicted = sorted(map(real.state_id, dry.predicted))
    changed = sorted(map(real.state_id, real.changed))
    assert predicted == changed
    return dry, real, changed, cursor

