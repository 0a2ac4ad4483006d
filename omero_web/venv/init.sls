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
{%- from tplroot ~ "/libcmd.jinja" import if_missing with context %}
{%- set venv = omero_web.venv %}
{%- set python = omero_web.python %}
{%- set ice = omero_web.ice %}
{%- set site_packages = venv ~ "/lib/python" ~ python.version ~ "/site-packages" %}

include:
  - {{ tplroot }}.prerequisites

{%- set create_venv = (python.executable | quote) ~ " -m venv " ~ (venv | quote) %}
{%- if omero_web.pip.upgrade_pip %}
{%-   set create_venv = create_venv ~ " && " ~ ((venv ~ "/bin/python") | quote)
                        ~ " -m pip install --quiet --upgrade pip" %}
{%- endif %}

# cmd.run, not virtualenv.managed: before Salt 3006.28 virtualenv.managed
# with `venv_bin: venv` runs `-m venv` with Salt's own (onedir) interpreter,
# not the platform's python3. Run only while bin/pip is missing (libcmd.jinja:
# like `creates`, minus its cost): bin/pip is the last file `-m venv` writes
# (ensurepip), so an interrupted creation is redone. The pip upgrade matters
# on CentOS 7 (pip 9 cannot install the manylinux2014 wheels of omero-web's
# dependencies).
omero_web-venv-cmd-run:
  cmd.run:
    {{ if_missing(venv ~ "/bin/pip", create_venv, "virtualenv " ~ venv) }}
    - require:
      - sls: {{ tplroot }}.prerequisites

{#- The IcePy wheel: https:// URL or local path as is; salt:// is copied to
    the cache directory first (pip cannot read salt://). #}
{%- set wheel = ice.wheel %}
{%- if wheel.startswith("salt://") %}
{%-   set wheel = ice.cache_dir ~ "/" ~ ice.wheel.split("/")[-1] %}

omero_web-venv-file-managed-icepy:
  file.managed:
    - name: {{ wheel }}
    - source: {{ ice.wheel }}
    - makedirs: True
    - mode: "0644"
    - show_changes: False
{%- endif %}

# cmd.run, not pip.installed: pip.installed cannot tell that a wheel given by
# URL or path is already installed, so it would reinstall it (and report a
# change, even under test=True) on every apply. The wheel's dist-info
# directory is the cheap, exact check (libcmd.jinja).
omero_web-venv-cmd-run-icepy:
  cmd.run:
    {{ if_missing(site_packages ~ "/zeroc_ice-" ~ ice.version ~ ".dist-info",
                  (venv ~ "/bin/python") | quote ~ " -m pip install --upgrade " ~ (wheel | quote),
                  "IcePy " ~ ice.version) }}
    - require:
      - cmd: omero_web-venv-cmd-run
{%- if ice.wheel.startswith("salt://") %}
      - file: omero_web-venv-file-managed-icepy
{%- endif %}

{%- if opts.get("test") and not salt["file.file_exists"](venv ~ "/bin/pip") %}
{#- test=True before the venv exists: pip.installed would fail (no pip to
    ask), failing everything after it; predict the install instead, under
    the pip state's own ID so that the prediction names the state the real
    apply changes. #}

omero_web-venv-pip-installed:
  test.succeed_with_changes:
    - name: >-
        pip install into the new virtualenv {{ venv }}:
        {{ omero_web.derived.pip_packages | join(" ") }}
    - require:
      - cmd: omero_web-venv-cmd-run-icepy
{%- else %}

omero_web-venv-pip-installed:
  pip.installed:
    - pkgs: {{ omero_web.derived.pip_packages | json }}
    - bin_env: {{ venv }}
    - require:
      - cmd: omero_web-venv-cmd-run-icepy
{%- endif %}
