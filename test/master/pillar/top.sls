# Master pillar top file of the two-site test (test/master): every minion
# gets the shared settings, then its own site's.
# `kitchen` is written by the test (conftest.py): the IcePy wheel's path on
# the kitchen hosts, the one environment-specific value.
base:
  'omero-web-site-*':
    - omero_web_common
    - kitchen
  'omero-web-site-a':
    - site_a
  'omero-web-site-b':
    - site_b
