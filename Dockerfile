# etlml's image: Debian 12 (bookworm) and its Python 3.11, exactly what requirements.lock pins
# (Airflow included), the package and the DAGs. Nothing but a Debian base is taken from a registry.
#   docker compose build        (docker-compose.yml builds this for every Airflow service)
# The layout is the official Apache Airflow image's, which the compose file relies on: user airflow
# (uid 50000, group 0), AIRFLOW_HOME=/opt/airflow with dags/ and logs/, and an entrypoint that runs its
# arguments as an `airflow` command (`scheduler`, `celery worker`, ...) or as `bash`/`python`.
# tests/deploy/test_compose.py checks these lines; tests/compose builds and runs the image.
FROM debian:bookworm-slim

# Python 3.11 (the version pyproject.toml requires, bookworm's own), curl for the health checks,
# dumb-init as PID 1 (it forwards signals; DUMB_INIT_SETSID=0 lets Celery's warm shutdown work).
USER root
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3 python3-venv ca-certificates curl dumb-init \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
    && mkdir -p /opt/etlml /opt/airflow \
    && chown airflow:0 /opt/etlml /opt/airflow \
    && chmod g+rwx /opt/airflow

COPY docker/entrypoint.sh /entrypoint
RUN chmod 0755 /entrypoint

# Installs run as the image's own user, into a virtualenv (official guidance:
# https://airflow.apache.org/docs/docker-stack/build.html). uv takes the system's trust store, so a
# TLS-inspecting proxy's CA installed in the base image is honoured.
USER airflow
ENV AIRFLOW_HOME=/opt/airflow \
    VIRTUAL_ENV=/opt/etlml/venv \
    PATH=/opt/etlml/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    UV_SYSTEM_CERTS=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/etlml/venv

# 1. Exactly what requirements.lock pins, like the Makefile's `install` target: uv at the version the
#    lock pins, then `uv pip sync --compile-bytecode` (Airflow imports 2-3x faster from bytecode).
#    The lock also pins the dev tools (ruff, mypy, pytest, moto): the image is the test environment.
COPY --chown=airflow:0 requirements.lock /opt/etlml/requirements.lock
RUN cd /opt/etlml \
    && python -m pip install --no-cache-dir "uv==$(sed -n 's/^uv==//p' requirements.lock)" \
    && python -m uv pip sync --no-cache --python "$(command -v python)" --compile-bytecode requirements.lock

# 2. This package, without dependencies (all pinned above) and not editable: the image has no checkout.
COPY --chown=airflow:0 pyproject.toml README.md /opt/etlml/
COPY --chown=airflow:0 src/ /opt/etlml/src/
RUN python -m uv pip install --no-cache --python "$(command -v python)" --compile-bytecode --no-deps /opt/etlml

# 3. The DAGs, and the mount points of the compose file's named volumes (a new named volume takes
#    over the ownership of the image's directory, so these start out writable by airflow).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
RUN mkdir -p /opt/airflow/storage /opt/airflow/landing /opt/airflow/auth /opt/airflow/logs

WORKDIR /opt/airflow
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD ["--help"]
