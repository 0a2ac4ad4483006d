# -*- coding: utf-8 -*-
# vim: ft=sls
# OMERO.web, the walkthrough "OMERO.web installation on CentOS 7 and IcePy
# 3.6", step by step (each step its own sls, in the walkthrough's order).
---
{%- set tplroot = tpldir.split("/")[0] %}

include:
  - {{ tplroot }}.user
  - {{ tplroot }}.prerequisites
  - {{ tplroot }}.redis
  - {{ tplroot }}.venv
  - {{ tplroot }}.apps
  - {{ tplroot }}.config
  - {{ tplroot }}.nginx
  - {{ tplroot }}.service
  - {{ tplroot }}.clearsessions
  - {{ tplroot }}.selinux
  - {{ tplroot }}.healthcheck
