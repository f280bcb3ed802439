#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on their default local ports, starting them
# when they are installed on this machine but stopped. Exits non-zero if one stays down.
set -u
PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}; REDIS_PORT=${REDIS_PORT:-6379}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}; AMQP_PORT=${AMQP_PORT:-5672}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

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
