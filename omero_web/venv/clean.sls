# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo venv/init.sls: the virtualenv (omero-web, IcePy, apps), the venvs a
# rebuild made beside it, and the wheel cache.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{#- Nothing the formula did not make is deleted: the render fails first. #}
{%- do salt["omero_web.clean_check"](omero_web) %}

# the venv directories a rebuild for a new Python made (<venv>.pyX.Y), then
# the venv path (a link to one of them, or the directory itself)
omero_web-venv-clean-omero_venv-rebuilt_absent:
  omero_venv.rebuilt_absent:
    - name: {{ omero_web.venv }}
    - require_in:
      - file: omero_web-venv-clean-file-absent

omero_web-venv-clean-file-absent:
  file.absent:
    - names:
      - {{ omero_web.venv }}
      - {{ omero_web.ice.cache_dir }}
