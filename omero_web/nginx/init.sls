# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Configuring NGINX" (as root)
#   yum -y install nginx
#   omero web config nginx --http "${WEBPORT}" --servername "${WEBSERVER_NAME}"
#       > /etc/nginx/conf.d/omeroweb.conf          (as the omero-web user)
#   sed -i.bak -re 's/( default_server.*)/; #\1/' /etc/nginx/nginx.conf
#   mv /etc/nginx/conf.d/default.conf /etc/nginx/conf.d/default.disabled
#   systemctl enable nginx; systemctl start nginx
# One step per file: package, default_server, tls, config, service.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

{%- if omero_web.nginx.enabled %}

include:
  - {{ tplroot }}.nginx.package
  - {{ tplroot }}.nginx.default_server
  - {{ tplroot }}.nginx.tls
  - {{ tplroot }}.nginx.config
  - {{ tplroot }}.nginx.service
{%- else %}
{}
{%- endif %}
