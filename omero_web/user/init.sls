# -*- coding: utf-8 -*-
# vim: ft=sls
# Walkthrough: "create a local system user omero-web and create directory"
#   useradd -m omero-web
#   mkdir -p /opt/omero/web/omero-web/etc/grid
#   chown -R omero-web /opt/omero/web/omero-web
# OMERODIR is mode 0750: config.xml (with omero.web.secret_key) and the logs
# are not world-readable. nginx reads $OMERODIR/var/static through the group
# (the nginx sls adds its user to it); etc/grid is 0700 for the same reason.
---
{%- set tplroot = tpldir.split("/")[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata as omero_web without context %}

omero_web-user-group-present:
  group.present:
    - name: {{ omero_web.group }}

omero_web-user-user-present:
  user.present:
    - name: {{ omero_web.user }}
    - gid: {{ omero_web.group }}
    # useradd -m: the omero CLI keeps its own files in ~/omero.
    - createhome: True
    # No login: OMERO.web runs under systemd, Salt's omero calls use su -s.
    - shell: {{ omero_web.user_shell }}
    # The mark by which validation and clean.sls know the account is the
    # formula's own (an existing system account is never taken over).
    - fullname: {{ omero_web.derived.account_mark | json }}
    - require:
      - group: omero_web-user-group-present

# The parents (e.g. /opt/omero/web, which also holds the venv) stay root's,
# as with the walkthrough's mkdir -p: a makedirs on OMERODIR itself would give
# them OMERODIR's owner and mode. Existing parents are left as they are.
omero_web-user-file-directory-parent:
  file.directory:
    - name: {{ salt["file.dirname"](omero_web.omerodir) }}
    - makedirs: True

omero_web-user-file-directory-omerodir:
  file.directory:
    - name: {{ omero_web.omerodir }}
    - user: {{ omero_web.user }}
    - group: {{ omero_web.group }}
    - mode: "0750"
    - require:
      - user: omero_web-user-user-present
      - file: omero_web-user-file-directory-parent

omero_web-user-file-directory-tree:
  file.directory:
    - names:
      - {{ omero_web.omerodir }}/etc:
        - mode: "0750"
      - {{ omero_web.omerodir }}/etc/grid:
        - mode: "0700"
      - {{ omero_web.omerodir }}/var:
        - mode: "0750"
{%- if not omero_web.derived.logs.link %}
      # a link left by a former logdir becomes a directory again
      - {{ omero_web.omerodir }}/var/log:
        - mode: "0750"
        - allow_symlink: False
        - force: True
{%- endif %}
      # Django's file sessions and uploads (TMPDIR of the units)
      - {{ omero_web.derived.tmpdir }}:
        - mode: "0700"
    - user: {{ omero_web.user }}
    - group: {{ omero_web.group }}
    - require:
      - file: omero_web-user-file-directory-omerodir

{%- if omero_web.derived.logs.link %}

# logdir: OMEROweb.log elsewhere. omero-web writes it to $OMERODIR/var/log
# whatever omero.web.logdir says, so that path becomes a link to logdir (a
# directory there is kept as var/log.before-logdir).
# Its parents stay root's (as OMERODIR's).
omero_web-user-file-directory-logdir-parent:
  file.directory:
    - name: {{ salt["file.dirname"](omero_web.derived.logs.dir) }}
    - makedirs: True

omero_web-user-file-directory-logdir:
  file.directory:
    - name: {{ omero_web.derived.logs.dir }}
    - user: {{ omero_web.user }}
    - group: {{ omero_web.group }}
    - mode: "0750"
    - require:
      - user: omero_web-user-user-present
      - file: omero_web-user-file-directory-logdir-parent

omero_web-user-file-symlink-logdir:
  file.symlink:
    - name: {{ omero_web.derived.logs.link }}
    - target: {{ omero_web.derived.logs.dir }}
    - user: {{ omero_web.user }}
    - group: {{ omero_web.group }}
    - force: True
    - backupname: log.before-logdir
    - require:
      - file: omero_web-user-file-directory-tree
      - file: omero_web-user-file-directory-logdir
{%- endif %}

# The mark by which clean.sls knows OMERODIR is the formula's.
omero_web-user-file-managed-mark:
  file.managed:
    - name: {{ omero_web.omerodir }}/.omero-web-formula
    - contents: "Managed by Salt (omero-web-formula): clean.sls may remove this directory."
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: omero_web-user-file-directory-omerodir
