# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "SELinux" - if [ $(getenforce) != Disabled ]; then
#   yum -y install policycoreutils-python    (policycoreutils-python-utils on EL9)
#   setsebool -P httpd_read_user_content 1
#   setsebool -P httpd_enable_homedirs 1
#   semanage port -a -t http_port_t -p tcp 4080
# Only on RedHat hosts whose selinux grain says enabled, with
# omero_web:selinux:manage true (omero_web.derive -> selinux).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set selinux = omero_web.selinux %}

{%- if omero_web.derived.selinux %}

omero_web-selinux-pkg-installed:
  pkg.installed:
    - pkgs: {{ selinux.pkgs | json }}

omero_web-selinux-selinux-boolean:
  selinux.boolean:
    - names: {{ selinux.booleans | json }}
    - value: True
    - persist: True
    - require:
      - pkg: omero_web-selinux-pkg-installed

# nginx (httpd_t) may connect to gunicorn's port.
omero_web-selinux-selinux-port_policy_present:
  selinux.port_policy_present:
    - name: tcp/{{ omero_web.gunicorn.port }}
    - sel_type: {{ selinux.port_type }}
    - require:
      - pkg: omero_web-selinux-pkg-installed
{%- else %}
{}
{%- endif %}
