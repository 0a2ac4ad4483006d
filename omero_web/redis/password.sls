# -*- coding: utf-8 -*-
# vim: ft=sls
# A local TCP Redis is not open to every local process: it requires a
# password. When neither sessions:redis_url nor redis:password gives one, the
# formula generates it once and keeps it on the minion (redis:password_file,
# root's, mode 0600); redis.conf and OMERO.web's config get it at apply time
# from there, so it is never rendered into a state.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set password_file = omero_web.derived.redis.password_file %}
{%- if password_file %}

omero_web-redis-password-omero_web-secret_present:
  omero_web.secret_present:
    - name: {{ password_file }}
{%- else %}
{}
{%- endif %}
