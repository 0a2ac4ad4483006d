# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "Test installation e.g. curl -sL localhost:4080", done after
# every apply: OMERO.web's login page must answer through nginx (or gunicorn
# when the formula does not serve it with nginx) within
# omero_web:service:healthcheck:timeout seconds, or the apply fails with the
# URL and the last lines of OMEROweb.log.
#
# Not http.wait_for_successful_query: under test=True it never queries, so it
# polls until its timeout and reports result None (a change) even on a
# healthy host. Instead a `stateful` cmd.run of a small script: the check
# changes nothing, so it reports no change when OMERO.web answers (also
# after waiting for it following a restart); under test=True its `test_name`
# probes once and predicts a change only when OMERO.web does not answer.
# (No `unless`: the first unless/onlyif/creates of
# a run costs: it makes Salt load every state module, about 1.5 s.)
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}
{%- from tplroot ~ "/libtofs.jinja" import files_switch with context %}
{%- set check = omero_web.service.healthcheck %}

include:
  - {{ tplroot }}.service
{%- if check.enabled %}
{%-   set target = omero_web.derived.healthcheck %}
{%-   set command = [omero_web.python.executable, check.script, target.url] %}
{%-   if target.host %}
{%-     do command.extend(["--host", target.host]) %}
{%-   endif %}

omero_web-healthcheck-file-managed:
  file.managed:
    - name: {{ check.script }}
    - source: {{ files_switch(omero_web.tofs, tplroot, "omero-web-healthcheck.py.jinja",
                              "omero_web-healthcheck-file-managed") }}
    - template: jinja
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: True
    - context:
        python: {{ omero_web.python.executable }}

omero_web-healthcheck-cmd-run:
  cmd.run:
    - name: >-
        {{ command | map("quote") | join(" ") }}
        --wait {{ check.timeout }}
        --log {{ omero_web.derived.logs.file | quote }}
    - stateful:
      - test_name: >-
          if [ -e {{ check.script | quote }} ]; then
          {{ command | map("quote") | join(" ") }} --test; else
          echo 'changed=no comment="the health check will run after the apply"'; fi
    - require:
      - file: omero_web-healthcheck-file-managed
      - sls: {{ tplroot }}.service

# ... and it can store a session (with its configured engine: file or Redis).
omero_web-healthcheck-omero-sessions_work:
  omero.sessions_work:
    - name: {{ omero_web.derived.tmpdir }}
    - user: {{ omero_web.user }}
    - omerodir: {{ omero_web.omerodir }}
    - venv: {{ omero_web.venv }}
    - require:
      - cmd: omero_web-healthcheck-cmd-run
{%- endif %}

# A rebuild for a new Python (venv sls) left the old venv beside the new
# one: removed only now, once OMERO.web answered from the new one.
omero_web-healthcheck-omero_venv-old_removed:
  omero_venv.old_removed:
    - name: {{ omero_web.venv }}
    - python: {{ omero_web.python.executable }}
    - require:
{%- if check.enabled %}
      - omero: omero_web-healthcheck-omero-sessions_work
{%- else %}
      - sls: {{ tplroot }}.service
{%- endif %}
