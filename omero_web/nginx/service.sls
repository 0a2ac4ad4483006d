# -*- coding: utf-8 -*-
# vim: ft=sls
# nginx running and enabled, reloaded after its configuration changed.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

include:
  - {{ tplroot }}.nginx.package
  - {{ tplroot }}.nginx.default_server
  - {{ tplroot }}.nginx.tls
  - {{ tplroot }}.nginx.config

# nginx -t on every run (it changes nothing): whatever made nginx's
# configuration invalid, the apply says so now, not at nginx's next reload.
omero_web-nginx-service-omero_web-nginx_valid:
  omero_web.nginx_valid:
    - name: nginx -t
    - require:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.nginx.default_server
      - sls: {{ tplroot }}.nginx.tls
      - sls: {{ tplroot }}.nginx.config

# Reloaded after any change of its configuration (every changed file was
# accepted by nginx -t before it stayed).
omero_web-nginx-service-service-running:
  service.running:
    - name: {{ omero_web.nginx.service }}
    - enable: True
    - reload: True
    - require:
      - omero_web: omero_web-nginx-service-omero_web-nginx_valid
    - watch:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.nginx.default_server
      - sls: {{ tplroot }}.nginx.tls
      - sls: {{ tplroot }}.nginx.config
