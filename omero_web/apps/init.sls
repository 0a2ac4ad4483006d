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
# Including this sls applies exactly those two.
---
{%- set tplroot = tpldir.split("/")[0] %}

include:
  - {{ tplroot }}.venv
  - {{ tplroot }}.config
