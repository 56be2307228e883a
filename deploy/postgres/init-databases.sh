#!/bin/sh
# A LOGIN role and a database owned by it for each vidmesh service, as the tutorial's
# `createuser` / `createdb` steps do by hand, and CONNECT revoked from PUBLIC on each database,
# so a service's role can open its own database and no other.
#
# The postgres image runs it once, on an empty data directory, from /docker-entrypoint-initdb.d
# (POSTGRES_USER and POSTGRES_DB name the superuser and its database there). It also runs
# anywhere psql does, against any server the PG* variables name (the tests, a managed
# Postgres): `PGHOST=... PGUSER=postgres USER_DB_PASSWORD=... sh init-databases.sh`.
# Running it again changes nothing but the passwords, which it sets anew.
#
# Passwords come from the environment, one per service, and none has a default:
#   API_GATEWAY_DB_PASSWORD, USER_DB_PASSWORD, VIDEO_DB_PASSWORD, ANALYTICS_DB_PASSWORD
set -eu

: "${API_GATEWAY_DB_PASSWORD:?API_GATEWAY_DB_PASSWORD is not set}"
: "${USER_DB_PASSWORD:?USER_DB_PASSWORD is not set}"
: "${VIDEO_DB_PASSWORD:?VIDEO_DB_PASSWORD is not set}"
: "${ANALYTICS_DB_PASSWORD:?ANALYTICS_DB_PASSWORD is not set}"

export PGUSER="${PGUSER:-${POSTGRES_USER:-postgres}}"
export PGDATABASE="${PGDATABASE:-${POSTGRES_DB:-postgres}}"

# name = role = database (the tutorial's names, hyphens included) and the variable holding its
# password. psql quotes both itself (:"name" as an identifier, :'password' as a literal), and
# \getenv reads the password without it ever appearing on a command line.
create() {
    psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -v name="$1" <<SQL
\getenv password $2
SELECT format('CREATE ROLE %I', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'name', :'name', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
ALTER DATABASE :"name" OWNER TO :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    echo "init-databases: role and database \"$1\" ready"
}

create api-gateway API_GATEWAY_DB_PASSWORD
create user-service USER_DB_PASSWORD
create video-service VIDEO_DB_PASSWORD
create analytics-service ANALYTICS_DB_PASSWORD
