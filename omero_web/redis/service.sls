# -*- coding: utf-8 -*-
# vim: ft=sls
# Redis running and enabled; restarted when where it listens changed.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set redis = omero_web.derived.redis %}

include:
  - {{ tplroot }}.redis.package
  - {{ tplroot }}.redis.config
{%- if redis.selinux_port %}
  - {{ tplroot }}.redis.selinux
{%- endif %}
{%- if redis.directives %}

# cmd.run: no built-in state stops a unit and clears its failed state.
# After a change of where Redis listens: stop it (this also ends the retries
# of the package's failed first start on a taken port: Restart=always until
# systemd's start limit refuses any start) and reset that start limit, so
# that the service state below starts it on its new port.
omero_web-redis-service-cmd-run:
  cmd.run:
    - name: >-
        systemctl stop {{ omero_web.redis.service | quote }}.service &&
        systemctl reset-failed {{ omero_web.redis.service | quote }}.service
    - onchanges:
      - sls: {{ tplroot }}.redis.config
{%- endif %}

omero_web-redis-service-service-running:
  service.running:
    - name: {{ omero_web.redis.service }}
    - enable: True
    - require:
      - sls: {{ tplroot }}.redis.package
{%- if redis.selinux_port %}
      - sls: {{ tplroot }}.redis.selinux
{%- endif %}
{%- if redis.directives %}
      - cmd: omero_web-redis-service-cmd-run
    # restarts on a new port or socket
    - watch:
      - sls: {{ tplroot }}.redis.config
{%- endif %}
