# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo venv/init.sls: the virtualenv (omero-web, IcePy, apps) and the wheel
# cache.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{#- Nothing the formula did not make is deleted: the render fails first. #}
{%- do salt["omero_web.clean_check"](omero_web) %}

omero_web-venv-clean-file-absent:
  file.absent:
    - names:
      - {{ omero_web.venv }}
      - {{ omero_web.ice.cache_dir }}
