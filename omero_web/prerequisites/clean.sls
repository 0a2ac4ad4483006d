# -*- coding: utf-8 -*-
# vim: ft=sls
# The prerequisites (python3, python3-venv, unzip, epel-release) are shared
# with the rest of the system: clean.sls never removes them.
---
{}
