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

import glob
import os
import shutil
import tempfile


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

# JSON logs (LOG_FORMAT, json by default with the production settings; docs/operations.md,
# "Logs"): the app writes one line per request itself, with its request id and user and
# without the query string, so gunicorn's access log is off, and gunicorn's own lines (start,
# worker exits, timeouts) are JSON objects too.
_settings = os.environ.get("DJANGO_SETTINGS_MODULE", "")
_log_format = os.environ.get("LOG_FORMAT") or ("json" if _settings.endswith("production") else "")
if _log_format == "json":
    accesslog = None
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": False},
        },
    }


# Prometheus multiprocess mode (docs/operations.md, "Metrics"): each worker writes its
# counters to memory-mapped files in PROMETHEUS_MULTIPROC_DIR and /metrics, on whichever
# worker a scrape lands, adds them all up. The variable must be set before a worker imports
# prometheus_client, so it is set here, in the arbiter, which workers inherit it from. Unset,
# a fresh folder in memory is used and removed at exit.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
_metrics_dir_ours = not _metrics_dir
if _metrics_dir_ours:
    _metrics_dir = tempfile.mkdtemp(
        prefix="releasegate-metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    # A previous run's files would add its counts to this one's (and its dead workers' live
    # gauges): start from an empty folder.
    os.makedirs(_metrics_dir, exist_ok=True)
    for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    # A worker that exited (recycled by max_requests, killed, timed out): its counters stay
    # in the sum, its per-process gauges go.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    if _metrics_dir_ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
