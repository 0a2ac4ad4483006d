# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough (optional): "if you wish to use the Redis cache, install Redis"
#   yum -y install redis python-redis
#   systemctl enable redis.service; systemctl start redis.service
# Only for a local Redis (sessions:backend redis with a 127.0.0.1/localhost/
# unix:// URL): a remote Redis is not this host's business. `python-redis`
# (the system python 2 client) is not needed: OMERO.web uses django-redis from
# its venv (venv sls).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

{%- if omero_web.derived.redis_local %}

include:
  # CentOS 7: redis comes from EPEL (epel-release).
  - {{ tplroot }}.prerequisites

omero_web-redis-pkg-installed:
  pkg.installed:
    - name: {{ omero_web.redis.pkg }}
    - require:
      - sls: {{ tplroot }}.prerequisites

omero_web-redis-service-running:
  service.running:
    - name: {{ omero_web.redis.service }}
    - enable: True
    - require:
      - pkg: omero_web-redis-pkg-installed
{%- else %}
{}
{%- endif %}
