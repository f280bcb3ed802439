# PgBouncer from the distribution's package, configured from the environment at start
# (deploy/compose/pgbouncer-entrypoint.sh). Used by `docker compose --profile pgbouncer up`.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbouncer \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/compose/pgbouncer-entrypoint.sh /usr/local/bin/pgbouncer-entrypoint.sh
USER postgres
EXPOSE 6432
ENTRYPOINT ["sh", "/usr/local/bin/pgbouncer-entrypoint.sh"]
