# -*- coding: utf-8 -*-
# vim: ft=sls
# The load balancer's nginx file, from derived.loadbalancer (its members
# validated: pillar and mine alike), tested with `nginx -t` before it stays
# (omero_web.nginx_file).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set balancer = omero_web.derived.loadbalancer %}

include:
  - {{ tplroot }}.nginx.package
{%- if balancer.problem %}

# No file can be written (no member, a drain of none or all of them): say
# why, change nothing; nginx keeps serving its last file.
omero_web-loadbalancer-config-test-fail_without_changes:
  test.fail_without_changes:
    - name: {{ ("omero_web.loadbalancer: " ~ balancer.problem) | json }}
{%- else %}

omero_web-loadbalancer-config-omero_web-nginx_file:
  omero_web.nginx_file:
    - name: {{ balancer.conf_file }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "nginx-loadbalancer.conf.jinja",
                              "omero_web-loadbalancer-config-omero_web-nginx_file") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - context:
        upstream: {{ balancer.upstream }}
        servers: {{ balancer.servers | json }}
        port: {{ balancer.port }}
        server_name: {{ balancer.server_name | json }}
        max_fails: {{ balancer.max_fails }}
        fail_timeout: {{ balancer.fail_timeout }}
    - require:
      - sls: {{ tplroot }}.nginx.package
{%- endif %}
