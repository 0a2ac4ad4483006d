# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo service/init.sls: stop and disable OMERO.web, remove its unit.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{#- Nothing the formula did not make is deleted: the render fails first. #}
{%- do salt["omero_web.clean_check"](omero_web) %}
{%- set service = omero_web.service %}

omero_web-service-clean-service-dead:
  service.dead:
    - name: {{ service.name }}
    - enable: False
    # Only if the unit exists: else test=True would report a change
    # ("not present; if created in this state run, it would be stopped").
    - onlyif: systemctl cat -- {{ service.name }}.service >/dev/null 2>&1

omero_web-service-clean-file-absent:
  file.absent:
    - name: {{ service.unit_dir }}/{{ service.name }}.service
    - require:
      - service: omero_web-service-clean-service-dead

omero_web-service-clean-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: omero_web-service-clean-file-absent

omero_web-service-clean-file-absent-precompress:
  file.absent:
    - name: {{ omero_web.nginx.precompress_script }}
    - require:
      - service: omero_web-service-clean-service-dead

omero_web-service-clean-file-absent-reload:
  file.absent:
    - name: {{ service.reload_script }}
    - require:
      - service: omero_web-service-clean-service-dead
