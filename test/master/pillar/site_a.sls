# Site A: OMERO.web at the root URL, sessions in a Redis it runs itself,
# sync workers with threads, CORS for one origin.
omero_web:
  server_list:
    - [omero-a.example.org, 4064, site-a]
  prefix: ""
  sessions:
    backend: redis
    # Not 6379: every kitchen host shares this machine's network namespace,
    # and another test host (pillar.example) may run a Redis on 6379. The
    # formula makes this host's redis-server listen on the URL's port (port
    # 6380 in /etc/redis/redis.conf).
    redis_url: redis://127.0.0.1:6380/0
  gunicorn:
    worker_class: sync
    threads: 4
    port: 4081
  cors:
    enabled: true
    allow_all: false
    whitelist:
      - https://viewer-a.example.org
  nginx:
    port: 8081
    server_name: omero-a.example.org
