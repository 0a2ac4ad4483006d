# Site B: OMERO.web under /omero, Django's file sessions, gevent workers,
# no CORS, its own gunicorn and nginx ports.
omero_web:
  server_list:
    - [omero-b.example.org, 4064, site-b]
    - [localhost, 14064, local]
  prefix: /omero
  sessions:
    backend: file
  gunicorn:
    worker_class: gevent
    worker_connections: 500
    port: 4082
  cors:
    enabled: false
  nginx:
    port: 8082
    server_name: omero-b.example.org
