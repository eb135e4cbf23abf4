# user-service: build from the repository root (it needs services/ticketing_common and requirements.txt):
#   docker build -f services/docker/user-service.Dockerfile -t ticketplatform/user-service .
# The base is a build argument: without a registry, stack/images.sh passes a base built locally from
# Debian packages (python/pip on PATH as in this default).
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Only this service's pins, taken from requirements.txt (the one place where they are set).
COPY requirements.txt /tmp/requirements.txt
RUN grep -iE '^(flask|gunicorn|boto3|prometheus-client|requests)==' /tmp/requirements.txt > /tmp/service-requirements.txt \
 && pip install --no-compile -r /tmp/service-requirements.txt \
 && rm -f /tmp/requirements.txt /tmp/service-requirements.txt

COPY services/ticketing_common /app/ticketing_common
COPY services/user_service /app/user_service

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /tmp/prometheus && chown app /tmp/prometheus
USER 10001

ENV PYTHONPATH=/app PORT=8080 WEB_CONCURRENCY=2 GUNICORN_THREADS=8 SERVICE_NAME=user-service \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT','8080'), timeout=2)"
CMD ["gunicorn", "-c", "python:ticketing_common.gunicorn_conf", "user_service.wsgi:app"]
