#!/usr/bin/env bash
# Makes sure PostgreSQL 15, Redis 7 and NATS (JetStream) run on loopback,
# installing them from Debian's packages where they are missing. Idempotent.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 0.5; done
  echo "local-servers: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}
need_install=()
command -v pg_ctlcluster >/dev/null || need_install+=(postgresql)
command -v redis-server >/dev/null || need_install+=(redis-server)
command -v nats-server >/dev/null && [ -x "$(command -v nats-server)" ] || need_install+=(nats-server)
if [ ${#need_install[@]} -gt 0 ] && ! { up 5432 && up 6379 && up 4222; }; then
  echo "local-servers: installing ${need_install[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if ! up 5432; then
  echo "local-servers: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432
  # Trust auth on loopback, as on the project's machines.
  psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1 || {
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\).*/\1trust/; s/^\(local\s\+all\s\+postgres\s\+\).*/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main reload
  }
fi
if ! up 6379; then
  echo "local-servers: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for Redis 6379
fi
if ! up 4222; then
  echo "local-servers: starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  nohup nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats-server >/tmp/nats-server.log 2>&1 &
  wait_for NATS 4222
fi
echo "local-servers: PostgreSQL, Redis and NATS are up"
