#!/bin/bash
# The image's entrypoint, as the official Airflow image's: `bash ...` and `python ...` run as given,
# `airflow X` and a bare Airflow command `X` (api-server, scheduler, celery worker, ...) run `airflow X`.
set -euo pipefail
case "${1:-}" in
  bash | sh | python | python3) exec "$@" ;;
  airflow) shift ;;
esac
exec airflow "$@"
