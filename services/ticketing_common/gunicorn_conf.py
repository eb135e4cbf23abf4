"""Gunicorn settings shared by the four services: ``gunicorn -c python:ticketing_common.gunicorn_conf``.

Everything comes from the environment: PORT (8080) or GUNICORN_BIND, WEB_CONCURRENCY (workers, 2),
GUNICORN_THREADS (threads per gthread worker, 8), GUNICORN_TIMEOUT (30 s). With
PROMETHEUS_MULTIPROC_DIR set, the directory is emptied at start and dead workers' samples removed.

Under a read-only root filesystem (the operator's pods) only the emptyDir at /tmp is writable:
GUNICORN_WORKER_TMP_DIR puts the workers' heartbeat files there, and the control socket (gunicorn
25+, which would otherwise try $HOME/.gunicorn) is off unless GUNICORN_CONTROL_SOCKET names a path.
"""
import os
import shutil

bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None  # None: gunicorn's default (tempfile)
# The control socket is off by default: nothing here uses gunicornc, and several gunicorns on one
# host (the local Procfile) would share its default path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app writes one structured line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "ticketing_common.jsonlog.JsonFormatter",
                            "service": os.environ.get("SERVICE_NAME", "gunicorn")}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
                 "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
                 "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": []},
    "loggers": {"gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
                "gunicorn.access": {"handlers": ["stdout"], "level": "WARNING", "propagate": False}},
}


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
