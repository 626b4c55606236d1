# One image for every First Price Twitter service; compose.yml picks the service with
# `command: python3 -m <service>`. Standard library only: no pip, no build step.
#
# BASE_IMAGE must provide `python3` (3.11 or newer). The default is the official slim image;
# scripts/compose_test.sh passes a local Debian bookworm image built with debootstrap,
# because CI reaches no container registry.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# HOST=0.0.0.0: inside a container the services must listen beyond loopback.
# DATA_DIR=/data: the state directory (store: twitter.sqlite3; api: likes.sqlite3 and
# secret.key; web: web-secret.key), mounted as a named volume by compose.yml.
ENV HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data

# An unprivileged user that owns only /data (a new named volume copies this ownership).
# Written to /etc/passwd directly so that it works on any base image, with or without
# useradd.
RUN echo 'fpt:x:10001:10001:First Price Twitter:/app:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'fpt:x:10001:' >> /etc/group \
 && mkdir -p /app /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data

WORKDIR /app
# The code stays owned by root: the service user can read it but not change it.
COPY httpkit/ /app/httpkit/
COPY store/ /app/store/
COPY cache/ /app/cache/
COPY dbcache/ /app/dbcache/
COPY api/ /app/api/
COPY lb/ /app/lb/
COPY web/ /app/web/
COPY mastodon/ /app/mastodon/
COPY stack/ /app/stack/
COPY load_test.py /app/load_test.py
RUN python3 -m compileall -q /app

USER 10001:10001

# Every service answers GET /healthz on $PORT; compose.yml sets PORT for each one.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2).status == 200 else 1)"]

# The services handle SIGTERM themselves (httpkit.server.serve), so Python as PID 1 stops
# at once; the api flushes its pending likes first. The default command runs the whole stack
# in one container, like `make run` (docker run -p 8080:8080 -p 8000:8000 IMAGE);
# compose.yml runs one service per container instead.
CMD ["python3", "-m", "stack"]
