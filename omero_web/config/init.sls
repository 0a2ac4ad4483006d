# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Configuring OMERO.web", "Configuring Gunicorn", "Setting up
# CORS", "Running OMERO.web" (WhiteNoise, the Redis cache) and "Maintaining
# OMERO.web" (session cookies): every `omero config set` / `omero config
# append` line, as the omero-web user, in ONE omero.config_managed state.
# The properties and appended values come from omero_web.derive (prefix,
# static_url, sessions, gunicorn, CORS, WhiteNoise, apps, free-form config);
# a no-op reads config.xml in-process and runs no omero command. Secret
# values are masked in its changes and comments.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set derived = omero_web.derived %}

include:
  - {{ tplroot }}.user
  - {{ tplroot }}.venv
{%- if derived.redis.password_file %}
  - {{ tplroot }}.redis.password
{%- endif %}

omero_web-config-omero-config_managed:
  omero.config_managed:
    - name: {{ omero_web.omerodir }}/etc/grid/config.xml
    - properties: {{ derived.properties | json }}
    - appends: {{ derived.appends | json }}
    # formula-owned properties and middleware this pillar does not use
    - removals: {{ derived.removals | json }}
    - unsets: {{ derived.unsets | json }}
    - prune: {{ omero_web.prune | json }}
    - secret_keys: {{ derived.secret_keys | json }}
    - user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.user
      - sls: {{ tplroot }}.venv
{%- if derived.redis.password_file %}
      - sls: {{ tplroot }}.redis.password
{%- endif %}
