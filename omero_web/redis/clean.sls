# -*- coding: utf-8 -*-
# vim: ft=sls
# Redis may serve other applications: it is stopped and removed only with
# omero_web:clean:pkgs true (and only when the formula installed it). The
# port/socket the formula set in redis.conf is not reverted: removing the
# package keeps the modified file (dpkg conffile; RPM saves it as .rpmsave).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

{%- if omero_web.derived.redis.local and omero_web.clean.pkgs %}

omero_web-redis-clean-service-dead:
  service.dead:
    - name: {{ omero_web.redis.service }}
    - enable: False
    # Only if the unit exists: else test=True would report a change
    # ("not present; if created in this state run, it would be stopped").
    - onlyif: systemctl cat -- {{ omero_web.redis.service }}.service >/dev/null 2>&1

omero_web-redis-clean-pkg-removed:
  pkg.removed:
    - name: {{ omero_web.redis.pkg }}
    - require:
      - service: omero_web-redis-clean-service-dead
{%- else %}
{}
{%- endif %}
