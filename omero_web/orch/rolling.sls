# -*- coding: utf-8 -*-
# vim: ft=sls
# A rolling change of a multi-node site (issue 14), on the master:
#
#   salt-run state.orchestrate omero_web.orch.rolling \
#     pillar='{"omero_web_rolling": {"loadbalancer": "lb1", "nodes": ["web1", "web2"]}}'
#
# For each web node in turn: drain it at the load balancer (the
# loadbalancer sls with loadbalancer:drain [node]: nginx `down`, a graceful
# reload, requests in flight end), apply omero_web to it (its health check
# waits until it answers through its nginx), then apply the loadbalancer
# sls as the pillar has it (the node back), and only then the next node.
# A failed step stops the run with that node still drained: the site keeps
# serving from the others. Node names are minion ids, which are the
# members' names with the mine (with loadbalancer:members, name the members
# after their minions). omero_web_rolling:pillar (optional) is passed to
# each node's apply, e.g. {"omero_web": {"gunicorn": {"workers": 6}}}.
# docs/master-setup.md, "Rolling changes".
---
{%- set rolling = salt["pillar.get"]("omero_web_rolling", {}) %}
{%- set balancer = rolling.get("loadbalancer") if rolling is mapping else none %}
{%- set nodes = rolling.get("nodes") if rolling is mapping else none %}
{%- set extra = (rolling.get("pillar") if rolling is mapping else none) or {} %}
{%- set saltenv = (rolling.get("saltenv") if rolling is mapping else none) or "base" %}
{%- if not balancer or balancer is not string or not nodes or nodes is string
      or nodes | reject("string") | list %}

omero_web-orch-rolling-test-fail_without_changes:
  test.fail_without_changes:
    - name: >-
        omero_web.orch.rolling needs the pillar omero_web_rolling:loadbalancer
        (the load balancer's minion id) and omero_web_rolling:nodes (a list of
        the web nodes' minion ids)
{%- else %}
{%-   for node in nodes %}

omero_web-orch-rolling-salt-state-drain-{{ loop.index }}:
  salt.state:
    - tgt: {{ balancer | json }}
    - sls: omero_web.loadbalancer
    - saltenv: {{ saltenv | json }}
    - pillar:
        omero_web:
          loadbalancer:
            drain:
              - {{ node | json }}
{%-     if not loop.first %}
    - require:
      - salt: omero_web-orch-rolling-salt-state-restore-{{ loop.index0 }}
{%-     endif %}

omero_web-orch-rolling-salt-state-apply-{{ loop.index }}:
  salt.state:
    - tgt: {{ node | json }}
    - sls: omero_web
    - saltenv: {{ saltenv | json }}
{%-     if extra %}
    - pillar: {{ extra | json }}
{%-     endif %}
    - require:
      - salt: omero_web-orch-rolling-salt-state-drain-{{ loop.index }}

omero_web-orch-rolling-salt-state-restore-{{ loop.index }}:
  salt.state:
    - tgt: {{ balancer | json }}
    - sls: omero_web.loadbalancer
    - saltenv: {{ saltenv | json }}
    - require:
      - salt: omero_web-orch-rolling-salt-state-apply-{{ loop.index }}
{%-   endfor %}
{%- endif %}
