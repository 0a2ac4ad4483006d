# -*- coding: utf-8 -*-
# vim: ft=sls
# HTTPS (nginx:tls): the certificate and key (paths on the minion or
# salt://) copied next to nginx, mode 0600; the key's content is never shown.
# nginx -t tests them before they stay (omero_web.nginx_file).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set tls = omero_web.derived.nginx.tls %}

include:
  - {{ tplroot }}.nginx.package
{%- if tls %}

omero_web-nginx-tls-omero_web-nginx_file:
  omero_web.nginx_file:
    - names:
      - {{ omero_web.derived.nginx.tls_cert }}:
        - source: {{ omero_web.nginx.tls.cert }}
      - {{ omero_web.derived.nginx.tls_key }}:
        - source: {{ omero_web.nginx.tls.key }}
    - user: root
    - group: root
    - mode: "0600"
    - makedirs: True
    - show_changes: False
    - require:
      - sls: {{ tplroot }}.nginx.package
{%- endif %}
