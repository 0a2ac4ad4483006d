# -*- coding: utf-8 -*-
# vim: ft=sls
# The load balancer of a multi-node site (issue 14), on its own minion:
# nginx with an upstream of the OMERO.web nodes, from loadbalancer:members
# and the Salt mine (each web node publishes omero_web.lb_member), passive
# health checks (max_fails/fail_timeout) and drained members (`down`,
# applied by a graceful reload). docs/master-setup.md, "A multi-node site".
# One step per file: nginx's package and default server (the nginx sls's),
# config, service.
---
{%- set tplroot = tpldir.split("/")[0] %}

include:
  - {{ tplroot }}.nginx.package
  - {{ tplroot }}.nginx.default_server
  - {{ tplroot }}.loadbalancer.config
  - {{ tplroot }}.loadbalancer.service
