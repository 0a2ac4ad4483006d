# -*- coding: utf-8 -*-
# vim: ft=sls
# nginx (CentOS 7: from EPEL), and its workers' user in the OMERO.web group:
# they read $OMERODIR/var/static (OMERODIR is mode 0750).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

include:
  - {{ tplroot }}.prerequisites
  - {{ tplroot }}.user

omero_web-nginx-package-pkg-installed:
  pkg.installed:
    - name: {{ omero_web.nginx.pkg }}
    - require:
      - sls: {{ tplroot }}.prerequisites

omero_web-nginx-package-group-present:
  group.present:
    - name: {{ omero_web.group }}
    - addusers:
      - {{ omero_web.nginx.user }}
    - require:
      - pkg: omero_web-nginx-package-pkg-installed
      - sls: {{ tplroot }}.user
