"""gunicorn settings for the web service, as docker-compose.yml runs it:
`gunicorn -c deploy/gunicorn.conf.py config.wsgi:application`.

gunicorn sits behind nginx (deploy/nginx/releasegate.conf, docs/operations.md), which reads
whole requests before passing them on and cuts off slow clients, so every worker thread only
ever serves complete requests. gthread workers: a request blocked on the database or Redis
holds one thread, not a whole process.

Every knob can be set from the environment (.env.example lists them). Each thread keeps its
own database connection open (DB_CONN_MAX_AGE), so GUNICORN_WORKERS x GUNICORN_THREADS is
also the number of PostgreSQL connections one web container holds.
"""

import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Inside the compose network only: docker-compose.yml `expose`s this port to the proxy and
# publishes nothing. The test suite binds 127.0.0.1:<port> through GUNICORN_BIND.
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")

worker_class = "gthread"
workers = _env_int("GUNICORN_WORKERS", 4)
threads = _env_int("GUNICORN_THREADS", 4)

# A worker that has not reported to the arbiter for this long is killed and replaced. nginx
# gives up on a request after proxy_read_timeout (60 s), so nothing useful runs longer.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# On restart or scale-down, requests in flight get this long to finish.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# nginx opens one upstream connection per request, so this only matters for direct callers
# such as the container's own health check.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so slow leaks cannot grow without bound; the jitter keeps
# them from restarting together.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# The heartbeat file lives in memory: a container's disk-backed /tmp can stall it.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No runtime control socket: nobody manages the process through it, and its default path is
# under $HOME, which the container's `nobody` user cannot write.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# The client's address as nginx saw it, not the proxy's own.
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(L)ss'
