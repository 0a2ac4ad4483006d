# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo selinux/init.sls: gunicorn's port loses its http_port_t label and the
# booleans go back to off (their default). The policycoreutils package stays.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set selinux = omero_web.selinux %}

{%- if omero_web.derived.selinux %}

omero_web-selinux-clean-selinux-port_policy_absent:
  selinux.port_policy_absent:
    - name: tcp/{{ omero_web.gunicorn.port }}
    - sel_type: {{ selinux.port_type }}

omero_web-selinux-clean-selinux-boolean:
  selinux.boolean:
    - names: {{ selinux.booleans | json }}
    - value: False
    - persist: True
{%- else %}
{}
{%- endif %}
