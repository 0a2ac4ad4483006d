# -*- coding: utf-8 -*-
# vim: ft=sls
# The Redis package (CentOS 7: from EPEL, hence prerequisites first).
# Debian's redis-server starts Redis on 6379 while it installs (its postinst
# ignores a failed start, e.g. 6379 taken); redis/service.sls deals with that.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

include:
  - {{ tplroot }}.prerequisites

omero_web-redis-package-pkg-installed:
  pkg.installed:
    - name: {{ omero_web.redis.pkg }}
    - require:
      - sls: {{ tplroot }}.prerequisites
