# -*- coding: utf-8 -*-
# vim: ft=sls
# Redis listens where sessions:redis_url says (omero_web.derive -> redis),
# set in the package's own configuration file (redis:conf_file):
# * redis:// URL: `port <the URL's port, default redis:default_port>`;
# * unix:// URL: `unixsocket <path>` and `unixsocketperm 770`, and the
#   OMERO.web user joins the redis group. The path must be in a directory
#   Redis can create it in: its runtime directory /run/redis/ (Debian's unit
#   allows no other; RedHat's redis user can write nowhere else in /run).
#   The TCP port is left as it is;
# * rediss:// URL: TLS is Redis's own configuration (tls-port, certificates):
#   the formula installs and runs Redis but sets no port;
# * a TCP Redis requires a password (`requirepass`): the URL's, else
#   redis:password, else the one redis/password.sls generates once.
# Switching between them leaves the previous setting in redis.conf.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set redis = omero_web.derived.redis %}

include:
  - {{ tplroot }}.redis.package
  - {{ tplroot }}.redis.password
{%- if redis.socket %}
  - {{ tplroot }}.user
{%- endif %}
{%- if redis.directives %}

omero_web-redis-config-omero_web-redis_directives:
  omero_web.redis_directives:
    - name: {{ omero_web.redis.conf_file }}
    - directives: {{ redis.directives | json }}
    # what the package's file says, for a dry run before it is installed
    - package_defaults:
        port: {{ redis.default_port }}
    - require:
      - sls: {{ tplroot }}.redis.package
{%- if redis.password_file %}
      - sls: {{ tplroot }}.redis.password
{%- endif %}
{%- endif %}
{%- if redis.socket %}

# The socket is mode 770, group redis: the OMERO.web user joins the group
# (OMERO.web, started after this sls, gets it).
omero_web-redis-config-group-present:
  group.present:
    - name: {{ omero_web.redis.group }}
    - addusers:
      - {{ omero_web.user }}
    - require:
      - sls: {{ tplroot }}.redis.package
      - sls: {{ tplroot }}.user
{%- endif %}
