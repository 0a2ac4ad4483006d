# -*- coding: utf-8 -*-
# vim: ft=sls
# Apps live in the venv and in config.xml: venv/clean.sls and
# config/clean.sls remove them. Here: the record of what the last apply set.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-apps-clean-file-absent-record:
  file.absent:
    - name: {{ omero_web.derived.apps_record.file }}
