# -*- coding: utf-8 -*-
# vim: ft=sls
# Undo nginx/init.sls: OMERO.web's server block (or location include) and the
# TLS files, then nginx reloads. The distribution's default server is NOT
# re-enabled (the formula does not know what the site wants there). nginx
# itself is removed only with omero_web:clean:pkgs true.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set nginx = omero_web.nginx %}
{%- set files = omero_web.derived.nginx %}

omero_web-nginx-clean-file-absent:
  file.absent:
    - names:
      - {{ files.conf_file }}
      - {{ files.location_file }}
      - {{ files.http_file }}
      - {{ files.tls_cert }}
      - {{ files.tls_key }}

{%- if omero_web.clean.pkgs %}

omero_web-nginx-clean-service-dead:
  service.dead:
    - name: {{ nginx.service }}
    - enable: False
    # Only if the unit exists: else test=True would report a change
    # ("not present; if created in this state run, it would be stopped").
    - onlyif: systemctl cat -- {{ nginx.service }}.service >/dev/null 2>&1
    - require:
      - file: omero_web-nginx-clean-file-absent

omero_web-nginx-clean-pkg-removed:
  pkg.removed:
    - name: {{ nginx.pkg }}
    - require:
      - service: omero_web-nginx-clean-service-dead
{%- else %}

# cmd.run: `systemctl reload-or-try-restart` (systemd >= 219, CentOS 7 too)
# reloads nginx only if it runs;
# service.running would start a stopped nginx, and module.run service.reload
# fails on a stopped one.
omero_web-nginx-clean-cmd-run:
  cmd.run:
    - name: systemctl reload-or-try-restart {{ nginx.service | quote }}
    - onchanges:
      - file: omero_web-nginx-clean-file-absent
{%- endif %}
