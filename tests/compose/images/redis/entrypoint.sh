#!/bin/bash
# As the official image: a redis-server started without a config file accepts other containers
# (protected mode off); the compose file's own arguments follow.
set -euo pipefail
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
