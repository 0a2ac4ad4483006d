# -*- coding: utf-8 -*-
# vim: ft=sls
# Apps live in the venv and in config.xml: venv/clean.sls and
# config/clean.sls remove them.
---
{}
