# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Configuring NGINX" (as root)
#   yum -y install nginx
#   omero web config nginx --http "${WEBPORT}" --servername "${WEBSERVER_NAME}"
#       > /etc/nginx/conf.d/omeroweb.conf          (as the omero-web user)
#   sed -i.bak -re 's/( default_server.*)/; #\1/' /etc/nginx/nginx.conf
#   mv /etc/nginx/conf.d/default.conf /etc/nginx/conf.d/default.disabled
#   systemctl enable nginx; systemctl start nginx
# or, with location_only, `omero web config nginx-location` into
# $OMERODIR/omero-web-location.include for your own server block.
# With nginx:tls, OMERO.web's location blocks are included in an HTTPS server
# from files/default/nginx-tls.conf.jinja, and port 80 redirects to it.
# The omero.nginx_config state runs `omero web config nginx` at apply time,
# and only when its inputs changed.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set nginx = omero_web.nginx %}

{%- if nginx.enabled %}
{%-   set tls = omero_web.derived.get("tls") %}
{%-   set location_file = omero_web.omerodir ~ "/" ~ nginx.location_file %}
{%-   set conf_file = nginx.conf_dir ~ "/" ~ nginx.conf_file %}

include:
  - {{ tplroot }}.prerequisites
  - {{ tplroot }}.user
  - {{ tplroot }}.config

omero_web-nginx-pkg-installed:
  pkg.installed:
    - name: {{ nginx.pkg }}
    - require:
      # CentOS 7: nginx comes from EPEL (epel-release).
      - sls: {{ tplroot }}.prerequisites

# nginx's workers read $OMERODIR/var/static (OMERODIR is mode 0750).
omero_web-nginx-group-present:
  group.present:
    - name: {{ omero_web.group }}
    - addusers:
      - {{ nginx.user }}
    - require:
      - pkg: omero_web-nginx-pkg-installed
      - sls: {{ tplroot }}.user

{%-   if nginx.disable_default_server %}
{%-     for file in nginx.default_server.sed_files %}

omero_web-nginx-file-replace-{{ loop.index }}:
  file.replace:
    - name: {{ file }}
    # The walkthrough's sed, made idempotent: "listen 80 default_server;"
    # becomes "listen 80; # default_server;" once.
    - pattern: '^(\s*listen\s+[^;#\n]*?)\s+(default_server[^\n]*)$'
    - repl: '\1; # \2'
    - flags: [MULTILINE]
    - backup: .bak
    - ignore_if_missing: True
    - require:
      - pkg: omero_web-nginx-pkg-installed
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-     endfor %}
{%-     for source, target in nginx.default_server.rename | dictsort %}

omero_web-nginx-file-rename-{{ loop.index }}:
  file.rename:
    - name: {{ target }}
    - source: {{ source }}
    # like mv: a default.conf that a package upgrade brings back replaces
    # the previous default.disabled.
    - force: True
    - require:
      - pkg: omero_web-nginx-pkg-installed
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-     endfor %}
{%-     if nginx.default_server.remove %}

omero_web-nginx-file-absent:
  file.absent:
    - names: {{ nginx.default_server.remove | json }}
    - require:
      - pkg: omero_web-nginx-pkg-installed
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-     endif %}
{%-   endif %}

{%-   if tls %}
{#-     HTTPS: the certificate and key (paths on the minion or salt://) are
        copied next to nginx, mode 0600; the key's content is never shown. #}

omero_web-nginx-file-managed-tls-cert:
  file.managed:
    - name: {{ nginx.tls_dir }}/{{ nginx.conf_file | replace(".conf", "") }}.crt
    - source: {{ nginx.tls.cert }}
    - user: root
    - group: root
    - mode: "0600"
    - makedirs: True
    - require:
      - pkg: omero_web-nginx-pkg-installed
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run

omero_web-nginx-file-managed-tls-key:
  file.managed:
    - name: {{ nginx.tls_dir }}/{{ nginx.conf_file | replace(".conf", "") }}.key
    - source: {{ nginx.tls.key }}
    - user: root
    - group: root
    - mode: "0600"
    - makedirs: True
    - show_changes: False
    - require:
      - pkg: omero_web-nginx-pkg-installed
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-   endif %}

{%-   if tls or nginx.location_only %}

# `omero web config nginx-location`: OMERO.web's location blocks, for the
# HTTPS server below or (location_only) for your own server block.
omero_web-nginx-omero-nginx_config:
  omero.nginx_config:
    - name: {{ location_file }}
    - location_only: True
    - user: root
    - group: {{ omero_web.group }}
    - mode: "0640"
    - runas: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - sls: {{ tplroot }}.config
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-   else %}

# `omero web config nginx`: the whole server block.
omero_web-nginx-omero-nginx_config:
  omero.nginx_config:
    - name: {{ conf_file }}
    - http: {{ nginx.port }}
    - servername: {{ nginx.server_name | json }}
    - max_body_size: {{ nginx.max_body_size | json }}
    - user: root
    - group: root
    - mode: "0644"
    - runas: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - pkg: omero_web-nginx-pkg-installed
      - sls: {{ tplroot }}.config
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-   endif %}

{%-   if tls %}

omero_web-nginx-file-managed:
  file.managed:
    - name: {{ conf_file }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "nginx-tls.conf.jinja") }}
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
        cert: {{ nginx.tls_dir }}/{{ nginx.conf_file | replace(".conf", "") }}.crt
        key: {{ nginx.tls_dir }}/{{ nginx.conf_file | replace(".conf", "") }}.key
        location_file: {{ location_file }}
        prefix: {{ omero_web.derived.prefix | json }}
    - require:
      - pkg: omero_web-nginx-pkg-installed
      - omero: omero_web-nginx-omero-nginx_config
    - onchanges_in:
      - cmd: omero_web-nginx-cmd-run
{%-   endif %}

# `nginx -t` after any change of the configuration, before nginx reloads it:
# a bad file fails here, and nginx keeps serving the previous configuration.
omero_web-nginx-cmd-run:
  cmd.run:
    - name: nginx -t
    - require:
      - pkg: omero_web-nginx-pkg-installed
    # also on a first install, so that a dry run on a fresh host predicts it
    # (the default site that file.absent removes only exists after it)
    - onchanges:
      - pkg: omero_web-nginx-pkg-installed

omero_web-nginx-service-running:
  service.running:
    - name: {{ nginx.service }}
    - enable: True
    - reload: True
    - watch:
      - cmd: omero_web-nginx-cmd-run
{%- else %}
{}
{%- endif %}
