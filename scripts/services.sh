#!/usr/bin/env bash
# Start the local PostgreSQL and Redis when they are installed but not answering; wait until they are up.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

wait_for() {  # name, check function
  for _ in $(seq 1 60); do "$2" && return 0; sleep 1; done
  echo "services: $1 did not come up within 60 s" >&2
  return 1
}

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "services: PostgreSQL does not answer on 127.0.0.1:5432 and is not installed here;" \
         "install PostgreSQL 15+ or point ETLML_TEST_ADMIN_DSN at a server" >&2
    exit 1
  fi
  echo "services: starting PostgreSQL"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for PostgreSQL pg_up
fi

if [ "${1:-}" = "--with-redis" ] && ! redis_up; then
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  wait_for Redis redis_up
fi
