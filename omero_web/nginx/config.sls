# -*- coding: utf-8 -*-
# vim: ft=sls
# OMERO.web's nginx configuration, from `omero web config nginx` run at apply
# time by the omero.nginx_config state (only when its inputs changed), in a
# throwaway OMERODIR holding only validated properties (derived.nginx.generator):
# root's nginx never loads what the service user could have written.
# * by default the whole server block, into nginx:conf_dir;
# * with location_only, `omero web config nginx-location` into
#   /etc/nginx/<nginx:location_file>, for your own server block;
# * with nginx:tls, those location blocks included in an HTTPS server from
#   files/default/nginx-tls.conf.jinja, and port 80 redirecting to it.
# In every case with the formula's additions for pages that load fast
# (nginx:gzip, static_max_age, static_unversioned_max_age,
# upstream_keepalive: _utils/omero_web_nginx.py); the location blocks' map
# and upstream go into derived.nginx.http_file (http level, conf_dir).
# Every file is tested with `nginx -t` before it stays (omero_web.nginx_file).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set nginx = omero_web.nginx %}
{%- set files = omero_web.derived.nginx %}

include:
  - {{ tplroot }}.nginx.package
  - {{ tplroot }}.nginx.tls
  - {{ tplroot }}.config
{%- if files.tls or nginx.location_only %}

# http-level blocks the location blocks name (static files' lifetimes, the
# upstream kept alive), in conf_dir: before the location file.
omero_web-nginx-config-omero-nginx_http_config:
  omero.nginx_http_config:
    - name: {{ files.http_file }}
    - address: {{ files.upstream_address | json }}
    - tuning: {{ files.tuning | json }}
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - sls: {{ tplroot }}.nginx.package

# OMERO.web's location blocks, for the HTTPS server below or (location_only)
# for your own server block.
omero_web-nginx-config-omero-nginx_config:
  omero.nginx_config:
    - name: {{ files.location_file }}
    - location_only: True
    - properties: {{ files.generator | json }}
    - tuning: {{ files.tuning | json }}
    - user: root
    - group: root
    - mode: "0644"
    - omero_user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.config
      - omero: omero_web-nginx-config-omero-nginx_http_config
{%- else %}

omero_web-nginx-config-omero-nginx_config:
  omero.nginx_config:
    - name: {{ files.conf_file }}
    - http: {{ nginx.port }}
    - servername: {{ nginx.server_name | json }}
    - max_body_size: {{ nginx.max_body_size | json }}
    - properties: {{ files.generator | json }}
    - tuning: {{ files.tuning | json }}
    - user: root
    - group: root
    - mode: "0644"
    - omero_user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.config

# The server block carries its own http-level blocks: no file for the
# location blocks' (left from HTTPS or location_only).
omero_web-nginx-config-file-absent:
  file.absent:
    - name: {{ files.http_file }}
    - require:
      - omero: omero_web-nginx-config-omero-nginx_config
{%- endif %}
{%- if files.tls %}

omero_web-nginx-config-omero_web-nginx_file:
  omero_web.nginx_file:
    - name: {{ files.conf_file }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "nginx-tls.conf.jinja",
                              "omero_web-nginx-config-omero_web-nginx_file") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        port: {{ nginx.port }}
        server_name: {{ nginx.server_name | json }}
        max_body_size: {{ nginx.max_body_size | json }}
        tls_port: {{ nginx.tls.port }}
        tls_protocols: {{ nginx.tls.protocols | json }}
        tls_ciphers: {{ nginx.tls.ciphers | json }}
        hsts: {{ files.hsts | json }}
        redirect_host: {{ files.redirect_host | json }}
        cert: {{ files.tls_cert }}
        key: {{ files.tls_key }}
        location_file: {{ files.location_file }}
        prefix: {{ omero_web.derived.prefix | json }}
        prefix_locations: {{ files.prefix_locations | json }}
    - require:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.nginx.tls
      - omero: omero_web-nginx-config-omero-nginx_config
{%- endif %}
