# -*- coding: utf-8 -*-
# vim: ft=sls
# The distribution's default server goes away (nginx:disable_default_server),
# the way each platform needs (parameters/: nginx:default_server):
# * sed_files: the walkthrough's sed, made idempotent: "listen 80
#   default_server;" becomes "listen 80; # default_server;" once;
# * rename: like the walkthrough's mv (a default.conf that a package upgrade
#   brings back replaces the previous default.disabled);
# * remove: e.g. Debian's sites-enabled/default symlink.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set nginx = omero_web.nginx %}
{%- set default_server = nginx.default_server %}

include:
  - {{ tplroot }}.nginx.package
{%- if nginx.disable_default_server %}
{%-   for file in default_server.sed_files %}

omero_web-nginx-default_server-file-replace-{{ loop.index }}:
  file.replace:
    - name: {{ file }}
    - pattern: '^(\s*listen\s+[^;#\n]*?)\s+(default_server[^\n]*)$'
    - repl: '\1; # \2'
    - flags: [MULTILINE]
    - backup: .bak
    - ignore_if_missing: True
    - require:
      - sls: {{ tplroot }}.nginx.package
{%-   endfor %}
{%-   for source, target in default_server.rename | dictsort %}

omero_web-nginx-default_server-file-rename-{{ loop.index }}:
  file.rename:
    - name: {{ target }}
    - source: {{ source }}
    - force: True
    - require:
      - sls: {{ tplroot }}.nginx.package
{%-   endfor %}
{%-   if default_server.remove %}

omero_web-nginx-default_server-file-absent:
  file.absent:
    - names: {{ default_server.remove | json }}
    - require:
      - sls: {{ tplroot }}.nginx.package
{%-   endif %}
{%- endif %}
