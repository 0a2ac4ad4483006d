# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo init.sls, in reverse order. Distribution packages stay, except nginx
# and Redis with omero_web:clean:pkgs true; the distribution's default nginx
# server is not re-enabled.
# It refuses, before anything is deleted and naming the key, to delete an
# account, a unit or a directory the formula did not make (omero_web.clean_check).
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
