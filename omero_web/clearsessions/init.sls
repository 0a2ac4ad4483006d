# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Maintaining OMERO.web" - "It is therefore the responsibility
# of the OMERO administrator to purge the session cache ... omero web
# clearsessions ... on a regular basis, for example as a daily cron job".
# A systemd timer (OnCalendar = omero_web:sessions:clear:on_calendar) starts a
# oneshot service that runs it as the omero-web user. With
# sessions:clear:enabled false, the timer and its units are removed.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set clear = omero_web.sessions["clear"] %}
{%- set unit_dir = omero_web.service.unit_dir %}
{%- set unit = omero_web.service.name ~ "-clearsessions" %}

{%- if clear.enabled %}

include:
  - {{ tplroot }}.venv
  - {{ tplroot }}.config

omero_web-clearsessions-file-managed:
  file.managed:
    - names:
      - {{ unit_dir }}/{{ unit }}.service:
        - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web-clearsessions.service.jinja",
                                  "omero_web-clearsessions-file-managed") }}
      - {{ unit_dir }}/{{ unit }}.timer:
        - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web-clearsessions.timer.jinja",
                                  "omero_web-clearsessions-file-managed") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        user: {{ omero_web.user }}
        group: {{ omero_web.group }}
        omerodir: {{ omero_web.omerodir }}
        venv: {{ omero_web.venv }}
        service: {{ omero_web.service.name }}.service
        timer: {{ unit }}.timer
        on_calendar: {{ clear.on_calendar | json }}
        tmpdir: {{ omero_web.derived.tmpdir }}
        hardening: {{ omero_web.derived.unit_directives | json }}

# systemd reads changed units (the timer's and the service's) first.
omero_web-clearsessions-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: omero_web-clearsessions-file-managed

omero_web-clearsessions-service-running:
  service.running:
    - name: {{ unit }}.timer
    - enable: True
    - require:
      - sls: {{ tplroot }}.venv
      - sls: {{ tplroot }}.config
    - watch:
      - module: omero_web-clearsessions-module-run
{%- else %}

include:
  - {{ tplroot }}.clearsessions.clean
{%- endif %}
