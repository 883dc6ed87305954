# etlml on the official Apache Airflow image: the same pins as `make install`, DAGs baked in.
#   docker compose build        (docker-compose.yml builds this for every Airflow service)
# The tag's Airflow version is the apache-airflow pin in requirements.lock and its Python is the
# one pyproject.toml requires; tests/deploy/test_compose.py checks both.
FROM apache/airflow:3.3.2-python3.11

# The build folder of this package belongs to the image's user: setuptools writes build/ and *.egg-info there.
USER root
RUN mkdir -p /opt/etlml && chown airflow:0 /opt/etlml

# Installs run as the image's own user, into its virtualenv (VIRTUAL_ENV=/home/airflow/.local),
# never as root: https://airflow.apache.org/docs/docker-stack/build.html
USER airflow

# 1. Exactly what requirements.lock pins, like the Makefile's `install` target: uv at the version the
#    lock pins, then `uv pip sync --compile-bytecode` (Airflow imports 2-3x faster from bytecode).
#    The lock also pins the dev tools (ruff, mypy, pytest): the image is the test environment.
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
