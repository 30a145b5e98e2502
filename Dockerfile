# Passline's one image: web (daphne), the one-shot migrate job and every worker run from it,
# each with its own command (see docker-compose.yml).

# --- build: compile mysqlclient against the MariaDB headers into a self-contained venv -------
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libmariadb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only the pinned requirements first, so a code change does not rebuild the dependencies.
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

# --- runtime: the venv, the shared library mysqlclient links to, the code --------------------
FROM python:3.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=passline.settings \
    PASSLINE_ENV=production \
    PORT=8000
# PASSLINE_ENV=production by default: a container started without a real SECRET_KEY refuses
# to run instead of serving with the development key. Compose sets development explicitly.

# fonts-dejavu-core: the receipt PDF's font, which prints dish names in any script.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system passline \
 && useradd --system --gid passline --home-dir /app --no-create-home --shell /usr/sbin/nologin passline

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays root-owned (the app cannot rewrite itself); only var/ (collected static
# files, the processes' metric files) is the app user's.
COPY . .
RUN mkdir -p /app/var/static /app/var/prometheus && chown -R passline:passline /app/var

USER passline
EXPOSE 8000
# No HEALTHCHECK here: migrate and the workers share this image and serve no HTTP.
# Compose checks web's /healthz. Behind a TLS-terminating proxy add --proxy-headers.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "passline.asgi:application"]
