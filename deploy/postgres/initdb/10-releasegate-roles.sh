#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# Two roles, neither a superuser: releasegate_owner owns the database and its tables (it runs
# `migrate`, then `grant_app_role`); releasegate_app is what the web and workers connect as.
# The application role therefore cannot disable the audit trail's append-only trigger, nor
# update, delete or truncate its rows (docs/operations.md, "Database roles").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$RELEASEGATE_OWNER_PASSWORD" -v app_password="$RELEASEGATE_APP_PASSWORD" <<'SQL'
CREATE ROLE releasegate_owner LOGIN NOSUPERUSER NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE releasegate_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE releasegate OWNER releasegate_owner;
\connect releasegate
ALTER SCHEMA public OWNER TO releasegate_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
