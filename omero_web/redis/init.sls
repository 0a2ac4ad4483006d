# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough (optional): "if you wish to use the Redis cache, install Redis"
#   yum -y install redis python-redis
#   systemctl enable redis.service; systemctl start redis.service
# Only for a local Redis (sessions:backend redis with a 127.0.0.1/localhost/
# unix:// URL): a remote Redis is not this host's business. `python-redis`
# (the system python 2 client) is not needed: OMERO.web uses django-redis from
# its venv (venv sls).
#
# Redis listens where sessions:redis_url says (omero_web.derive ->
# redis_port / redis_socket), set in the package's redis.conf
# (redis:conf_file) after the package installed it; Redis restarts when that
# changes:
# * redis:// URL: `port <the URL's port, default 6379>`;
# * unix:// URL: `unixsocket <path>` and `unixsocketperm 770`, and the
#   OMERO.web user joins the redis group. The path must be in a directory
#   Redis can create it in: its runtime directory /run/redis/ (Debian's unit
#   allows no other; RedHat's redis user can write nowhere else in /run).
#   The TCP port is left as it is;
# * rediss:// URL: TLS is Redis's own configuration (tls-port, certificates):
#   the formula installs and runs Redis but sets no port.
# Switching between them leaves the previous setting in redis.conf.
#
# Debian's redis-server starts Redis on 6379 while it installs (its postinst
# ignores a failed start, e.g. 6379 taken). When that start failed, the
# unit's Restart=always retries it until systemd's start limit refuses any
# start: after a change of redis.conf, Redis is stopped (which also ends such
# a retry loop) and its start limit reset, then the service state starts it
# on its port.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set redis = omero_web.redis %}
{%- set derived = omero_web.derived %}

{%- if derived.redis_local %}
{%-   set port = none if derived.redis_tls else derived.redis_port %}
{%-   set socket = derived.redis_socket %}
{#-   test=True before the package installed redis.conf (a fresh host): the
      replacements have no file to read. The distribution's redis.conf says
      `port 6379` and has the unixsocket lines commented out: another port
      and a socket are changes to predict (under the state's own ID, as the
      real apply names it), port 6379 is none. #}
{%-   set fresh_test = opts.get("test") and not salt["file.file_exists"](redis.conf_file) %}
{#-   [ID suffix, pattern, replacement, state module] per redis.conf directive #}
{%-   set directives = [] %}
{%-   if port %}
{%-     do directives.append(["", "^port[ \\t]+\\d+[ \\t]*$", "port " ~ port,
                               "test" if fresh_test and port != 6379 else "file"]) %}
{%-   endif %}
{%-   if socket %}
{%-     do directives.append(["-unixsocket", "^#?[ \\t]*unixsocket[ \\t]+\\S+[ \\t]*$",
                               "unixsocket " ~ socket, "test" if fresh_test else "file"]) %}
{%-     do directives.append(["-unixsocketperm", "^#?[ \\t]*unixsocketperm[ \\t]+\\d+[ \\t]*$",
                               "unixsocketperm 770", "test" if fresh_test else "file"]) %}
{%-   endif %}
{%-   set selinux_port = derived.selinux and port and port != 6379 %}

include:
  # CentOS 7: redis comes from EPEL (epel-release).
  - {{ tplroot }}.prerequisites
{%-   if socket %}
  - {{ tplroot }}.user
{%-   endif %}
{%-   if selinux_port %}
  # semanage
  - {{ tplroot }}.selinux
{%-   endif %}

omero_web-redis-pkg-installed:
  pkg.installed:
    - name: {{ redis.pkg }}
    - require:
      - sls: {{ tplroot }}.prerequisites
{%-   for suffix, pattern, repl, module in directives %}

omero_web-redis-file-replace{{ suffix }}:
{%-     if module == "test" %}
  test.succeed_with_changes:
    - name: "{{ redis.conf_file }}, once {{ redis.pkg }} is installed: {{ repl }}"
{%-     else %}
  file.replace:
    - name: {{ redis.conf_file }}
    - pattern: {{ pattern | json }}
    - repl: {{ repl | json }}
    - flags: [MULTILINE]
    # Redis reads the last occurrence: added at the end if the file has none.
    - append_if_not_found: True
    # The package's original stays in the package (dpkg/rpm conffile).
    - backup: False
    # test=True on a fresh host: no redis.conf yet, and nothing to change.
    - ignore_if_missing: {{ "True" if fresh_test else "False" }}
{%-     endif %}
    - require:
      - pkg: omero_web-redis-pkg-installed
{%-   endfor %}
{%-   if socket %}

# The socket is mode 770, group redis: the OMERO.web user joins the group
# (OMERO.web, started after this sls, gets it).
omero_web-redis-group-present:
  group.present:
    - name: {{ redis.group }}
    - addusers:
      - {{ omero_web.user }}
    - require:
      - pkg: omero_web-redis-pkg-installed
      - sls: {{ tplroot }}.user
{%-   endif %}
{%-   if selinux_port %}

# redis_t may bind only ports of type redis_port_t (6379 is one already).
# Not verified on an SELinux host.
omero_web-redis-selinux-port_policy_present:
  selinux.port_policy_present:
    - name: tcp/{{ port }}
    - sel_type: {{ redis.selinux_port_type }}
    - require:
      - pkg: omero_web-selinux-pkg-installed
{%-   endif %}
{%-   if directives %}

# After a change of redis.conf: stop Redis (or the retries of the package's
# failed start on a taken port) and reset its start limit and failed state,
# so that the service state can start it on the new port.
omero_web-redis-cmd-run:
  cmd.run:
    - name: >-
        systemctl stop {{ redis.service }}.service &&
        systemctl reset-failed {{ redis.service }}.service
    - onchanges:
{%-     for suffix, _, _, module in directives %}
      - {{ module }}: omero_web-redis-file-replace{{ suffix }}
{%-     endfor %}
{%-   endif %}

omero_web-redis-service-running:
  service.running:
    - name: {{ redis.service }}
    - enable: True
    - require:
      - pkg: omero_web-redis-pkg-installed
{%-   if directives %}
      - cmd: omero_web-redis-cmd-run
{%-   endif %}
{%-   if selinux_port %}
      - selinux: omero_web-redis-selinux-port_policy_present
{%-   endif %}
{%-   if directives %}
    # restarts on a new port or socket
    - watch:
{%-     for suffix, _, _, module in directives %}
      - {{ module }}: omero_web-redis-file-replace{{ suffix }}
{%-     endfor %}
{%-   endif %}
{%- else %}
{}
{%- endif %}
