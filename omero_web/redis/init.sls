# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough (optional): "if you wish to use the Redis cache, install Redis"
#   yum -y install redis python-redis
#   systemctl enable redis.service; systemctl start redis.service
# Only for a local Redis (sessions:backend redis with a 127.0.0.1/localhost/
# unix:// URL): a remote Redis is not this host's business. `python-redis`
# (the system python 2 client) is not needed: OMERO.web uses django-redis from
# its venv (venv sls).
#
# One step per file: package, config (where Redis listens), selinux (a
# non-default port on an SELinux host), service.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set redis = omero_web.derived.redis %}

{%- if redis.local %}

include:
  - {{ tplroot }}.redis.package
  - {{ tplroot }}.redis.config
{%-   if redis.selinux_port %}
  - {{ tplroot }}.redis.selinux
{%-   endif %}
  - {{ tplroot }}.redis.service
{%- else %}
{}
{%- endif %}
