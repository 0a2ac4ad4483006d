# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Creating a virtual environment" (as root)
#   python3 -mvenv /opt/omero/web/venv3
#   /opt/omero/web/venv3/bin/pip install --upgrade <IcePy 3.6.5 wheel>
#   /opt/omero/web/venv3/bin/pip install "omero-web>=5.6.1"
# plus, in the same single pip state, what the pillar needs: whitenoise,
# django-redis, django-cors-headers, gevent and the apps' packages
# (omero_web.derive -> pip_packages). One pip state only: each one lists the
# venv's packages on every apply (about a second).
# The walkthrough's `pip install futures` (sync workers with threads) is not
# done: futures backports concurrent.futures to Python 2, it is part of
# Python 3's standard library.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- set ice = omero_web.derived.ice %}

include:
  - {{ tplroot }}.prerequisites
{%- if ice.source %}

# pip cannot read salt://: the wheel is copied next to the minion first.
omero_web-venv-file-managed-icepy:
  file.managed:
    - name: {{ ice.wheel }}
    - source: {{ ice.source }}
    - makedirs: True
    - mode: "0644"
    - show_changes: False
    - require_in:
      - omero_venv: omero_web-venv-omero_venv-present
{%- endif %}

# The venv made by the platform's python3 (not Salt's own interpreter), its
# pip upgraded (CentOS 7's pip 9 cannot install the manylinux2014 wheels of
# omero-web's dependencies), and IcePy from its wheel: installed only while
# the venv's zeroc_ice-<version>.dist-info is missing.
# A venv another Python built (an OS upgrade, python:executable changed) is
# rebuilt beside it (<venv>.pyX.Y, with IcePy and the packages below) and
# the venv path becomes a link to it; the service restarts once and the
# health check sls removes the old venv once OMERO.web answers.
omero_web-venv-omero_venv-present:
  omero_venv.present:
    - name: {{ omero_web.venv }}
    - python: {{ omero_web.python.executable }}
    - wheel: {{ ice.wheel }}
    - ice_version: {{ omero_web.ice.version | json }}
    - upgrade_pip: {{ omero_web.pip.upgrade_pip | json }}
    # a venv another interpreter built is rebuilt with these before the switch
    - pkgs: {{ omero_web.derived.pip_packages | json }}
    - require:
      - sls: {{ tplroot }}.prerequisites

# The mark by which clean.sls knows the venv is the formula's.
omero_web-venv-file-managed-mark:
  file.managed:
    - name: {{ omero_web.venv }}/.omero-web-formula
    - contents: "Managed by Salt (omero-web-formula): clean.sls may remove this directory."
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - omero_venv: omero_web-venv-omero_venv-present

omero_web-venv-omero_venv-packages_installed:
  omero_venv.packages_installed:
    - venv: {{ omero_web.venv }}
    - pkgs: {{ omero_web.derived.pip_packages | json }}
    - require:
      - omero_venv: omero_web-venv-omero_venv-present
{%- if omero_web.derived.pip_removed %}

# prune: the packages of apps the pillar no longer lists (derive -> pip_removed).
omero_web-venv-pip-removed-apps:
  pip.removed:
    - names: {{ omero_web.derived.pip_removed | json }}
    - bin_env: {{ omero_web.venv }}
    - require:
      - omero_venv: omero_web-venv-omero_venv-packages_installed
{%- endif %}
