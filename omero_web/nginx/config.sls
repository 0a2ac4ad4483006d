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

# OMERO.web's location blocks, for the HTTPS server below or (location_only)
# for your own server block.
omero_web-nginx-config-omero-nginx_config:
  omero.nginx_config:
    - name: {{ files.location_file }}
    - location_only: True
    - properties: {{ files.generator | json }}
    - user: root
    - group: root
    - mode: "0644"
    - omero_user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.config
{%- else %}

omero_web-nginx-config-omero-nginx_config:
  omero.nginx_config:
    - name: {{ files.conf_file }}
    - http: {{ nginx.port }}
    - servername: {{ nginx.server_name | json }}
    - max_body_size: {{ nginx.max_body_size | json }}
    - properties: {{ files.generator | json }}
    - user: root
    - group: root
    - mode: "0644"
    - omero_user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.nginx.package
      - sls: {{ tplroot }}.config
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
