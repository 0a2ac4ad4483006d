# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo healthcheck/init.sls: the check script.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-healthcheck-clean-file-absent:
  file.absent:
    - name: {{ omero_web.service.healthcheck.script }}
