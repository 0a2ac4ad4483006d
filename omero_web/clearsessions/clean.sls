# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo clearsessions/init.sls: stop and disable the timer, remove both units.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{#- Nothing the formula did not make is deleted: the render fails first. #}
{%- do salt["omero_web.clean_check"](omero_web) %}
{%- set unit_dir = omero_web.service.unit_dir %}
{%- set unit = omero_web.service.name ~ "-clearsessions" %}

omero_web-clearsessions-clean-service-dead:
  service.dead:
    - name: {{ unit }}.timer
    - enable: False
    # Only if the unit exists: else test=True would report a change
    # ("not present; if created in this state run, it would be stopped").
    # (With sessions:clear:enabled false this runs on every apply; onlyif
    # costs a state loader scan, a fraction of a second, see libcmd.jinja.)
    - onlyif: systemctl cat -- {{ unit }}.timer >/dev/null 2>&1

omero_web-clearsessions-clean-file-absent:
  file.absent:
    - names:
      - {{ unit_dir }}/{{ unit }}.timer
      - {{ unit_dir }}/{{ unit }}.service
    - require:
      - service: omero_web-clearsessions-clean-service-dead

omero_web-clearsessions-clean-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: omero_web-clearsessions-clean-file-absent
