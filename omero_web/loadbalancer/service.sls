# -*- coding: utf-8 -*-
# vim: ft=sls
# nginx running, reloaded (gracefully: requests in flight end on the old
# workers) when what it would load differs from what it loaded: a member
# added, drained or put back.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

include:
  - {{ tplroot }}.loadbalancer.config

omero_web-loadbalancer-service-omero_web-nginx_running:
  omero_web.nginx_running:
    - name: {{ omero_web.nginx.service }}
    - require:
      - sls: {{ tplroot }}.loadbalancer.config
