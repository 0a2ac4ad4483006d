# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Installing prerequisites"
#   yum -y install epel-release      (repo_pkgs: CentOS 7 only)
#   yum -y install unzip
#   yum -y install python3           (+ python3-venv on Debian/Ubuntu)
# nginx is installed by the nginx sls (only when omero_web:nginx:enabled),
# Redis by the redis sls (only for a local Redis).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set prerequisites = omero_web.prerequisites %}

{%- if prerequisites.repo_pkgs %}

omero_web-prerequisites-pkg-installed-repos:
  pkg.installed:
    - pkgs: {{ prerequisites.repo_pkgs | json }}
    - require_in:
      - pkg: omero_web-prerequisites-pkg-installed
{%- endif %}

omero_web-prerequisites-pkg-installed:
  pkg.installed:
    - pkgs: {{ prerequisites.pkgs | json }}
