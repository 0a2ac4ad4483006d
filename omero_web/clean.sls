# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo init.sls, in reverse order. Distribution packages stay, except nginx
# and Redis with omero_web:clean:pkgs true; the distribution's default nginx
# server is not re-enabled.
---
{%- set tplroot = tpldir.split("/")[0] %}

include:
  - {{ tplroot }}.healthcheck.clean
  - {{ tplroot }}.selinux.clean
  - {{ tplroot }}.clearsessions.clean
  - {{ tplroot }}.service.clean
  - {{ tplroot }}.nginx.clean
  - {{ tplroot }}.config.clean
  - {{ tplroot }}.apps.clean
  - {{ tplroot }}.venv.clean
  - {{ tplroot }}.redis.clean
  - {{ tplroot }}.prerequisites.clean
  - {{ tplroot }}.user.clean
