# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Automatically running OMERO.web"
#   cp omero-web-systemd.service /etc/systemd/system/omero-web.service
#   systemctl daemon-reload
#   systemctl enable omero-web.service; systemctl start omero-web.service
# The unit follows the walkthrough (Type=forking, PIDFile, PATH, OMERODIR)
# with Restart=omero_web:service:restart (default on-failure), a graceful
# ExecReload and the sandboxing of service:hardening.
# omero_web.service_running compares what the running OMERO.web was started
# or reloaded with against the files on disk: it reloads it (no request
# dropped) when only properties that new workers read changed, and restarts
# it when the venv's packages, the unit or a master-level property changed;
# a restart that an earlier, failed run owed is made too.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set service = omero_web.service %}
{%- set nginx_served = omero_web.nginx.enabled %}
{%- set unit = omero_web.derived.unit %}

include:
  - {{ tplroot }}.user
  - {{ tplroot }}.venv
  - {{ tplroot }}.config
{%- if nginx_served %}
  - {{ tplroot }}.nginx
{%- endif %}
{%- if omero_web.derived.redis.local %}
  - {{ tplroot }}.redis
{%- endif %}

{%- set precompress = omero_web.derived.precompress %}
{%- if precompress %}

# nginx:gzip_static: the unit runs it around `omero web start`.
omero_web-service-file-managed-precompress:
  file.managed:
    - name: {{ precompress.script }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web-precompress-static.py.jinja",
                              "omero_web-service-file-managed-precompress") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: True
    - context:
        python: {{ omero_web.python.executable }}
{%- endif %}

# The unit's ExecReload: a reload that does not pause OMERO.web.
omero_web-service-file-managed-reload:
  file.managed:
    - name: {{ service.reload_script }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web-reload.py.jinja",
                              "omero_web-service-file-managed-reload") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: True
    - context:
        python: {{ omero_web.python.executable }}

omero_web-service-file-managed:
  file.managed:
    - name: {{ service.unit_dir }}/{{ service.name }}.service
    - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web.service.jinja",
                              "omero_web-service-file-managed") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        user: {{ omero_web.user }}
        group: {{ omero_web.group }}
        omerodir: {{ omero_web.omerodir }}
        venv: {{ omero_web.venv }}
        restart: {{ service.restart }}
        requires: {{ unit.requires | json }}
        after: {{ unit.after | json }}
        tmpdir: {{ omero_web.derived.tmpdir }}
        hardening: {{ omero_web.derived.unit_directives | json }}
        reload: {{ unit.reload | json }}
        precompress: {{ unit.precompress | json }}
    - require:
      - file: omero_web-service-file-managed-reload
{%- if precompress %}
      - file: omero_web-service-file-managed-precompress
{%- endif %}

# systemd reads the changed unit before the restart below.
omero_web-service-module-run:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: omero_web-service-file-managed

omero_web-service-omero_web-service_running:
  omero_web.service_running:
    - name: {{ service.name }}
    - enable: {{ service.enabled | json }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - unit_file: {{ service.unit_dir }}/{{ service.name }}.service
    # an upgrade across a session format clears the store (omero_web_upgrade)
    - user: {{ omero_web.user }}
    - version: {{ omero_web.version | json }}
    - require:
      - sls: {{ tplroot }}.user
{%- if nginx_served %}
      - sls: {{ tplroot }}.nginx.service
{%- endif %}
{%- if omero_web.derived.redis.local %}
      - sls: {{ tplroot }}.redis.service
{%- endif %}
    # what the dry run predicts a reload or a restart from
    - watch:
      - module: omero_web-service-module-run
      - file: omero_web-service-file-managed
      - sls: {{ tplroot }}.venv
      - sls: {{ tplroot }}.config
