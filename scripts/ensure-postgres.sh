#!/usr/bin/env bash
# Make sure the local PostgreSQL server runs and the test database exists.
# The machine starts PostgreSQL before a session; this restarts it if it stopped
# and creates the `hub_test` database the integration tests use.
set -euo pipefail
host=${PGHOST:-127.0.0.1}
user=${PGUSER:-postgres}
db=${HUB_TEST_DB:-hub_test}

if ! pg_isready -q -h "$host" -p 5432; then
  echo "PostgreSQL is not answering on $host:5432; starting it" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  else
    echo "no pg_ctlcluster here: install PostgreSQL (apt-get install postgresql)" >&2
    exit 1
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$host" -p 5432 && break; sleep 1; done
  pg_isready -h "$host" -p 5432
fi

if ! psql -h "$host" -U "$user" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1; then
  createdb -h "$host" -U "$user" "$db"
  echo "created database $db" >&2
fi
