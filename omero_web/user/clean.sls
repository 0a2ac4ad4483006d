# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo user/init.sls: OMERODIR (config.xml, logs, static files), then the
# user with its home directory, then the group.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{#- Nothing the formula did not make is deleted: the render fails first. #}
{%- do salt["omero_web.clean_check"](omero_web) %}

omero_web-user-clean-file-absent:
  file.absent:
    - name: {{ omero_web.omerodir }}

omero_web-user-clean-user-absent:
  user.absent:
    - name: {{ omero_web.user }}
    - purge: True
    - require:
      - file: omero_web-user-clean-file-absent

omero_web-user-clean-group-absent:
  group.absent:
    - name: {{ omero_web.group }}
    - require:
      - user: omero_web-user-clean-user-absent
