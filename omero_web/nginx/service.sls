# -*- coding: utf-8 -*-
# vim: ft=sls
# nginx running and enabled, reloaded after its configuration changed.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set nginx = omero_web.nginx %}
{#- The steps that have states here (Salt 3008 refuses a requisite on an sls
    without any). #}
{%- set steps = ["package"] %}
{%- if nginx.disable_default_server and (nginx.default_server.sed_files
      or nginx.default_server.rename or nginx.default_server.remove) %}
{%-   do steps.append("default_server") %}
{%- endif %}
{%- if omero_web.derived.nginx.tls %}
{%-   do steps.append("tls") %}
{%- endif %}
{%- do steps.append("config") %}

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
{%- for step in steps %}
      - sls: {{ tplroot }}.nginx.{{ step }}
{%- endfor %}
