"""Day two (issue 11): adopt a host installed by hand from the walkthrough.

The walkthrough's own commands run first, as it gives them, with Debian's
names for CentOS's (apt-get for yum, redis-server, python3 -m venv, the
IcePy wheel from the kitchen's /srv/wheels, Debian's default site in
place of default.conf) and the lane's ports. Then the formula, with a
pillar describing the same site: a dry run lists what will change and
removes no hand-set property the pillar does not mention (with prune: true
it lists each one); the real apply takes the site over with one restart,
keeps the hand-set properties, duplicates nothing in appended lists, and a
second apply changes nothing.
"""
import json
import os

import pytest

import kitchen
import site_checks
from day_two import service_cursor, starts_since

HOST_SUFFIX = "-adopt"

OMERODIR = "/opt/omero/web/omero-web"
VENV = "/opt/omero/web/venv3"
#: set by hand (the walkthrough's Gunicorn section, its debugging example as
#: it gives it), not described by the pillar.
HAND_ONLY = {"omero.web.wsgi_args":
             "--log-level=DEBUG --error-logfile=/opt/omero/web/omero-web/var/log/error.log"}

UNIT = """[Unit]
Description=OMERO.web
# Not mandatory, NGINX may be running on a different server
Requires=nginx.service
After=network.service

[Service]
User=omero-web
Type=forking
PIDFile=/opt/omero/web/omero-web/var/django.pid
Restart=no
RestartSec=10
Environment="PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin"
Environment="OMERODIR=/opt/omero/web/omero-web"
ExecStart=/opt/omero/web/venv3/bin/omero web start
ExecStop=/opt/omero/web/venv3/bin/omero web stop

[Install]
WantedBy=multi-user.target
"""


def walkthrough(web, nginx_port, gunicorn_port, redis_port):
    """The walkthrough's commands (root's, then omero-web's), Debian's names."""
    wheel = web.pillar["ice"]["wheel"]
    as_user = "runuser -u omero-web -- env OMERODIR=%s PATH=%s/bin:/usr/bin:/bin " % (OMERODIR, VENV)
    redis = "redis://127.0.0.1:%d/0" % redis_port
    return [
        "useradd -m omero-web",
        "mkdir -p /opt/omero/web/omero-web/etc/grid",
        "chown -R omero-web /opt/omero/web/omero-web",
        # yum installs without starting services; Debian's packages start them
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip python3 python3-venv nginx redis-server",
        "rm /usr/sbin/policy-rc.d",
        "sed -i 's/^port 6379$/port %d/' /etc/redis/redis.conf" % redis_port,
        "systemctl enable redis-server.service",
        "systemctl start redis-server.service",
        "python3 -mvenv /opt/omero/web/venv3",
        "/opt/omero/web/venv3/bin/pip install --upgrade %s" % wheel,
        '/opt/omero/web/venv3/bin/pip install "omero-web>=5.6.1"',
        # the walkthrough's <3.3 and <4.9 pins would pull an old omero-web back
        "/opt/omero/web/venv3/bin/pip install django-cors-headers",
        "/opt/omero/web/venv3/bin/pip install --upgrade whitenoise",
        "/opt/omero/web/venv3/bin/pip install django-redis",
        as_user + "omero config set omero.web.prefix '/omero'",
        as_user + "omero config set omero.web.static_url '/omero/static/'",
        as_user + "omero config set omero.web.application_server.port %d" % gunicorn_port,
        as_user + "omero config set omero.web.caches '{\"default\": {\"BACKEND\": "
                  "\"django_redis.cache.RedisCache\",\"LOCATION\": \"%s\"}}'" % redis,
        as_user + "omero config set omero.web.session_engine 'django.contrib.sessions.backends.cache'",
        as_user + "omero config append omero.web.middleware "
                  "'{\"index\": 0.5, \"class\": \"corsheaders.middleware.CorsMiddleware\"}'",
        as_user + "omero config append omero.web.middleware "
                  "'{\"index\": 10, \"class\": \"corsheaders.middleware.CorsPostCsrfMiddleware\"}'",
        as_user + "omero config set omero.web.cors_origin_whitelist '[\"https://hostname.example.com\"]'",
        as_user + "omero config append -- omero.web.middleware "
                  "'{\"index\": 0, \"class\": \"whitenoise.middleware.WhiteNoiseMiddleware\"}'",
        as_user + 'omero config set omero.web.wsgi_args -- "%s"' % HAND_ONLY["omero.web.wsgi_args"],
        as_user + 'omero web config nginx --http "%d" --servername "omero.example.org" '
                  "> /opt/omero/web/omero-web/nginx.conf.tmp" % nginx_port,
        "sed -i.bak -re 's/( default_server.*)/; #\\1/' /etc/nginx/nginx.conf",
        "rm -f /etc/nginx/sites-enabled/default",  # Debian's default.conf
        "cp /opt/omero/web/omero-web/nginx.conf.tmp /etc/nginx/conf.d/omeroweb.conf",
        "systemctl enable nginx",
        "systemctl restart nginx",
        "cat > /etc/systemd/system/omero-web.service <<'UNIT'\n%sUNIT" % UNIT,
        "systemctl daemon-reload",
        "systemctl enable omero-web.service",
        "systemctl stop omero-web.service",
        "systemctl start omero-web.service",
    ]


