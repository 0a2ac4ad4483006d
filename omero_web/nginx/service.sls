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

# nginx -t on every run; nginx started, or reloaded when what it would load
# (nginx -T) differs from what it loaded last (a record the formula keeps):
# a reload that a failed run owed is made too.
omero_web-nginx-service-omero_web-nginx_running:
  omero_web.nginx_running:
    - name: {{ omero_web.nginx.service }}
    - require:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.nginx.default_server
      - sls: {{ tplroot }}.nginx.tls
      - sls: {{ tplroot }}.nginx.config
