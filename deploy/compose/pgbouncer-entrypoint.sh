#!/bin/sh
# Writes pgbouncer.ini (transaction pooling, as shared.pgbouncer.render_config) and the user
# list from the same password variables shared.dbsetup reads, then runs PgBouncer.
set -eu
dir=/tmp/pgbouncer
mkdir -p "$dir"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=${PGBOUNCER_SERVER_HOST:-postgres} port=${PGBOUNCER_SERVER_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-1000}
server_reset_query =
ignore_startup_parameters = extra_float_digits
INI
umask 077
{
  printf '"auth_app" "%s"\n' "${AUTH_APP_DB_PASSWORD:?}"
  printf '"tenant_app" "%s"\n' "${TENANT_APP_DB_PASSWORD:?}"
  printf '"ticket_app" "%s"\n' "${TICKET_APP_DB_PASSWORD:?}"
} > "$dir/userlist.txt"
exec pgbouncer "$dir/pgbouncer.ini"
