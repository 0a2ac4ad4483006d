# -*- coding: utf-8 -*-
# vim: ft=sls
# redis_t may bind only ports of type redis_port_t (the package's default
# port is one already): a local Redis on another port gets that type.
# RedHat hosts with SELinux only. Not verified on an SELinux host.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

include:
  # semanage
  - {{ tplroot }}.selinux

omero_web-redis-selinux-selinux-port_policy_present:
  selinux.port_policy_present:
    - name: tcp/{{ omero_web.derived.redis.port }}
    - sel_type: {{ omero_web.redis.selinux_port_type }}
    - require:
      - sls: {{ tplroot }}.selinux
