# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Installing OMERO.web apps" - pip install into the venv as
# root, then configure as the omero-web user.
#
# Apps have no states of their own, on purpose:
# * their pip packages (omero_web:apps[].package) are in the venv sls's single
#   pip.installed state (omero_web.derive -> pip_packages): one `pip list` per
#   apply instead of one per app;
# * their omero.web.apps entry and their config / config_append are in the
#   config sls's single omero.config_managed state (derive -> properties,
#   appends).
# Including this sls applies exactly those two, and keeps a record of what
# they set for each app (root's, on the minion): when an app leaves the
# pillar, the next apply removes its omero.web.apps entry and the settings
# the formula set for it (derive -> unsets, removals) and, with prune, its
# package (derive -> pip_removed, in the venv sls).
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set record = omero_web.derived.apps_record %}

include:
  - {{ tplroot }}.venv
  - {{ tplroot }}.config

omero_web-apps-file-serialize-record:
  file.serialize:
    - name: {{ record.file }}
    - dataset: {{ record.data | json }}
    - serializer: json
    - user: root
    - group: root
    - mode: "0600"
    - makedirs: True
    - require:
      - sls: {{ tplroot }}.config
