# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo config/init.sls: OMERO.web's configuration (config.xml and its
# profiles); user/clean.sls removes the rest of OMERODIR.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-config-clean-file-absent:
  file.absent:
    - name: {{ omero_web.omerodir }}/etc/grid
