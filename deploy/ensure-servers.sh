#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on their default local ports, starting them
# when they are installed on this machine but stopped. Exits non-zero if one stays down.
#
# A fresh machine: a server that does not answer and is not installed at all is installed from
# the distribution's packages (Debian/Ubuntu: apt-get) when running as root; otherwise the exact
# command is printed and the script stops. PgBouncer (the transaction-pooling tests and bench)
# and the PostgreSQL client tools (make backup/restore) are installed the same way, and so are
# the tools named in ENSURE_TOOLS (make bench asks for wrk, its load generator).
# ENSURE_SERVERS_PRINT_ONLY=1 prints the command instead of running it, even as root.
set -u
PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}; REDIS_PORT=${REDIS_PORT:-6379}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}; AMQP_PORT=${AMQP_PORT:-5672}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
SBIN_DIRS=${ENSURE_SERVERS_SBIN_DIRS:-/usr/sbin /usr/local/sbin}
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local d; for d in $SBIN_DIRS; do [ -x "$d/$1" ] && return 0; done
  return 1
}

# ------------------------------------------------------------------ install what is missing
missing=()
if ! port_open "$PG_HOST" "$PG_PORT" && ! have pg_ctlcluster && ! have postgres; then missing+=(postgresql); fi
if ! have pg_dump || ! have psql; then missing+=(postgresql-client); fi
if ! port_open "$REDIS_HOST" "$REDIS_PORT" && ! have redis-server; then missing+=(redis-server); fi
if ! port_open "$AMQP_HOST" "$AMQP_PORT" && ! have rabbitmq-server; then missing+=(rabbitmq-server); fi
if ! have pgbouncer; then missing+=(pgbouncer); fi
# Extra tools a caller needs, by Debian package name = command name (make bench: wrk).
for tool in ${ENSURE_TOOLS:-}; do have "$tool" || missing+=("$tool"); done

fresh_postgres=0
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-servers: not installed: ${missing[*]}; install them with your distribution's package manager" >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ] || [ "${ENSURE_SERVERS_PRINT_ONLY:-0}" = 1 ]; then
    echo "ensure-servers: not installed: ${missing[*]}. Install them, then run this again:"
    echo "  sudo sh -c '$cmd'"
    exit 1
  fi
  echo "ensure-servers: installing ${missing[*]}"
  sh -c "$cmd" || { echo "ensure-servers: apt-get failed" >&2; exit 1; }
  for p in "${missing[@]}"; do [ "$p" = postgresql ] && fresh_postgres=1; done
fi

# A cluster this script just installed: local development connects as postgres over TCP
# without a password (as the README says), so trust loopback connections on it.
if [ $fresh_postgres = 1 ] && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if [ -f "$hba" ] && ! grep -q "ensure-servers" "$hba"; then
    printf '# ensure-servers: local development, loopback trusted\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
      | cat - "$hba" > "$hba.new" && mv "$hba.new" "$hba" && chown postgres:postgres "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart >/dev/null 2>&1 || true
fi

wait_port() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do port_open "$2" "$3" && return 0; sleep 0.2; done
  echo "ensure-servers: $1 did not come up on $2:$3" >&2
  return 1
}

ok=0
if ! port_open "$PG_HOST" "$PG_PORT"; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "ensure-servers: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
wait_port PostgreSQL "$PG_HOST" "$PG_PORT" 30 || ok=1

if ! port_open "$REDIS_HOST" "$REDIS_PORT"; then
  if command -v redis-server >/dev/null; then
    echo "ensure-servers: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null || true
  fi
fi
wait_port Redis "$REDIS_HOST" "$REDIS_PORT" 15 || ok=1

if ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
  if command -v rabbitmq-server >/dev/null; then
    echo "ensure-servers: starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
fi
wait_port RabbitMQ "$AMQP_HOST" "$AMQP_PORT" 60 || ok=1

[ $ok -eq 0 ] && echo "ensure-servers: PostgreSQL, Redis and RabbitMQ answer"
exit $ok
