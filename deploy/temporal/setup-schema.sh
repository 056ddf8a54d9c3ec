#!/bin/sh
# Creates Temporal's two databases (temporal, temporal_visibility) and brings their schemas up to
# the version this admin-tools image ships. Run by compose's `temporal-schema` service before the
# server starts, and again (it is safe) before every Temporal upgrade: a newer server never runs
# on an older schema.
#
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD from the
# environment; the password comes from deploy/.env through compose, never from this file.
set -eu

: "${SQL_PLUGIN:=postgres12}"
: "${SQL_HOST:?set SQL_HOST}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:?set SQL_USER}"
: "${SQL_PASSWORD:?set SQL_PASSWORD}"
export SQL_PLUGIN SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

until nc -z "$SQL_HOST" "$SQL_PORT"; do
  echo "waiting for PostgreSQL at $SQL_HOST:$SQL_PORT"
  sleep 1
done

for db in temporal temporal_visibility; do
  if [ "$db" = temporal ]; then dir=temporal; else dir=visibility; fi
  # `create` and `setup-schema -v 0.0` fail when a previous run already did them; that is the
  # only failure tolerated here. `update-schema` must succeed: it is the step that proves the
  # schema is at the version this image expects.
  temporal-sql-tool --db "$db" create || echo "database $db already exists"
  temporal-sql-tool --db "$db" setup-schema -v 0.0 || echo "schema of $db already initialised"
  temporal-sql-tool --db "$db" update-schema -d "$SCHEMA_ROOT/$dir/versioned"
done

echo "Temporal schema is up to date"
