# Settings both sites share. Pillar files merge in top.sls order (the site's
# file last); lists are replaced, not merged.
omero_web:
  version: ">=5.6.1"
  sessions:
    cookie_age: 86400
    expire_at_browser_close: true
    clear:
      enabled: true
      on_calendar: daily
  gunicorn:
    # A fixed count: both kitchen hosts share one 2-core machine.
    workers: 2
    max_requests: 0
    host: 127.0.0.1
    extra_args: "--log-level=INFO"
  whitenoise:
    enabled: true
  nginx:
    enabled: true
    max_body_size: 0
    location_only: false
    disable_default_server: true
  service:
    name: omero-web
    enabled: true
    restart: on-failure
    healthcheck:
      enabled: true
      timeout: 180
  config:
    omero.web.secret_key: two-site-test-secret-key-not-for-production
