# -*- coding: utf-8 -*-
# vim: ft=sls
# Dump the merged map (parameters/ layers + pillar lookup + pillar, with
# `derived`) to a YAML file, as template-formula does, to compare the map per
# platform. Not part of init.sls. Secret values are replaced by <hidden>:
# the free-form and the apps' config, and the derived properties/appends
# named in derived.secrets (omero.web.secret_key, *password, a Redis URL with
# a password).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set hidden = "<hidden>" %}
{%- set secrets = omero_web.derived.secrets %}
{%- set sections = [omero_web.config, omero_web.config_append,
                    omero_web.derived.properties, omero_web.derived.appends] %}
{%- for app in omero_web.apps %}
{%-   do sections.extend([app.get("config") or {}, app.get("config_append") or {}]) %}
{%- endfor %}
{%- for section in sections %}
{%-   for key in secrets if key in section %}
{%-     do section.update({key: hidden}) %}
{%-   endfor %}
{%- endfor %}
{%- if "omero.web.caches" in secrets %}
{%-   do omero_web.sessions.update({"redis_url": hidden}) %}
{%- endif %}

omero_web-_mapdata-file-managed:
  file.managed:
    - name: /tmp/salt_mapdata_dump.yaml
    - source: salt://{{ tplroot }}/_mapdata/_mapdata.jinja
    - template: jinja
    - mode: "0600"
    - show_changes: False
    - context:
        map: {{ {"values": omero_web} | json }}
