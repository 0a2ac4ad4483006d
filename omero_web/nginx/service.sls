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

# cmd.run: Salt has no state that tests an nginx configuration. `nginx -t`
# after any change of it (the first install included, so that a dry run on
# a fresh host predicts it), before nginx reloads it: a bad file fails here
# and nginx keeps serving the previous configuration.
omero_web-nginx-service-cmd-run:
  cmd.run:
    - name: nginx -t
    - require:
      - sls: {{ tplroot }}.nginx.package
    - onchanges:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.nginx.default_server
      - sls: {{ tplroot }}.nginx.tls
      - sls: {{ tplroot }}.nginx.config

omero_web-nginx-service-service-running:
  service.running:
    - name: {{ omero_web.nginx.service }}
    - enable: True
    - reload: True
    - watch:
      - cmd: omero_web-nginx-service-cmd-run
