# -*- coding: utf-8 -*-
# vim: ft=sls
# Dump the merged map (parameters/ layers + pillar lookup + pillar, with
# `derived`) to a YAML file, as template-formula does, to compare the map per
# platform. Not part of init.sls. Secrets are masked by the formula's one
# rule (omero_web.masked).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-_mapdata-file-managed:
  file.managed:
    - name: /tmp/salt_mapdata_dump.yaml
    - source: salt://{{ tplroot }}/_mapdata/_mapdata.jinja
    - template: jinja
    - mode: "0600"
    - show_changes: False
    - context:
        map: {{ {"values": salt["omero_web.masked"](omero_web)} | json }}