def site_pillar(prune=False):
    """The hand-made site as pillar: pillar.example's layout without what the hand install lacks."""
    pillar = kitchen.kitchen_pillar({"apps": [], "config": {}, "config_append": {}, "prune": prune,
                                     "cors": {"enabled": True, "allow_all": False,
                                              "whitelist": ["https://hostname.example.com"]}})
    web = pillar["omero_web"]
    web.update(omerodir=OMERODIR, venv=VENV, user="omero-web", group="omero-web", prefix="/omero")
    web["gunicorn"].pop("extra_args", None)
    web["nginx"].update(server_name="omero.example.org", conf_file="omeroweb.conf")
    return pillar


@pytest.fixture(scope="module")
def hand_made(own_host):
    pillar = site_pillar()
    own_host.pillar = pillar["omero_web"]
    web = pillar["omero_web"]
    redis_port = int(web["sessions"]["redis_url"].split(":")[2].split("/")[0])
    for line in walkthrough(own_host, web["nginx"]["port"], web["gunicorn"]["port"], redis_port):
        own_host.run(["bash", "-ec", line])
    site_checks.wait_for_login_page(own_host)
    return own_host


def config_changes(result):
    key = [k for k in result.states if k.startswith("omero_|-") and k.endswith("config_managed")][0]
    return result.states[key].get("changes") or {}


def test_adopt_the_walkthrough_install(hand_made):
    web = hand_made
    # prune: true lists each hand-set property the pillar does not describe for removal
    web.write_pillar(site_pillar(prune=True))
    pruning = web.apply(test=True)
    assert pruning.ok, pruning.summary()
    for key in HAND_ONLY:
        assert key in config_changes(pruning), sorted(config_changes(pruning))

    pillar = site_pillar()
    web.write_pillar(pillar)
    dry = web.apply(test=True)
    assert dry.ok, dry.summary()
    predicted_config = config_changes(dry)
    for key in HAND_ONLY:
        assert key not in predicted_config, predicted_config[key]

    cursor = service_cursor(web)
    real = web.apply()
    assert real.ok, real.summary()
    assert sorted(map(real.state_id, dry.predicted)) == sorted(map(real.state_id, real.changed))
    assert sorted(config_changes(real)) == sorted(predicted_config)
    assert starts_since(web, cursor) == 1

    for key, value in HAND_ONLY.items():
        assert web.config(key) == value
    middleware = web.config("omero.web.middleware")
    classes = [entry["class"] for entry in middleware]
    assert len(classes) == len(set(classes)), classes
    for wanted in ("whitenoise.middleware.WhiteNoiseMiddleware", "corsheaders.middleware.CorsMiddleware",
                   "corsheaders.middleware.CorsPostCsrfMiddleware"):
        assert wanted in classes
    site_checks.login_page_through_nginx(web)

    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
