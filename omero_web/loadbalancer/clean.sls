# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo loadbalancer/init.sls: the load balancer's nginx file goes, then
# nginx reloads. nginx itself stays (nginx/clean.sls, with clean:pkgs).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-loadbalancer-clean-file-absent:
  file.absent:
    - name: {{ omero_web.derived.loadbalancer.conf_file }}

# cmd.run: `systemctl reload-or-try-restart` reloads nginx only if it runs
# (as nginx/clean.sls does).
omero_web-loadbalancer-clean-cmd-run:
  cmd.run:
    - name: systemctl reload-or-try-restart {{ omero_web.nginx.service | quote }}
    - onchanges:
      - file: omero_web-loadbalancer-clean-file-absent
