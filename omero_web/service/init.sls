# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Automatically running OMERO.web"
#   cp omero-web-systemd.service /etc/systemd/system/omero-web.service
#   systemctl daemon-reload
#   systemctl enable omero-web.service; systemctl start omero-web.service
# The unit follows the walkthrough (Type=forking, PIDFile, PATH, OMERODIR)
# with Restart=omero_web:service:restart (default on-failure).
# OMERO.web restarts when, and only when, something it runs changed: the venv
# (IcePy, the pip packages), the configuration, or the unit file.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set service = omero_web.service %}
{%- set nginx_served = omero_web.nginx.enabled %}
{%- set requires = [] %}
{%- set after = [] %}
{%- if nginx_served %}
{#-   The walkthrough: "Requires=nginx.service  # Not mandatory, NGINX may be
      running on a different server". #}
{%-   do requires.append(omero_web.nginx.service ~ ".service") %}
{%-   do after.append(omero_web.nginx.service ~ ".service") %}
{%- endif %}
{%- if omero_web.derived.redis.local %}
{%-   do after.append(omero_web.redis.service ~ ".service") %}
{%- endif %}

include:
  - {{ tplroot }}.user
  - {{ tplroot }}.venv
  - {{ tplroot }}.config
{%- if nginx_served %}
  - {{ tplroot }}.nginx
{%- endif %}
{%- if omero_web.derived.redis.local %}
  - {{ tplroot }}.redis
{%- endif %}

omero_web-service-file-managed:
  file.managed:
    - name: {{ service.unit_dir }}/{{ service.name }}.service
    - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web.service.jinja",
                              "omero_web-service-file-managed") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        user: {{ omero_web.user }}
        group: {{ omero_web.group }}
        omerodir: {{ omero_web.omerodir }}
        venv: {{ omero_web.venv }}
        restart: {{ service.restart }}
        requires: {{ requires | json }}
        after: {{ after | json }}

# systemd reads the changed unit before the restart below.
omero_web-service-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: omero_web-service-file-managed

omero_web-service-service-running:
  service.running:
    - name: {{ service.name }}
    - enable: {{ service.enabled | json }}
    - require:
      - sls: {{ tplroot }}.user
{%- if nginx_served %}
      - sls: {{ tplroot }}.nginx.service
{%- endif %}
{%- if omero_web.derived.redis.local %}
      - sls: {{ tplroot }}.redis.service
{%- endif %}
    - watch:
      - module: omero_web-service-module-run
      - file: omero_web-service-file-managed
      - sls: {{ tplroot }}.venv
      - sls: {{ tplroot }}.config
